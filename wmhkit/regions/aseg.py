"""Regional parcels from a parcellation the user already has: FreeSurfer's aseg or SynthSeg's labels.

:func:`parcels_from_aseg` turns a subject's own label image into the parcels of
``tables/parcels.tsv`` on the lesion mask's grid, by the same derivation as the MNI parcel atlas
(:func:`wmhkit.regions.parcels.finish_parcels`), so every rule (periventricular/deep, bullseye
shells, lobes) runs on the subject's own ventricles, cortex, white matter and deep grey:

* ``aparc+aseg.mgz`` (FreeSurfer) and SynthSeg ``--parc`` output carry Desikan-Killiany cortex
  labels (1xxx/2xxx): the cortex lobes come from them, and each white-matter voxel takes the lobe
  of the nearest cortex voxel of its hemisphere.
* ``aseg.mgz`` and SynthSeg without ``--parc`` label the cortex 3 (left) and 42 (right) only:
  each such voxel takes the lobe of the nearest cortex voxel of its side in the MNI atlas brought
  by the alignment; ventricles, cortex extent, white matter and deep grey stay the subject's own.

Labels outside the table (5th ventricle, ``ctx-*-corpuscallosum``, ...) take the nearest known
label; midline white matter (corpus callosum, hypointensities) the side of the nearest lateral
white matter. The image must be in the subject's space (same scanner coordinates as the T1,
any grid: FreeSurfer's conformed 256^3 is sampled nearest-neighbour onto the T1's voxels).

:func:`freesurfer_etiv` reads FreeSurfer's eTIV from ``stats/aseg.stats`` beside ``mri/``.
"""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import nibabel as nib
import numpy as np

from wmhkit.errors import InputImageError, OptionError
from wmhkit.io import ImgLike, check_img, img_label, source_path
from wmhkit.io.arrays import grown_box
from wmhkit.regions.parcels import PARCEL_CODES, LOBES, _dk_to_parcel_lookup, _nearest_fill, finish_parcels, read_table

__all__ = ["aseg_anatomy_name", "freesurfer_etiv", "parcels_from_aseg", "phantom_aseg"]

logger = logging.getLogger(__name__)

#: aseg cortex labels without a lobe (plain aseg, SynthSeg without --parc) -> temporary parcel code.
_CORTEX_WITHOUT_LOBE = {3: 203, 42: 204}


@functools.lru_cache(maxsize=1)
def _aseg_lookup() -> np.ndarray:
    lookup = _dk_to_parcel_lookup().copy()
    for label, code in _CORTEX_WITHOUT_LOBE.items():
        lookup[label] = code
    lookup.setflags(write=False)
    return lookup


@functools.lru_cache(maxsize=1)
def _known_labels() -> np.ndarray:
    table = read_table("desikan_killiany_tissues")
    known = set(table["index"].astype(int)) | set(_CORTEX_WITHOUT_LOBE)
    return np.array(sorted(known - {0}))


def aseg_anatomy_name(aseg: ImgLike) -> str:
    """What drove the regions, as recorded in the summaries: ``aseg:<file name>``.

    >>> aseg_anatomy_name("fs/sub-01/mri/aparc+aseg.mgz")
    'aseg:aparc+aseg.mgz'
    """
    path = source_path(aseg) if not isinstance(aseg, (str, os.PathLike)) else str(aseg)
    return f"aseg:{Path(path).name if path else 'image'}"


def _labels_on_grid(checked: nib.Nifti1Image, reference: nib.Nifti1Image, label: str) -> np.ndarray:
    data = np.asarray(checked.dataobj)
    if data.dtype.kind == "f":
        data = np.rint(data)
    data = np.clip(data, 0, np.iinfo(np.int32).max).astype(np.int32, copy=False)
    if not np.isin(np.unique(data), _known_labels()).any():
        raise InputImageError(
            f"Parcellation {label} holds no FreeSurfer labels; pass FreeSurfer's aseg.mgz or aparc+aseg.mgz, "
            "or a SynthSeg label image."
        )
    shape = reference.shape[:3]
    if checked.shape[:3] == shape and np.allclose(checked.affine, reference.affine, atol=1e-3):
        return data
    from wmhkit.preprocess.resampling import resample_array

    on_grid = resample_array(data, checked.affine, shape, reference.affine, order=0)
    if not on_grid.any():
        raise InputImageError(
            f"Parcellation {label} does not overlap the T1's field of view; pass the parcellation made from "
            "this subject's T1 (same scanner coordinates)."
        )
    return on_grid


