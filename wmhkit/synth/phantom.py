"""Brain phantoms with known lesions: 3D T1, 2D thick-slice FLAIR, exact masks and labels.

:func:`make_phantom` chains the steps of the other modules of :mod:`wmhkit.synth`:
anatomy (random affine + smooth warp of the MNI tissue maps, atrophy with age, optional
extra-cerebral layers), lesions (burden-controlled, white matter only), contrasts (random
intensities around realistic orderings, partial volume), scanner corruption (blur, bias,
Rician noise, random grid and voxel order) and the FLAIR acquisition (thick slices, exact
label, optional label noise). The same seed always gives the same phantom.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np

from wmhkit.errors import OptionError
from wmhkit.io import save_img, write_json
from wmhkit.synth.acquisition import IMAGE_STEP_MM, acquire, apply_label_noise, flair_grid, flair_label, nearest_on_lr
from wmhkit.synth.anatomy import HEAD_LAYERS, make_anatomy
from wmhkit.synth.appearance import lesion_darkening
from wmhkit.synth.fields import bounding_box
from wmhkit.synth.contrast import corrupt, draw_contrasts, render
from wmhkit.synth.lesions import lesion_fraction
from wmhkit.synth.templates import load_tissue_maps

__all__ = ["Phantom", "make_phantom", "TISSUE_LABELS"]

logger = logging.getLogger(__name__)

#: Codes of the ``tissue`` image.
TISSUE_LABELS = {
    "background": 0,
    "csf": 1,
    "gm": 2,
    "wm": 3,
    "lesion": 4,
    "ventricle": 5,
    "deep_gm": 6,
    "extracerebral": 7,
}
#: WM fraction above which a voxel may hold lesion (the lesion fraction never exceeds it).
_LESION_WM_MIN = 0.25


@dataclass
class Phantom:
    """One synthetic subject.

    Attributes
    ----------
    t1 : nibabel.Nifti1Image
        3D T1 (float32) on a random grid (voxel order, voxel size, head position).
    flair : nibabel.Nifti1Image
        2D thick-slice FLAIR (float32) on its own grid; slices along array axis 2.
    flair_label : nibabel.Nifti1Image
        uint8 lesion label on the FLAIR grid: ``thick_slice_average(lesion_mask) > 0.5``
        (arguments in ``params["flair_label_rule"]``), then label noise if asked.
    lesion_mask : nibabel.Nifti1Image
        uint8 exact lesion mask on the T1 grid (lesion fraction above 0.5).
    tissue : nibabel.Nifti1Image
        uint8 tissue labels on the T1 grid, codes in :data:`TISSUE_LABELS`.
    brain_mask : nibabel.Nifti1Image
        uint8 brain (parenchyma, ventricles and sulcal CSF) on the T1 grid.
    subject_to_mni : (4, 4) array
        Scanner mm to MNI152 mm: the linear part of the simulated warp.
    params : dict
        Every generating parameter and the resulting volumes (mL).
    """

    t1: nib.Nifti1Image
    flair: nib.Nifti1Image
    flair_label: nib.Nifti1Image
    lesion_mask: nib.Nifti1Image
    tissue: nib.Nifti1Image
    brain_mask: nib.Nifti1Image
    subject_to_mni: np.ndarray
    params: dict = field(default_factory=dict)

    #: File name endings used by :meth:`save`.
    SUFFIXES = {
        "t1": "_T1w.nii.gz",
        "flair": "_FLAIR.nii.gz",
        "flair_label": "_space-FLAIR_desc-wmh_mask.nii.gz",
        "lesion_mask": "_desc-lesion_mask.nii.gz",
        "tissue": "_dseg.nii.gz",
        "brain_mask": "_desc-brain_mask.nii.gz",
    }

    def save(self, out_dir, stem: str = "phantom") -> dict[str, Path]:
        """Write every image (NIfTI) and the parameters (``<stem>_params.json``) atomically.

        Returns
        -------
        dict of str to Path
            One entry per attribute written, plus ``"params"``.
        """
        out_dir = Path(out_dir)
        paths = {
            name: save_img(getattr(self, name), out_dir / f"{stem}{suffix}") for name, suffix in self.SUFFIXES.items()
        }
        record = {**self.params, "subject_to_mni": self.subject_to_mni, "tissue_labels": TISSUE_LABELS}
        paths["params"] = write_json(record, out_dir / f"{stem}_params.json")
        return paths


def _image(data: np.ndarray, affine: np.ndarray) -> nib.Nifti1Image:
    img = nib.Nifti1Image(data, affine)
    img.set_sform(affine, 1)
    img.set_qform(affine, 1)
    img.header.set_xyzt_units("mm")
    return img


def random_streams(seed: int) -> list[np.random.Generator]:
    """Independent generators for anatomy, lesions, contrasts, T1 noise, FLAIR and label noise.

    Separate streams keep, for example, the anatomy of a seed unchanged when only the lesion
    burden or label noise changes. Two more streams (lesion appearance on the T1, the variation
    of a real lesion mask) follow; a stream's draws do not depend on how many are spawned.
    """
    return [np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(8)]


def _check_options(
    lesion_burden, voxel_size_mm, flair_slice_mm, flair_gap_mm, flair_inplane_mm, flair_orientation, age_years
):
    if not 0 <= lesion_burden <= 10:
        raise OptionError(f"lesion_burden={lesion_burden} must lie in 0-10 (1 is moderate, 3 severe).")
    if not 0.7 <= voxel_size_mm <= 3.0:
        raise OptionError(f"voxel_size_mm={voxel_size_mm} must lie in 0.7-3 mm (1 for real use, 2 for fast tests).")
    if not (0.3 <= flair_inplane_mm <= 3.0 and 0.5 <= flair_slice_mm <= 10.0 and 0 <= flair_gap_mm <= 5.0):
        raise OptionError(
            f"FLAIR geometry in-plane {flair_inplane_mm} mm, slice {flair_slice_mm} mm, gap {flair_gap_mm} mm is "
            "outside 0.3-3, 0.5-10 and 0-5 mm."
        )
    if flair_orientation not in ("axial", "coronal", "sagittal"):
        raise OptionError(f"flair_orientation={flair_orientation!r} is unknown; use 'axial', 'coronal' or 'sagittal'.")
    if age_years is not None and not 0 < age_years < 120:
        raise OptionError(f"age_years={age_years} must be an age in years (0-120) or None.")


def _labels(fractions: dict, skull: bool, region: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tissue codes (largest fraction; lesion exactly where its fraction is above 0.5) and brain mask.

    Only voxels in ``region`` (bool) can be anything but background.
    """
    where = np.flatnonzero(region)
    names = ["csf", "gm", "wm", "ventricle", "deep_gm"]
    stack = [fractions[name].ravel()[where] for name in names]
    lesion = fractions["lesion"].ravel()[where]
    stack[2] = stack[2] + lesion  # lesion voxels below 0.5 count as white matter
    codes = [TISSUE_LABELS[name] for name in names]
    brain = sum(stack)
    if skull:
        stack.append(sum(fractions[name].ravel()[where] for name in HEAD_LAYERS))
        codes.append(TISSUE_LABELS["extracerebral"])
    stack.insert(0, np.clip(1.0 - sum(stack), 0.0, 1.0))
    codes.insert(0, TISSUE_LABELS["background"])
    values = np.asarray(codes, dtype=np.uint8)[np.argmax(np.stack(stack), axis=0)]
    values[lesion > 0.5] = TISSUE_LABELS["lesion"]
    tissue = np.zeros(region.size, dtype=np.uint8)
    tissue[where] = values
    brain_mask = np.zeros(region.size, dtype=np.uint8)
    brain_mask[where] = brain > 0.5
    return tissue.reshape(region.shape), brain_mask.reshape(region.shape)


