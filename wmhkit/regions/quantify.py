"""One call for a subject's regional lesion burden: tidy regions table, lesion table, summary."""

from __future__ import annotations

import dataclasses
import logging
import os
import time

import nibabel as nib
import numpy as np
import pandas as pd

from wmhkit.errors import OptionError
from wmhkit.io import ImgLike, bids_stem, check_img, check_mask, source_path
from wmhkit.regions.anatomy import subject_anatomy
from wmhkit.regions.lesions import fazekas_estimate, label_lesions, lesion_table
from wmhkit.regions.rules import DEFAULT_SCHEMES, SCHEMES, apply_scheme
from wmhkit.regions.user_atlas import atlas_on_grid, atlas_regions, read_label_table

__all__ = ["RegionsResult", "REGION_COLUMNS", "quantify_subject", "warp_to_mni"]

logger = logging.getLogger(__name__)

#: Columns of the tidy regions table.
REGION_COLUMNS = ["subject", "scheme", "region", "lesion_ml", "region_ml", "fraction"]


@dataclasses.dataclass
class RegionsResult:
    """Regional quantification of one subject.

    Attributes
    ----------
    regions : pandas.DataFrame
        Tidy table, one row per scheme and region: ``subject``, ``scheme``, ``region``,
        ``lesion_ml``, ``region_ml`` (mL of the region's tissue; NaN where a scheme defines no
        tissue region) and ``fraction`` (lesion_ml / region_ml). Each scheme has an ``other``
        row (lesion outside its regions), so a scheme's ``lesion_ml`` sums to the total.
    lesions : pandas.DataFrame
        One row per connected lesion (see :mod:`wmhkit.regions.lesions`).
    summary : dict
        ``subject``, ``lesion_ml``, ``lesion_count``, ``periventricular_ml`` and ``deep_ml``
        (continuity rule), ``fazekas_pv_estimate``, ``fazekas_deep_estimate``,
        ``fazekas_estimate`` (rule-based estimates, not ratings), ``largest_lesion_ml``,
        ``ventricle_ml``, ``ventricles_refined``, ``regions_anatomy`` (``"mni_atlas"`` or
        ``"aseg:<file name>"``), ``seconds``.
    """

    regions: pd.DataFrame
    lesions: pd.DataFrame
    summary: dict

    def save(self, out_dir: str | os.PathLike, stem: str) -> dict:
        """Write ``<stem>_regions.tsv`` and ``<stem>_lesions.tsv`` into ``out_dir``; returns the paths."""
        from wmhkit.io import output_paths, write_tsv

        paths = output_paths(f"{stem}.nii.gz", out_dir)
        return {"regions_tsv": write_tsv(self.regions, paths.regions_tsv), "lesions_tsv": write_tsv(self.lesions, paths.lesions_tsv)}


def _subject_name(subject, *images) -> str:
    if subject is not None:
        return str(subject)
    for img in images:
        path = source_path(img) if img is not None else None
        if path:
            return bids_stem(path)
    return "subject"


def _scheme_rows(subject, scheme, regions, voxel_ml) -> list[tuple]:
    n = len(regions.names)
    lesion_counts = np.bincount(regions.lesion, minlength=n + 1)
    if regions.tissue is None:
        tissue_counts = np.full(n, np.nan)
    else:
        tissue = regions.tissue[regions.tissue >= 0]
        tissue_counts = np.bincount(tissue, minlength=n).astype(float)
    rows = []
    for index, name in enumerate(regions.names + ["other"]):
        lesion_ml = lesion_counts[index] * voxel_ml
        region_ml = tissue_counts[index] * voxel_ml if index < n else np.nan
        fraction = lesion_ml / region_ml if region_ml and np.isfinite(region_ml) else np.nan
        rows.append((subject, scheme, name, lesion_ml, region_ml, fraction))
    return rows