def _lobes_from_atlas(alignment, box_img: nib.Nifti1Image, label: str):
    """The ``cortex_lobes`` step of :func:`finish_parcels` for cortex labelled 3/42: nearest MNI-atlas lobe."""

    def give_lobes(sub: np.ndarray) -> None:
        without = {code: sub == code for code in _CORTEX_WITHOUT_LOBE.values()}
        if not any(mask.any() for mask in without.values()):
            return
        if alignment is None or not hasattr(alignment, "resample_to_subject"):
            raise OptionError(
                f"Parcellation {label} labels the cortex without lobes (aseg, or SynthSeg without --parc); pass "
                "the T1 or an alignment so the lobes can come from the MNI atlas, or use aparc+aseg."
            )
        from wmhkit.regions.parcels import load_parcels

        atlas = np.asarray(alignment.resample_to_subject(load_parcels(), reference=box_img, order=0).dataobj)
        all_cortex = np.isin(atlas, [PARCEL_CODES[f"cortex_{lobe}_{side}"] for lobe in LOBES for side in ("left", "right")])
        for (code, mask), side in zip(without.items(), ("left", "right")):
            if not mask.any():
                continue
            side_cortex = np.isin(atlas, [PARCEL_CODES[f"cortex_{lobe}_{side}"] for lobe in LOBES])
            source = side_cortex if side_cortex.any() else all_cortex
            if not source.any():  # the atlas misses the box entirely: a frontal guess beats no lobe
                sub[mask] = PARCEL_CODES[f"cortex_frontal_{side}"]
                continue
            sub[mask] = _nearest_fill(np.where(source, atlas, 0).astype(np.uint8), mask)[mask]

    return give_lobes


def parcels_from_aseg(aseg: ImgLike, reference: ImgLike, alignment=None) -> nib.Nifti1Image:
    """The subject's parcels (codes of ``tables/parcels.tsv``) from its FreeSurfer or SynthSeg labels.

    Parameters
    ----------
    aseg : path or nibabel image
        ``aseg.mgz``, ``aparc+aseg.mgz`` or a SynthSeg label image (same codes) in the subject's
        space: same scanner coordinates as ``reference``, any grid (sampled nearest-neighbour).
    reference : path or nibabel image
        The lesion mask (or T1) whose grid the parcels take.
    alignment : MNIAlignment or any object with ``resample_to_subject``, optional
        Needed only when the cortex has no lobes (labels 3/42): they come from the MNI atlas.

    Returns
    -------
    nibabel.Nifti1Image
        uint8 parcels on ``reference``'s grid, 0 outside the labelled brain.

    Raises
    ------
    wmhkit.errors.InputImageError
        When ``aseg`` holds no FreeSurfer label or does not overlap ``reference``.
    wmhkit.errors.OptionError
        When the cortex has no lobes and no alignment is given.
    """
    label = img_label(aseg)
    checked = check_img(aseg, check_voxels=False, min_extent_mm=0)
    ref = check_img(reference, check_voxels=False, min_extent_mm=0)
    labels = _labels_on_grid(checked, ref, label)
    lookup = _aseg_lookup()
    codes = lookup[np.where(labels < lookup.size, labels, 0)]
    brain = labels > 0
    parcels = np.zeros(ref.shape[:3], dtype=np.uint8)
    box = grown_box(brain, 2)
    if box is None:
        raise InputImageError(f"Parcellation {label} labels no voxel of the T1's grid; pass this subject's parcellation.")
    shift = np.eye(4)
    shift[:3, 3] = [s.start for s in box]
    box_img = nib.Nifti1Image(np.zeros(tuple(s.stop - s.start for s in box), np.uint8), np.asarray(ref.affine, float) @ shift)
    sub = np.ascontiguousarray(codes[box])
    finish_parcels(sub, brain[box], cortex_lobes=_lobes_from_atlas(alignment, box_img, label))
    if not np.isin(sub, np.arange(11, 19)).any():
        raise InputImageError(f"Parcellation {label} holds no cerebral cortex label; pass a whole-brain aseg or SynthSeg image.")
    parcels[box] = sub
    logger.info("Parcels from %s: %d labelled voxels", label, int(brain.sum()))
    out = nib.Nifti1Image(parcels, ref.affine)
    out.set_sform(ref.affine, 1)
    out.set_qform(ref.affine, 1)
    return out


