"""The lesion probability on a :class:`~wmhkit.segmentation.spaces.Grid`: the network or the baseline.

Both spaces (:mod:`wmhkit.segmentation.subject_grid`, :mod:`wmhkit.segmentation.mni_grid`) hand
over the same things -- the normalised T1, the white-matter envelope and the ventricle zone on one
grid -- and this module runs on them without knowing which space it is:

* :func:`network_probability` -- the 2.5D network on the slices that cross the envelope
  (:func:`predict_envelope_slices`), 0 outside the envelope, then the cortex-contact rule
  (:mod:`wmhkit.segmentation.cortex`) on the same grid;
* :func:`baseline_probability_on_grid` -- the classical baseline
  (:mod:`wmhkit.segmentation.baseline`), which needs the MNI tissue priors and so runs on the
  MNI grid only.
"""

from __future__ import annotations

import numpy as np

from wmhkit.segmentation.cortex import MAX_CORTEX_CONTACT, drop_cortex_attached
from wmhkit.segmentation.mimics import drop_csf_dark_specks

__all__ = ["baseline_probability_on_grid", "network_probability", "predict_envelope_slices"]


def predict_envelope_slices(
    net, t1_box: np.ndarray, envelope: np.ndarray, device: str, *, flip_average: bool = False
) -> np.ndarray:
    """Run the 2.5D network only on the slices that cross the envelope (plus their input context).

    Each output slice depends only on its ``in_slices`` neighbours, so the result on those
    slices is exactly that of the whole box; the rest is 0 (outside the envelope anyway).
    ``flip_average`` also runs it on the left-right mirror image (axis 0 of the RAS-ordered box).
    """
    from wmhkit.segmentation.network import predict_volume

    axis = int(getattr(net, "slice_axis", 2))
    half = int(net.down[0][0].in_channels) // 2 if hasattr(net, "down") else 0
    used = np.flatnonzero(envelope.any(axis=tuple(a for a in range(3) if a != axis)))
    probability = np.zeros(t1_box.shape, dtype=np.float32)
    if used.size == 0:
        return probability
    first, last = int(used[0]), int(used[-1]) + 1
    low, high = max(first - half, 0), min(last + half, t1_box.shape[axis])
    index = [slice(None)] * 3
    index[axis] = slice(low, high)
    predicted = predict_volume(net, t1_box[tuple(index)], device=device, flip_axis=0 if flip_average else None)
    keep = [slice(None)] * 3
    keep[axis] = slice(first - low, last - low)
    index[axis] = slice(first, last)
    probability[tuple(index)] = predicted[tuple(keep)]
    return probability


def network_probability(grid, net, device: str = "cpu", *, flip_average: bool = False,
                        threshold: float | None = None,
                        max_cortex_contact: float = MAX_CORTEX_CONTACT,
                        speck_max_mm3: float = 0.0,
                        cortex_judge_at: float | None = None) -> tuple[np.ndarray, dict]:
    """The network's lesion probability on a grid, 0 outside the white-matter envelope.

    Parameters
    ----------
    grid : wmhkit.segmentation.spaces.Grid
        Normalised T1, envelope and ventricle zone on one grid.
    net : torch.nn.Module
        The 2.5D network (``LoadedModel.net``).
    device : str, default "cpu"
    flip_average : bool, default False
        Average with the network's map of the left-right mirror image (axis 0 of the grid).
    threshold : float, optional
        The lesion threshold; when given, candidates at or above it that lie against the cortex
        are set to 0 (:mod:`wmhkit.segmentation.cortex`).
    max_cortex_contact : float, default 0.2
        The cortex-contact rule's largest allowed share of a lesion's shell (1 turns it off).
    speck_max_mm3 : float, default 0
        Candidates smaller than this (mm^3) that are as dark as fluid are set to 0
        (:mod:`wmhkit.segmentation.mimics`; 0, the default, turns the rule off).
    cortex_judge_at : float, optional
        Judge the cortex-contact rule's candidates at this lower probability (``wmhkit segment``
        passes the level the model declares), so a higher threshold never marks more;
        default: at ``threshold``.

    Returns
    -------
    probability : numpy.ndarray
        float32 (0-1) on the grid.
    details : dict
        ``cortex_attached_ml``: lesion volume the cortex-contact rule removed (mL, on the grid),
        and ``csf_dark_specks_ml``: the volume the CSF-dark speck rule removed, when ``threshold``
        is given.
    """
    probability = predict_envelope_slices(net, grid.t1, grid.envelope, device, flip_average=flip_average)
    np.clip(probability, 0.0, 1.0, out=probability)
    probability[~grid.envelope] = 0.0
    details = {}
    if threshold is not None:
        dropped = drop_cortex_attached(probability, grid.t1, grid.envelope, grid.ventricle_zone, threshold,
                                       max_cortex_contact, judge_at=cortex_judge_at)
        details["cortex_attached_ml"] = round(dropped * grid.voxel_mm3 / 1000.0, 4)
        dropped = drop_csf_dark_specks(probability, grid.t1, threshold, grid.voxel_mm3, max_mm3=speck_max_mm3)
        details["csf_dark_specks_ml"] = round(dropped * grid.voxel_mm3 / 1000.0, 4)
    return probability, details


def baseline_probability_on_grid(grid) -> tuple[np.ndarray, dict]:
    """The classical baseline's lesion probability on the MNI grid, 0 outside the white-matter envelope.

    Parameters
    ----------
    grid : wmhkit.segmentation.mni_grid.MniGrid
        The MNI brain box (the baseline reads the template's tissue priors there).

    Returns
    -------
    probability : numpy.ndarray
        float32 (0-1) on the grid.
    details : dict
        The tissue levels and intensity cut-offs the baseline used (for ``<stem>_wmh.json``).
    """
    from wmhkit.anatomy.atlas import deep_gm_mni
    from wmhkit.io import cached_array
    from wmhkit.preprocess.templates import MNI_BRAIN_BOX, template_data
    from wmhkit.segmentation.baseline import baseline_probability

    def prior(kind: str) -> np.ndarray:
        if grid.box != MNI_BRAIN_BOX:
            return template_data(kind)[grid.box]
        # The brain box of each prior kept on disk: reading the three 1 mm templates costs about 0.5 s.
        return cached_array("templates", f"mni152_{kind}_brain_box",
                            lambda: np.ascontiguousarray(template_data(kind)[MNI_BRAIN_BOX]))

    priors = [prior(kind) for kind in ("wm", "gm", "csf")]
    probability, details = baseline_probability(grid.t1, *priors, ventricle_zone=grid.ventricle_zone,
                                                deep_gm=deep_gm_mni()[grid.box])
    probability = np.clip(probability, 0.0, 1.0, out=np.asarray(probability, dtype=np.float32))
    probability[~grid.envelope] = 0.0
    return probability, details
