"""Where the network (or the baseline) runs: the MNI brain box, and the way back to the input grid.

* :func:`t1_on_brain_box` -- the normalised T1 inside the MNI brain box (153 x 189 x 159 voxels
  of the 1 mm grid);
* :func:`probability_mni` -- the network's or the baseline's probability there, 0 outside the
  cerebral white-matter envelope;
* :func:`predict_envelope_slices` -- the 2.5D network on only the slices that cross the envelope
  (shared with the subject-space path, :mod:`wmhkit.segmentation.subject_grid`);
* :func:`mni_box_to_subject` -- the probability sampled back onto the input grid, only where the
  box reaches, so that large inputs cost no more than their brain.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np

from wmhkit.segmentation.cortex import MAX_CORTEX_CONTACT, drop_cortex_attached

__all__ = ["t1_on_brain_box", "probability_mni", "predict_envelope_slices", "mni_box_to_subject"]


def t1_on_brain_box(t1_mni: nib.Nifti1Image) -> tuple[np.ndarray, np.ndarray, tuple[slice, slice, slice]]:
    """The normalised T1 inside the MNI brain box, the box's affine and its slices of the 1 mm grid."""
    from wmhkit.preprocess.resampling import resample_array
    from wmhkit.preprocess.templates import TEMPLATE_AFFINE, TEMPLATE_SHAPE
    from wmhkit.segmentation.atlas import brain_box

    box = brain_box()
    starts = np.array([s.start for s in box], float)
    box_affine = TEMPLATE_AFFINE.copy()
    box_affine[:3, 3] += starts
    box_shape = tuple(s.stop - s.start for s in box)
    affine = np.asarray(t1_mni.affine, float)
    if tuple(t1_mni.shape[:3]) == TEMPLATE_SHAPE and np.allclose(affine, TEMPLATE_AFFINE, atol=1e-4):
        data = np.asarray(np.asanyarray(t1_mni.dataobj)[box], dtype=np.float32)
    else:  # another MNI grid (already cropped, or another voxel size): sample the box from it
        data = resample_array(np.asanyarray(t1_mni.dataobj), affine, box_shape, box_affine, order=1)
    return data, box_affine, box


def probability_mni(
    t1_box: np.ndarray,
    box: tuple[slice, slice, slice],
    *,
    method: str = "model",
    model=None,
    device: str = "cpu",
    flip_average: bool | None = None,
    threshold: float | None = None,
    max_cortex_contact: float = MAX_CORTEX_CONTACT,
) -> tuple[np.ndarray, dict]:
    """Lesion probability on the MNI brain box, 0 outside the white-matter envelope.

    Parameters
    ----------
    t1_box : numpy.ndarray
        Normalised T1 on the brain box of the MNI 1 mm grid.
    box : tuple of slice
        The box's slices of the 1 mm grid (:func:`wmhkit.segmentation.atlas.brain_box`).
    method : {"model", "baseline"}, default "model"
    model : LoadedModel, optional
        Required for ``method="model"``.
    device : str, default "cpu"
    flip_average : bool, optional
        Average the network's map with that of the left-right mirrored T1; default the model's
        own setting (``LoadedModel.flip_average``).
    threshold : float, optional
        The network's lesion threshold; when given, candidates at or above it that lie against
        the cortex are set to 0 (:mod:`wmhkit.segmentation.cortex`; the baseline has its own
        location rules).
    max_cortex_contact : float, default 0.2
        The cortex-contact rule's largest allowed share of a lesion's shell
        (:data:`wmhkit.segmentation.cortex.MAX_CORTEX_CONTACT`; 1 turns it off).

    Returns
    -------
    probability : numpy.ndarray
        float32 (0-1), shape of ``t1_box``.
    details : dict
        Method-specific numbers for the JSON (baseline tissue levels; for the network
        ``cortex_attached_ml``, the volume the cortex-contact rule removed).
    """
    from wmhkit.segmentation.atlas import ventricle_zone_mni, wm_envelope_mni

    details: dict = {}
    envelope = wm_envelope_mni()[box]
    if method == "model":
        flip = model.flip_average if flip_average is None else bool(flip_average)
        probability = predict_envelope_slices(model.net, t1_box, envelope, device, flip_average=flip)
    else:
        from wmhkit.preprocess.templates import template_data
        from wmhkit.segmentation.atlas import deep_gm_mni, ventricle_zone_mni
        from wmhkit.segmentation.baseline import baseline_probability

        priors = [template_data(kind)[box] for kind in ("wm", "gm", "csf")]
        probability, details = baseline_probability(
            t1_box, *priors, ventricle_zone=ventricle_zone_mni()[box], deep_gm=deep_gm_mni()[box]
        )
    probability = np.clip(probability, 0.0, 1.0, out=np.asarray(probability, dtype=np.float32))
    probability[~envelope] = 0.0
    if method == "model" and threshold is not None:
        dropped = drop_cortex_attached(probability, t1_box, envelope, ventricle_zone_mni()[box], threshold,
                                       max_cortex_contact)
        details["cortex_attached_ml"] = round(dropped / 1000.0, 4)  # 1 mm voxels
    return probability, details


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


def _subject_box(shape: tuple[int, ...], subject_affine: np.ndarray, mni_to_subject: np.ndarray, box_affine, box_shape):
    """Slices of the subject grid that can receive a non-zero probability from the MNI box."""
    corners = np.array(np.meshgrid(*[[-1, n] for n in box_shape], indexing="ij")).reshape(3, -1).T
    world_mni = corners @ box_affine[:3, :3].T + box_affine[:3, 3]
    to_voxels = np.linalg.inv(subject_affine) @ mni_to_subject
    voxels = world_mni @ to_voxels[:3, :3].T + to_voxels[:3, 3]
    low = np.clip(np.floor(voxels.min(axis=0)).astype(int) - 1, 0, shape)
    high = np.clip(np.ceil(voxels.max(axis=0)).astype(int) + 2, 0, shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(low, high))


def mni_box_to_subject(probability_box: np.ndarray, box_affine: np.ndarray, alignment, reference: nib.Nifti1Image):
    """Trilinear resampling of the MNI-box probability onto the subject grid.

    Returns the float32 probability on the whole grid and the slices of the sub-grid outside
    which it is 0.
    """
    from wmhkit.preprocess.resampling import resample_array

    shape = tuple(reference.shape[:3])
    out = np.zeros(shape, dtype=np.float32)
    sub = _subject_box(shape, reference.affine, alignment.mni_to_subject, box_affine, probability_box.shape)
    if any(s.stop <= s.start for s in sub):
        return out, sub
    sub_affine = np.asarray(reference.affine, float).copy()
    sub_affine[:3, 3] = reference.affine[:3, :3] @ np.array([s.start for s in sub], float) + reference.affine[:3, 3]
    sub_shape = tuple(s.stop - s.start for s in sub)
    # Same map as MNIAlignment.resample_to_subject, restricted to the sub-grid the box covers.
    out[sub] = resample_array(
        probability_box, box_affine, sub_shape, sub_affine, alignment.subject_to_mni, order=1, dtype=np.float32
    )
    np.clip(out[sub], 0.0, 1.0, out=out[sub])
    return out, sub