def make_phantom(
    seed: int = 0,
    *,
    lesion_burden: float = 1.0,
    voxel_size_mm: float = 1.0,
    flair_slice_mm: float = 5.0,
    flair_gap_mm: float = 0.0,
    flair_inplane_mm: float = 0.9,
    flair_orientation: str = "axial",
    skull: bool = False,
    age_years: float | None = None,
    label_noise=None,
    real_lesion_mask=None,
    lesion_contrast: float | None = None,
    real_mask_variation: dict | None = None,
) -> Phantom:
    """Make one synthetic subject with known white-matter lesions.

    Parameters
    ----------
    seed : int, default 0
        Everything random derives from it; the same arguments give the same phantom.
    lesion_burden : float, default 1.0
        0: no lesions; 1: moderate (a few mL); 3: severe and confluent.
    voxel_size_mm : float, default 1.0
        Nominal T1 voxel size (each axis gets 0.95-1.1 times it). 2.0 is the fast path for
        tests (anatomy from the 2 mm template maps).
    flair_slice_mm : float, default 5.0
        FLAIR slice thickness (mm).
    flair_gap_mm : float, default 0.0
        Gap between FLAIR slices (mm).
    flair_inplane_mm : float, default 0.9
        FLAIR in-plane voxel size (mm).
    flair_orientation : {"axial", "coronal", "sagittal"}, default "axial"
        Slice orientation relative to the head (plus a small random tilt).
    skull : bool, default False
        Skull-on head (scalp fat, skull, diploe, CSF rim, noisy air) instead of a
        skull-stripped brain on a zero background.
    age_years : float, optional
        Drives atrophy; drawn in 50-90 when not given.
    label_noise : None, float in 0-1 or dict, optional
        Corrupt the FLAIR label (missed lesions, spurious blobs, shift); see
        :func:`wmhkit.synth.acquisition.apply_label_noise`.
    real_lesion_mask : path, optional
        A real lesion mask in MNI space (:mod:`wmhkit.synth.real_masks`): a randomly warped,
        flipped and load-scaled variant of it is added to the drawn lesions (white matter only).
    lesion_contrast : float, optional
        Every lesion darkens the T1 by this share of the white-to-grey-matter gap (0-1.3);
        default: drawn per subject and lesion (:mod:`wmhkit.synth.appearance`).
    real_mask_variation : dict, optional
        Fixes some of the real mask's variation (``keep_share``, ``grow_mm``, ``flip``,
        ``warp_mm``; see :func:`wmhkit.synth.real_masks.real_lesion_fraction`).

    Returns
    -------
    Phantom

    Examples
    --------
    >>> phantom = make_phantom(3, voxel_size_mm=2.0)
    >>> phantom.params["lesion_ml"] > 0, phantom.t1.get_data_dtype().name
    (True, 'float32')
    """
    _check_options(
        lesion_burden, voxel_size_mm, flair_slice_mm, flair_gap_mm, flair_inplane_mm, flair_orientation, age_years
    )
    started = time.perf_counter()
    rng_anatomy, rng_lesion, rng_contrast, rng_t1, rng_flair, rng_label, rng_look, rng_real = random_streams(seed)
    anatomy = make_anatomy(rng_anatomy, voxel_size_mm=voxel_size_mm, skull=skull, age_years=age_years)
    tissue_maps = load_tissue_maps(2 if voxel_size_mm >= 1.5 else 1)
    fractions = dict(anatomy.fractions)
    wm = fractions["wm"]
    where = np.flatnonzero(wm.ravel() > _LESION_WM_MIN)
    lesion_values, lesion_params = lesion_fraction(
        rng_lesion,
        anatomy.mni_mm.reshape(3, -1)[:, where],
        wm.ravel()[where],
        anatomy.ventricle_distance_mm.ravel()[where],
        tissue_maps.horn_tips_mm,
        tissue_maps.deep_wm_mm,
        lesion_burden=lesion_burden,
    )
    if real_lesion_mask is not None:
        from wmhkit.synth.real_masks import real_lesion_fraction

        real_values, lesion_params["real_mask"] = real_lesion_fraction(
            rng_real, anatomy.mni_mm.reshape(3, -1)[:, where], real_lesion_mask, **(real_mask_variation or {}))
        lesion_values = np.maximum(lesion_values, real_values * wm.ravel()[where])
    lesion = np.zeros(wm.size, dtype=np.float32)
    lesion[where] = lesion_values
    lesion = lesion.reshape(wm.shape)
    fractions["wm"] = wm - lesion
    fractions["lesion"] = lesion
    lesion_mask = (lesion > 0.5).astype(np.uint8)
    brain_fraction = anatomy.brain_fraction()
    head_fraction = brain_fraction + sum(fractions[n] for n in HEAD_LAYERS) if skull else brain_fraction
    head = head_fraction > 0.05
    tissue, brain_mask = _labels(fractions, skull, head)

    contrasts = draw_contrasts(rng_contrast)
    # Lesions render as white matter on the T1, then darken by a share of the WM-GM gap.
    darkening, appearance = lesion_darkening(rng_look, lesion, np.sqrt((anatomy.affine[:3, :3] ** 2).sum(axis=0)),
                                            fixed_share=lesion_contrast)
    t1_clean = render(fractions, {**contrasts["t1"], "lesion": 1.0})
    t1_clean -= darkening * np.float32(1.0 - contrasts["t1"]["gm"])
    del darkening
    contrasts["t1"]["lesion"] = 1.0 - appearance["typical_share"] * (1.0 - contrasts["t1"]["gm"])
    t1_data, t1_params = corrupt(
        rng_t1,
        t1_clean,
        voxel_size_mm=voxel_size_mm,
        scale=contrasts["t1_scale"],
        foreground=None if skull else head,
    )
    t1_affine = anatomy.affine

    start, stop = bounding_box(head)
    lo, hi = start - 0.5, stop - 0.5
    corners = np.array(np.meshgrid(*zip(lo, hi), indexing="ij")).reshape(3, -1)
    corners_mm = t1_affine[:3, :3] @ corners + t1_affine[:3, 3:4]
    flair_affine, flair_shape, flair_params = flair_grid(
        rng_flair,
        corners_mm,
        inplane_mm=flair_inplane_mm,
        slice_mm=flair_slice_mm,
        gap_mm=flair_gap_mm,
        orientation=flair_orientation,
    )
    flair_clean, lr_head = acquire(
        render(fractions, contrasts["flair"]),
        head,
        t1_affine,
        flair_shape,
        flair_affine,
        slice_mm=flair_slice_mm,
        gap_mm=flair_gap_mm,
        step_mm=max(IMAGE_STEP_MM, float(voxel_size_mm)),
    )
    flair_data, flair_noise = corrupt(
        rng_flair,
        flair_clean,
        voxel_size_mm=float(np.mean(flair_params["flair_voxel_mm"])),
        scale=contrasts["flair_scale"],
        foreground=None if skull else lr_head,
        blur=False,
    )
    label, rule = flair_label(
        lesion_mask,
        t1_affine,
        flair_shape,
        flair_affine,
        slice_mm=flair_slice_mm,
        gap_mm=flair_gap_mm,
        step_mm=0.5 if voxel_size_mm < 1.5 else 1.0,
    )
    clean_label_voxels = int(label.sum())
    if label_noise:
        wm_lr = nearest_on_lr(tissue == TISSUE_LABELS["wm"], t1_affine, flair_shape, flair_affine)
        label, noise_params = apply_label_noise(rng_label, label, wm_lr, flair_params["flair_voxel_mm"], label_noise)
    else:
        noise_params = {"label_noise": None}

    t1_voxel_ml = abs(np.linalg.det(t1_affine[:3, :3])) / 1000.0
    flair_voxel_ml = abs(np.linalg.det(flair_affine[:3, :3])) / 1000.0
    params = {
        "seed": int(seed),
        "lesion_burden": float(lesion_burden),
        "voxel_size_mm": float(voxel_size_mm),
        "skull": bool(skull),
        **anatomy.params,
        **lesion_params,
        "lesion_appearance": appearance,
        "contrasts": contrasts,
        "t1_corruption": t1_params,
        "flair_corruption": flair_noise,
        **flair_params,
        "flair_label_rule": rule,
        **noise_params,
        "lesion_ml": float(lesion_mask.sum() * t1_voxel_ml),
        "lesion_partial_volume_ml": float(lesion.sum() * t1_voxel_ml),
        "flair_label_clean_ml": float(clean_label_voxels * flair_voxel_ml),
        "flair_label_ml": float(label.sum() * flair_voxel_ml),
        "brain_ml": float(brain_fraction.sum() * t1_voxel_ml),
        "ventricle_ml": float(fractions["ventricle"].sum() * t1_voxel_ml),
        "wm_ml": float((fractions["wm"] + lesion).sum() * t1_voxel_ml),
    }
    logger.info("phantom seed %d: %.2f mL lesion, %.1f s", seed, params["lesion_ml"], time.perf_counter() - started)
    return Phantom(
        t1=_image(t1_data, t1_affine),
        flair=_image(flair_data, flair_affine),
        flair_label=_image(label.astype(np.uint8), flair_affine),
        lesion_mask=_image(lesion_mask, t1_affine),
        tissue=_image(tissue, t1_affine),
        brain_mask=_image(brain_mask, t1_affine),
        subject_to_mni=anatomy.subject_to_mni,
        params=params,
    )