def quantify_subject(
    lesion_mask: ImgLike,
    t1: ImgLike | None = None,
    *,
    alignment=None,
    subject: str | None = None,
    schemes=DEFAULT_SCHEMES,
    atlas: ImgLike | None = None,
    atlas_labels=None,
    atlas_space: str = "auto",
    refine_ventricles: bool = True,
    aseg: ImgLike | None = None,
) -> RegionsResult:
    """Regional lesion burden of one subject.

    Parameters
    ----------
    lesion_mask : path or nibabel image
        Lesion mask (or probability map, thresholded at 0.5) on the subject's grid.
    t1 : path or nibabel image, optional
        The subject's T1 on the mask's grid. Used to align to MNI when no ``alignment`` is
        given and to refine the atlas ventricles (:mod:`wmhkit.regions.ventricles`).
    alignment : MNIAlignment or any object with ``resample_to_subject``, optional
        Subject -> MNI152 alignment (``wmhkit.preprocess.align_to_mni``). For a mask already
        in MNI space pass ``wmhkit.regions.identity_alignment()``.
    subject : str, optional
        Subject identifier for the tables; default the mask's (or T1's) file stem, else "subject".
    schemes : sequence of str, default every scheme
        Among ``pv_10mm``, ``pv_3_13mm``, ``pv_continuity``, ``pv_nearest``, ``lobes``,
        ``bullseye``, ``reference4`` (defined in :mod:`wmhkit.regions.rules`).
    atlas : path or nibabel image, optional
        A user label atlas (MNI or subject space); reported as scheme ``atlas``.
    atlas_labels : path, DataFrame or dict, optional
        Its label table (see :func:`wmhkit.regions.user_atlas.read_label_table`).
    atlas_space : {"auto", "subject", "mni"}, default "auto"
        Where ``atlas`` lives; "auto" decides by its grid.
    refine_ventricles : bool, default True
        Refine the atlas ventricles on ``t1`` (no effect without ``t1``).
    aseg : path or nibabel image, optional
        The subject's FreeSurfer ``aseg.mgz``/``aparc+aseg.mgz`` or SynthSeg labels, in its space:
        the regions follow its ventricles, cortex and lobes instead of the MNI atlas
        (:mod:`wmhkit.regions.aseg`; no ventricle refinement). ``summary["regions_anatomy"]``
        says which drove them: ``"mni_atlas"`` or ``"aseg:<file name>"``.

    Returns
    -------
    RegionsResult

    Raises
    ------
    wmhkit.errors.OptionError
        Without ``t1`` and ``alignment``, or for an unknown scheme.
    wmhkit.errors.InputImageError
        When the mask and the T1 are not on the same grid.
    """
    start = time.perf_counter()
    schemes = [schemes] if isinstance(schemes, str) else list(schemes)
    unknown = [s for s in schemes if s not in SCHEMES]
    if unknown:
        raise OptionError(f"Region scheme {unknown[0]!r} is unknown; choose among {', '.join(SCHEMES)}.")
    t1_img = check_img(t1, check_voxels=False) if t1 is not None else None
    mask_img = check_mask(lesion_mask, reference=t1_img)  # binarised once, on the T1's grid
    if alignment is None:
        if t1_img is None:
            raise OptionError(
                "quantify_subject needs the subject's T1 or an alignment to place the atlas; pass t1= or alignment=."
            )
        from wmhkit.preprocess import align_to_mni

        alignment = align_to_mni(t1_img)
    name = _subject_name(subject, lesion_mask, t1)
    lesion_full = np.asarray(mask_img.dataobj) > 0
    t1_data = None if t1_img is None else np.asanyarray(t1_img.dataobj)  # only the brain's box is converted
    own_parcels, anatomy_name = None, "mni_atlas"
    if aseg is not None:
        from wmhkit.regions.aseg import aseg_anatomy_name, parcels_from_aseg

        own_parcels = np.asarray(parcels_from_aseg(aseg, mask_img, alignment).dataobj)
        anatomy_name = aseg_anatomy_name(aseg)
    anatomy = subject_anatomy(mask_img, alignment, t1=t1_data, lesion=lesion_full, refine=refine_ventricles,
                              parcels=own_parcels)
    lesion = lesion_full[anatomy.box]
    components = label_lesions(lesion)
    voxel_ml = anatomy.voxel_ml

    rows: list[tuple] = []
    computed = {}
    for scheme in dict.fromkeys(schemes + ["lobes", "bullseye", "pv_continuity"]):
        computed[scheme] = apply_scheme(scheme, anatomy, lesion, components)
        if scheme in schemes:
            rows += _scheme_rows(name, scheme, computed[scheme], voxel_ml)
        computed[scheme].tissue = None  # only the lesions' classes are read below; the voxel map is box-sized
    regions = pd.DataFrame(rows, columns=REGION_COLUMNS)
    if atlas is not None:
        labels = atlas_on_grid(atlas, mask_img, alignment=alignment, space=atlas_space)
        user = atlas_regions(labels, lesion_full, read_label_table(atlas_labels) if atlas_labels is not None else None, voxel_ml)
        user.insert(0, "scheme", "atlas")
        user.insert(0, "subject", name)
        regions = pd.concat([regions, user[REGION_COLUMNS]], ignore_index=True)

    pv_class = computed["pv_continuity"].lesion
    box_shift = np.eye(4)
    box_shift[:3, 3] = [s.start for s in anatomy.box]
    lesions = lesion_table(
        anatomy,
        lesion,
        components,
        np.asarray(mask_img.affine, float) @ box_shift,
        subject=name,
        subject_to_mni=getattr(alignment, "subject_to_mni", None),
        lobes=computed["lobes"],
        bullseye=computed["bullseye"],
        pv_class=pv_class,
    )
    pv_counts = np.bincount(pv_class, minlength=3)
    summary = {
        "subject": name,
        "lesion_ml": float(lesion_full.sum() * voxel_ml),
        "lesion_count": int(components[1]),
        "periventricular_ml": float(pv_counts[0] * voxel_ml),
        "deep_ml": float(pv_counts[1] * voxel_ml),
        **fazekas_estimate(lesions),
        "largest_lesion_ml": float(lesions["lesion_ml"].max()) if len(lesions) else 0.0,
        "ventricle_ml": anatomy.ventricles.get("ventricle_ml", float("nan")),
        "ventricles_refined": bool(anatomy.ventricles.get("refined", False)),
        "regions_anatomy": anatomy_name,
        "seconds": round(time.perf_counter() - start, 3),
    }
    logger.info("Regions of %s: %d lesions, %.2f mL in %.2f s", name, summary["lesion_count"], summary["lesion_ml"], summary["seconds"])
    return RegionsResult(regions=regions, lesions=lesions, summary=summary)