def freesurfer_etiv(aseg: ImgLike) -> float | None:
    """FreeSurfer's eTIV (mL) from ``<subject>/stats/aseg.stats`` beside ``<subject>/mri/<aseg>``; None without it.

    Parameters
    ----------
    aseg : path or nibabel image
        The parcellation (only a path can lead to its stats; an image gives None).

    Returns
    -------
    float or None
        ``EstimatedTotalIntraCranialVol`` in mL (the file's mm^3 / 1000).
    """
    path = str(aseg) if isinstance(aseg, (str, os.PathLike)) else source_path(aseg)
    if not path:
        return None
    stats = Path(path).resolve().parent.parent / "stats" / "aseg.stats"
    if not stats.is_file():
        return None
    for line in stats.read_text(errors="replace").splitlines():
        if line.startswith("# Measure EstimatedTotalIntraCranialVol"):
            fields = [field.strip() for field in line.split(",")]
            try:
                value = float(fields[3])
            except (IndexError, ValueError):
                break
            return value / 1000.0 if fields[4:5] != ["mL"] else value
    logger.warning("%s has no readable EstimatedTotalIntraCranialVol line; using wmhkit's eTIV.", stats)
    return None


def phantom_aseg(phantom) -> nib.Nifti1Image:
    """A phantom's true tissue labels written as an aseg-style image (FreeSurfer codes, no lobes).

    White matter and lesion 2/41, cortex 3/42, lateral ventricles 4/43, deep grey 10/49 (one
    code per side: every deep-grey code maps to the same parcel), sulcal CSF 24; left and right by
    the sign of each voxel's MNI x (``phantom.subject_to_mni``). The phantom has no posterior-fossa
    labels: voxels the MNI atlas calls infratentorial at that MNI position become cerebellum
    (7/46 white matter, 8/47 cortex) or brain stem (16). For :mod:`wmhkit.synth` phantoms in
    tests and ``benchmarks/aseg_agreement.py``.

    Parameters
    ----------
    phantom : wmhkit.synth.Phantom
        Its ``tissue`` image and ``subject_to_mni``.

    Returns
    -------
    nibabel.Nifti1Image
        int16 labels on the phantom's T1 grid.
    """
    from wmhkit.preprocess.resampling import resample_array
    from wmhkit.regions.parcels import load_parcels, tissue_lookup
    from wmhkit.synth.phantom import TISSUE_LABELS

    tissue = np.asarray(phantom.tissue.dataobj)
    affine = np.asarray(phantom.tissue.affine, float)
    to_mni = np.asarray(phantom.subject_to_mni, float) @ affine
    ijk = np.indices(tissue.shape, dtype=np.float32).reshape(3, -1)
    left = ((to_mni[0, :3] @ ijk) + to_mni[0, 3]).reshape(tissue.shape) < 0
    atlas = load_parcels()
    infra = tissue_lookup("infratentorial")[
        resample_array(np.asarray(atlas.dataobj), atlas.affine, tissue.shape, affine, phantom.subject_to_mni, order=0)
    ]
    codes = {  # tissue -> (left, right) aseg code
        "csf": (24, 24), "gm": (3, 42), "wm": (2, 41), "lesion": (2, 41), "ventricle": (4, 43), "deep_gm": (10, 49),
    }
    labels = np.zeros(tissue.shape, dtype=np.int16)
    for name, (code_left, code_right) in codes.items():
        where = tissue == TISSUE_LABELS[name]
        labels[where] = np.where(left[where], code_left, code_right)
    for name, (code_left, code_right) in (("wm", (7, 46)), ("lesion", (7, 46)), ("gm", (8, 47)), ("deep_gm", (16, 16))):
        where = infra & (tissue == TISSUE_LABELS[name])
        labels[where] = np.where(left[where], code_left, code_right)
    out = nib.Nifti1Image(labels, affine)
    out.set_sform(affine, 1)
    out.set_qform(affine, 1)
    return out
