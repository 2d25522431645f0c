"""The built-in training data: synthetic phantoms and real-anatomy variants, as cached cases.

Every case draws its own acquisition at random from the recipe's ranges (FLAIR slice thickness,
gap, orientation; skull on or off; lesion burden), so the network sees labels of every geometry
it may meet. Real-anatomy variants insert synthetic lesions into the real heads under
``real_t1_dir`` (read at run time, never copied) and simulate the thick-slice label with the
forward model of :mod:`wmhkit.forward`.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np

from wmhkit.errors import OptionError
from wmhkit.train.cases import Case, make_case

__all__ = ["CASE_SPACES", "PHANTOM_DEFAULTS", "draw_acquisition", "phantom_case", "real_anatomy_case", "thick_slice_grid"]

logger = logging.getLogger(__name__)

#: Ranges the recipe draws each phantom's parameters from (a config's "phantoms" dict overrides).
PHANTOM_DEFAULTS: dict = {
    "voxel_size_mm": 1.0,
    "flair_slice_mm": [3.0, 6.0],  # uniform range
    "flair_gap_mm": [0.0, 1.0],  # uniform range; 0 half of the time
    "flair_inplane_mm": 0.9,
    "orientations": ["axial", "axial", "axial", "coronal", "sagittal"],
    "skull_fraction": 0.35,
    "lesion_burden": [0.4, 3.0],  # log-uniform range
    "healthy_fraction": 0.08,  # share of cases without lesions (burden 0)
    "label_noise": None,
    # Use the phantom's known MNI alignment instead of estimating it (saves ~2-15 s per case;
    # augmentation covers the small misalignment that estimation would add).
    "true_alignment": True,
    # The grid the case's T1 lives on: "mni" (the MNI brain box) or "subject" (the subject's own
    # voxels, as segment(space="subject") reads them); set from the config's data.space.
    "space": "mni",
    # "flair": the thick-slice label (the method); "exact": the exact 1 mm lesion mask as the
    # label, which no real data has -- a diagnostic of how much the thick labels cost.
    "label_source": "flair",
    # Share of lesioned cases (phantoms and real heads) that also get a real expert lesion mask
    # (wmhkit.synth.real_masks; training masks only), and the folder of those masks (default:
    # ../shared/data/real_lesion_masks when present).
    "real_mask_share": 0.0,
    "real_mask_dir": None,
    # Set per case by wmhkit.train.pipeline.build_cases for data.real_mask_placements: the path of
    # the training mask this case carries (instead of a random one, whatever real_mask_share says).
    "real_mask_fixed": None,
    # Share of each real mask's lesions kept, uniform in this range (None: the default range
    # of wmhkit.synth.real_masks, 0.35-1). Low shares give real geometry at mild loads.
    "real_mask_keep_share": None,
    # Random rigid move of each real mask: [max rotation (deg), max shift (mm)] per axis, or None.
    "real_mask_move": None,
    # Share of real-head cases skull-stripped (T1 x brain mask), as many cohorts deliver them.
    "skull_strip_share": 0.0,
    # Real heads used for real-anatomy cases: every head in real_t1_dir except these stems.
    "exclude_heads": [],
    # Smooth random deformation of each real-head case (root-mean-square mm, drawn in 0.5-1 x this;
    # 0 off) at this wavelength (mm): the three training heads become many anatomies, so a network
    # cannot learn their own periventricular white matter by heart.
    "head_warp_mm": 0.0,
    "head_warp_wavelength_mm": 40.0,
    # Set per case by wmhkit.train.pipeline.build_cases for data.real_healthy_per_head: the real
    # head without lesions (its normal white-matter texture as negatives).
    "real_healthy": False,
    # Perivascular spaces drawn unlabelled into each case's white matter (wmhkit.synth.pvs): a
    # count uniform in this [low, high] range, or None for none. They are the commonest lesion
    # mimic of high-resolution T1 scans.
    "pvs_count": None,
}
#: Grids a case can live on (see ``segment(space=...)``).
CASE_SPACES = ("mni", "subject")


def draw_acquisition(seed: int, options: dict | None = None) -> dict:
    """Per-case phantom parameters drawn from the recipe ranges (deterministic in ``seed``)."""
    opts = {**PHANTOM_DEFAULTS, **(options or {})}
    rng = np.random.default_rng([seed, 7331])
    low, high = opts["lesion_burden"]
    burden = 0.0 if rng.random() < opts["healthy_fraction"] else float(np.exp(rng.uniform(np.log(low), np.log(high))))
    gap_low, gap_high = opts["flair_gap_mm"]
    gap = 0.0 if rng.random() < 0.5 else float(rng.uniform(gap_low, gap_high))
    extra = np.random.default_rng([seed, 4242])  # a separate stream: the draws above stay as they were
    real_mask = None
    if opts["real_mask_fixed"]:
        real_mask = str(opts["real_mask_fixed"])
    elif burden > 0 and extra.random() < float(opts["real_mask_share"]):
        from wmhkit.synth.real_masks import real_mask_paths

        paths = real_mask_paths(opts["real_mask_dir"], role="train")
        real_mask = str(paths[int(extra.integers(len(paths)))]) if paths else None
    variation = None
    if real_mask is not None:
        variation = {}
        if opts["real_mask_keep_share"] is not None:
            keep_low, keep_high = opts["real_mask_keep_share"]
            variation["keep_share"] = float(np.random.default_rng([seed, 5151]).uniform(keep_low, keep_high))
        if opts["real_mask_move"] is not None:
            variation["rotate_deg"], variation["shift_mm"] = (float(v) for v in opts["real_mask_move"])
        variation = variation or None
    return {
        "seed": int(seed),
        "lesion_burden": burden,
        "voxel_size_mm": float(opts["voxel_size_mm"]),
        "flair_slice_mm": float(rng.uniform(*opts["flair_slice_mm"])),
        "flair_gap_mm": gap,
        "flair_inplane_mm": float(opts["flair_inplane_mm"]),
        "flair_orientation": str(rng.choice(opts["orientations"])),
        "skull": bool(rng.random() < opts["skull_fraction"]),
        "label_noise": opts["label_noise"],
        "real_lesion_mask": real_mask,
        "real_mask_variation": variation,
        "skull_strip": bool(extra.random() < float(opts["skull_strip_share"])),
        "pvs_count": 0 if opts["pvs_count"] is None else int(np.random.default_rng([seed, 6161]).integers(
            int(opts["pvs_count"][0]), int(opts["pvs_count"][1]) + 1)),
    }


def prepared_t1_mni(img, alignment) -> np.ndarray:
    """The normalised T1 on the MNI 1 mm grid, exactly as ``prepare_t1(img, alignment=...).t1_mni``.

    Skips the brain mask and eTIV that training does not need (they cost most of the time).
    """
    try:
        from wmhkit.io import check_img, img_label
        from wmhkit.preprocess.intensity import NORMALISED_MAX, intensity_levels, scale_intensity
        from wmhkit.preprocess.resampling import resample_array
        from wmhkit.preprocess.templates import TEMPLATE_AFFINE, TEMPLATE_SHAPE
    except ImportError:  # preprocess internals moved: take the public, slower route
        from wmhkit.preprocess import prepare_t1

        return np.asarray(prepare_t1(img, alignment=alignment).t1_mni.dataobj, dtype=np.float32)
    checked = check_img(img)
    data = np.asanyarray(checked.dataobj)
    levels = intensity_levels(data, checked.affine, alignment)
    raw = resample_array(data, checked.affine, TEMPLATE_SHAPE, TEMPLATE_AFFINE, alignment.mni_to_subject,
                         cval=levels[0])
    return np.asarray(scale_intensity(raw, *levels, label=img_label(img), clip_max=NORMALISED_MAX), dtype=np.float32)


def _network_input(img, alignment, space: str):
    """The case's T1 and grid in ``space``, and a function that brings a mask onto that grid.

    Returns the keyword arguments of :func:`wmhkit.train.cases.make_case` that depend on the
    space (``t1_mni``, ``mni_to_subject``, ``net_affine``), and ``to_grid`` (mask image -> bool
    array on the case's grid).
    """
    if space not in CASE_SPACES:
        raise OptionError(f"Training option data.space={space!r} is unknown; use 'mni' or 'subject'.")
    if space == "mni":
        def to_mni(mask_img):
            return np.asarray(alignment.resample_to_mni(mask_img, order=1).dataobj, dtype=np.float32) > 0.5

        return {"t1_mni": prepared_t1_mni(img, alignment), "mni_to_subject": alignment.mni_to_subject,
                "net_affine": None}, to_mni
    from wmhkit.io import check_img
    from wmhkit.preprocess.intensity import intensity_levels
    from wmhkit.segmentation.subject_grid import network_grid

    checked = check_img(img)
    grid = network_grid(checked, alignment, intensity_levels(np.asanyarray(checked.dataobj), checked.affine, alignment))

    def to_subject(mask_img):
        return grid.sample(np.asarray(mask_img.dataobj, dtype=np.float32), order=1) > 0.5

    return {"t1_mni": grid.t1, "mni_to_subject": np.eye(4), "net_affine": grid.affine}, to_subject


def phantom_case(seed: int, options: dict | None = None, *, case_id: str | None = None) -> Case:
    """Generate one phantom (``wmhkit.synth.make_phantom``), prepare its T1, and build a case.

    Parameters
    ----------
    seed : int
        Phantom seed; training and validation use disjoint seed ranges.
    options : dict, optional
        Overrides of :data:`PHANTOM_DEFAULTS`.
    case_id : str, optional
        Default ``phantom-<seed>``.
    """
    from wmhkit.preprocess import MNIAlignment, align_to_mni
    from wmhkit.synth import make_phantom

    params = draw_acquisition(seed, options)
    kwargs = {k: v for k, v in params.items()
              if (k != "label_noise" or v is not None) and k not in ("skull_strip", "pvs_count")}
    phantom = make_phantom(**kwargs)
    t1 = phantom.t1
    if params["pvs_count"]:
        from wmhkit.synth import TISSUE_LABELS

        white = np.asarray(phantom.tissue.dataobj) == TISSUE_LABELS["wm"]
        t1 = _with_pvs(t1, white, phantom.lesion_mask, params)
    if {**PHANTOM_DEFAULTS, **(options or {})}["true_alignment"]:
        alignment = MNIAlignment(np.asarray(phantom.subject_to_mni, dtype=float), 1.0, "phantom-truth")
    else:
        alignment = align_to_mni(t1)
    opts = {**PHANTOM_DEFAULTS, **(options or {})}
    grid, to_grid = _network_input(t1, alignment, opts["space"])
    meta = {"kind": "phantom", "space": opts["space"], "params": params, "alignment_quality": float(alignment.quality),
            "lesion_ml": float(phantom.params.get("lesion_ml", np.nan)) if isinstance(phantom.params, dict) else None}
    label, thickness = phantom.flair_label, params["flair_slice_mm"]
    if opts["label_source"] == "exact":
        label, thickness = phantom.lesion_mask, None
        meta["label_source"] = "exact"
    return make_case(case_id or f"phantom-{seed}", label=label, thickness_mm=thickness,
                     lesion_mni=to_grid(phantom.lesion_mask), meta=meta, seed=seed, **grid)


def _with_pvs(t1, white_matter: np.ndarray, lesion_mask, params: dict):
    """``t1`` with ``params["pvs_count"]`` unlabelled perivascular spaces, never on a lesion (``params["pvs_ml"]`` set)."""
    import nibabel as nib
    from scipy import ndimage

    from wmhkit.synth.pvs import add_perivascular_spaces

    keep_out = ndimage.binary_dilation(np.asarray(lesion_mask.dataobj) > 0, iterations=2).astype(np.uint8)
    out, _, pvs = add_perivascular_spaces(t1, nib.Nifti1Image(white_matter.astype(np.uint8), t1.affine),
                                          count=params["pvs_count"], seed=params["seed"],
                                          keep_out_mask=nib.Nifti1Image(keep_out, t1.affine))
    params["pvs_ml"] = pvs["pvs_ml"]
    return out


def thick_slice_grid(t1, *, slice_mm: float, gap_mm: float = 0.0, inplane_mm: float = 0.9,
                     orientation: str = "axial", tilt_deg: float = 0.0):
    """A 2D-acquisition grid (shape, affine) covering the field of view of ``t1``.

    The slice normal is world z (axial), y (coronal) or x (sagittal), tilted by ``tilt_deg``
    about the world x axis (y axis for sagittal); slices are ``slice_mm + gap_mm`` apart.
    """
    axes = {"axial": 2, "coronal": 1, "sagittal": 0}
    normal_axis = axes.get(orientation, 2)
    corners = np.array(np.meshgrid(*[[0, n - 1] for n in t1.shape[:3]], indexing="ij")).reshape(3, -1)
    world = t1.affine[:3, :3] @ corners + t1.affine[:3, 3:]
    centre = world.mean(axis=1)
    order = [a for a in range(3) if a != normal_axis] + [normal_axis]
    rotation = np.eye(3)[:, order]  # columns: in-plane, in-plane, normal
    a = np.deg2rad(tilt_deg)
    pivot = 0 if normal_axis != 0 else 1
    tilt = np.eye(3)
    others = [k for k in range(3) if k != pivot]
    tilt[np.ix_(others, others)] = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
    directions = tilt @ rotation
    spacing = np.array([inplane_mm, inplane_mm, slice_mm + gap_mm])
    extent = np.abs(directions.T @ (world - centre[:, None])).max(axis=1) * 2 + 2 * spacing
    shape = tuple(int(np.ceil(e / s)) for e, s in zip(extent, spacing))
    affine = np.eye(4)
    affine[:3, :3] = directions * spacing
    affine[:3, 3] = centre - affine[:3, :3] @ ((np.asarray(shape) - 1) / 2.0)
    return shape, affine


def head_white_matter(head, prepared_head) -> np.ndarray:
    """Where lesions may go in a real head.

    Voxels as bright as white matter (above 0.85 of the way from background to the white-matter
    level) under the MNI white-matter prior (> 0.3, through the head's alignment) inside the
    brain mask, plus the partial-volume rim up to 2 mm around them that is brighter than half
    the white-matter level: lesions then reach the ventricle wall, as real periventricular
    lesions do, but never CSF.
    """
    from scipy import ndimage

    from wmhkit.io import voxel_sizes_mm
    from wmhkit.preprocess import load_template

    wm_prob = np.asarray(prepared_head.alignment.resample_to_subject(load_template("wm"), head, order=1).dataobj)
    brain = np.asarray(prepared_head.brain_mask.dataobj) > 0
    background, white = prepared_head.intensity_levels
    data = np.asanyarray(head.dataobj)
    core = (wm_prob > 0.3) & brain & (data > background + 0.85 * (white - background))
    rim = ndimage.binary_dilation(core, iterations=max(1, int(round(2.0 / min(voxel_sizes_mm(head))))))
    return core | (rim & brain & (data > background + 0.5 * (white - background)))


def _warped_head(head, brain: np.ndarray, wm_mask: np.ndarray, seed: int, opts: dict):
    """The head, its brain mask and its white matter bent by one random deformation (:func:`wmhkit.synth.fields.warp_volumes`).

    The clean head's MNI alignment is kept: the deformation is smooth and centred on no motion.
    """
    import nibabel as nib

    from wmhkit.io import voxel_sizes_mm
    from wmhkit.synth.fields import warp_volumes

    rng = np.random.default_rng([seed, 23])
    amplitude = float(opts["head_warp_mm"]) * float(rng.uniform(0.5, 1.0))
    (data, brain_u8, wm_u8), rms = warp_volumes(
        rng, [np.asarray(head.dataobj, dtype=np.float32), brain.astype(np.uint8), wm_mask.astype(np.uint8)],
        voxel_sizes_mm(head), amplitude_mm=amplitude, wavelength_mm=float(opts["head_warp_wavelength_mm"]))
    return nib.Nifti1Image(data, head.affine), brain_u8 > 0, wm_u8 > 0, rms


@functools.lru_cache(maxsize=4)
def _prepared_head(path: str):
    from wmhkit.preprocess import prepare_t1

    return prepare_t1(path)


def real_anatomy_case(head_path, seed: int, options: dict | None = None, *, prepared_head=None,
                      case_id: str | None = None) -> Case:
    """Insert synthetic lesions into a real head T1 (``wmhkit.synth.insert_lesions``) and build a case.

    The thick-slice label is the forward model of the exact lesion mask on a random 2D grid,
    thresholded at 0.5 (as the phantoms' FLAIR labels are made).
    """
    import nibabel as nib

    from wmhkit.forward import thick_slice_average
    from wmhkit.io import check_img
    from wmhkit.synth import insert_lesions

    params = draw_acquisition(seed, options)
    params["lesion_burden"] = max(params["lesion_burden"], 0.3)
    if {**PHANTOM_DEFAULTS, **(options or {})}["real_healthy"]:
        params.update(lesion_burden=0.0, real_lesion_mask=None)
    if params["real_lesion_mask"]:  # the real geometry leads; fewer drawn lesions beside it
        params["lesion_burden"] *= float(np.random.default_rng([seed, 17]).uniform(0.0, 0.6))
    head = check_img(head_path)
    prepared_head = prepared_head or _prepared_head(str(head_path))
    brain = np.asarray(prepared_head.brain_mask.dataobj) > 0
    wm_mask = head_white_matter(head, prepared_head)
    opts = {**PHANTOM_DEFAULTS, **(options or {})}
    if float(opts["head_warp_mm"]) > 0:
        head, brain, wm_mask, params["head_warp_rms_mm"] = _warped_head(head, brain, wm_mask, seed, opts)
    wm = nib.Nifti1Image(wm_mask.astype(np.uint8), head.affine)
    if params["skull_strip"]:
        head = nib.Nifti1Image(np.where(brain, np.asanyarray(head.dataobj), 0).astype(np.float32), head.affine)
    t1_lesioned, lesion_mask, lesion_params = insert_lesions(
        head, wm, seed=seed, lesion_burden=params["lesion_burden"], real_lesion_mask=params["real_lesion_mask"],
        mni_to_subject=prepared_head.alignment.mni_to_subject, real_mask_variation=params["real_mask_variation"])
    if params["pvs_count"]:
        t1_lesioned = _with_pvs(t1_lesioned, wm_mask, lesion_mask, params)
    rng = np.random.default_rng([seed, 99])
    shape, affine = thick_slice_grid(head, slice_mm=params["flair_slice_mm"], gap_mm=params["flair_gap_mm"],
                                     orientation=params["flair_orientation"], tilt_deg=float(rng.uniform(-15, 15)))
    lesion = np.asarray(lesion_mask.dataobj, dtype=np.float32)
    average = thick_slice_average(lesion, lesion_mask.affine, shape, affine, slice_axis=2,
                                  thickness_mm=params["flair_slice_mm"])
    label = nib.Nifti1Image((average > 0.5).astype(np.uint8), affine)
    thickness = params["flair_slice_mm"]
    exact = opts["label_source"] == "exact"
    if exact:
        label, thickness = lesion_mask, None
    # Lesions barely move the MNI alignment: reuse the clean head's (saves the registration).
    alignment = prepared_head.alignment
    space = opts["space"]
    grid, to_grid = _network_input(t1_lesioned, alignment, space)
    meta = {"kind": "real_anatomy", "space": space, "head": Path(str(head_path)).name, "params": params,
            "alignment_quality": float(alignment.quality), **({"label_source": "exact"} if exact else {})}
    return make_case(case_id or f"real-{Path(str(head_path)).name.split('.')[0]}-{seed}", label=label,
                     slice_axis=None if exact else 2, thickness_mm=thickness, lesion_mni=to_grid(lesion_mask),
                     meta=meta, seed=seed, **grid)