def warp_to_mni(img: ImgLike, alignment, *, kind: str = "mask") -> nib.Nifti1Image:
    """Warp a subject-space lesion mask or probability map to the MNI152 1 mm grid (group maps).

    Parameters
    ----------
    img : path or nibabel image
        Lesion mask (``kind="mask"``) or probability map (``kind="probseg"``) on the subject grid.
    alignment : MNIAlignment
        The subject's alignment (``resample_to_mni`` is used).
    kind : {"mask", "probseg"}, default "mask"
        A mask is interpolated linearly and thresholded at 0.5 (uint8 0/1); a probability
        map is interpolated linearly (float32 0-1).

    Returns
    -------
    nibabel.Nifti1Image
        On the MNI152 2009a 1 mm grid (197 x 233 x 189).
    """
    if kind not in ("mask", "probseg"):
        raise OptionError(f"kind={kind!r} is unknown; use 'mask' or 'probseg'.")
    checked = check_img(img, check_voxels=False)
    data = np.asarray(checked.dataobj, dtype=np.float32)
    if kind == "mask":
        data = (data > 0.5).astype(np.float32)
    warped = alignment.resample_to_mni(nib.Nifti1Image(data, checked.affine), order=1)
    values = np.asarray(warped.dataobj)
    out = (values > 0.5).astype(np.uint8) if kind == "mask" else np.clip(values, 0, 1).astype(np.float32)
    result = nib.Nifti1Image(out, warped.affine)
    result.set_sform(warped.affine, 4)
    result.set_qform(warped.affine, 4)
    return result
