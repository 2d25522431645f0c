"""User training data: a manifest of (3D T1, 2D FLAIR, label on the FLAIR grid[, transform]).

Manifest: a CSV (or TSV) with columns ``t1``, ``flair``, ``label`` and optionally ``transform``
and ``case_id``. Relative paths are read from the manifest's folder. ``transform`` names a text
file holding a 4x4 matrix (``numpy.loadtxt``) that maps T1 world coordinates (RAS mm) to FLAIR
world coordinates; an empty cell means the FLAIR is registered to the T1 here (rigid, mutual
information, SimpleITK) and the registration quality is recorded per case.

Registration quality is the normalised mutual information of T1 and FLAIR inside the head after
registration, ``2 I(T1; FLAIR) / (H(T1) + H(FLAIR))`` (0 = independent, 1 = one determines the
other). Well-registered T1/FLAIR pairs of the same head typically score above 0.15; cases below
:data:`REGISTRATION_WARN` are logged and also stand out in the two-step label checks (displaced label).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from wmhkit.errors import TableError
from wmhkit.io import check_img

__all__ = ["REGISTRATION_WARN", "read_manifest", "register_flair_to_t1", "registration_quality", "manifest_case"]

logger = logging.getLogger(__name__)

#: Normalised mutual information below which a FLAIR-to-T1 registration is reported as doubtful.
REGISTRATION_WARN = 0.1
_FLIP = np.diag([-1.0, -1.0, 1.0, 1.0])  # RAS <-> LPS (SimpleITK's physical space)


def read_manifest(path) -> pd.DataFrame:
    """Read and check a training manifest; returns one row per case with absolute paths.

    Raises
    ------
    wmhkit.errors.TableError
        When the file is unreadable, a column is missing, a path does not exist or a case_id repeats.
    """
    path = Path(path)
    if not path.is_file():
        raise TableError(f"Manifest {path} does not exist; give a CSV with columns t1, flair, label.")
    sep = "\t" if path.suffix.lower() in (".tsv", ".txt") else ","
    try:
        table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False)
    except Exception as exc:  # pandas raises several types
        raise TableError(f"Manifest {path} could not be read as a table ({type(exc).__name__}).") from None
    missing = [c for c in ("t1", "flair", "label") if c not in table.columns]
    if missing:
        raise TableError(f"Manifest {path} lacks the column(s) {', '.join(missing)}; add them (paths to NIfTI files).")
    if table.empty:
        raise TableError(f"Manifest {path} has no rows; add one row per training case.")
    if "transform" not in table.columns:
        table["transform"] = ""
    if "case_id" not in table.columns:
        table["case_id"] = [f"case{i:04d}" for i in range(len(table))]
    if table["case_id"].duplicated().any():
        dup = table.loc[table["case_id"].duplicated(), "case_id"].iloc[0]
        raise TableError(f"Manifest {path} repeats case_id {dup!r}; give every row a unique case_id.")
    for column in ("t1", "flair", "label", "transform"):
        resolved = []
        for row, value in enumerate(table[column]):
            if column == "transform" and not value.strip():
                resolved.append("")
                continue
            full = Path(value) if Path(value).is_absolute() else path.parent / value
            if not full.exists():
                raise TableError(f"Manifest {path}, row {row + 1}, column {column}: {full} does not exist.")
            resolved.append(str(full))
        table[column] = resolved
    return table.reset_index(drop=True)


def _sitk_image(img):
    import SimpleITK as sitk

    data = np.asarray(img.dataobj, dtype=np.float32)
    image = sitk.GetImageFromArray(np.ascontiguousarray(data.transpose(2, 1, 0)))
    affine = _FLIP @ np.asarray(img.affine, dtype=np.float64)
    spacing = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    image.SetSpacing(spacing.tolist())
    image.SetOrigin(affine[:3, 3].tolist())
    image.SetDirection((affine[:3, :3] / spacing).ravel().tolist())
    return image


def registration_quality(t1, flair, t1_to_flair: np.ndarray, bins: int = 32) -> float:
    """Normalised mutual information (0-1) of the FLAIR and the T1 sampled at the FLAIR voxels."""
    from scipy import ndimage

    flair_data = np.asarray(flair.dataobj, dtype=np.float32)
    t1_data = np.asarray(t1.dataobj, dtype=np.float32)
    flair_to_t1_vox = np.linalg.inv(t1.affine) @ np.linalg.inv(t1_to_flair) @ flair.affine
    idx = np.indices(flair_data.shape).reshape(3, -1).astype(np.float64)
    coords = flair_to_t1_vox[:3, :3] @ idx + flair_to_t1_vox[:3, 3:]
    sampled = ndimage.map_coordinates(t1_data, coords, order=1, mode="constant", cval=0.0)
    values = flair_data.reshape(-1)
    head = (values > np.percentile(values, 60)) & (sampled > 0)
    if head.sum() < 100:
        return 0.0
    joint, _, _ = np.histogram2d(values[head], sampled[head], bins=bins)
    joint = joint / joint.sum()
    px, py = joint.sum(axis=1), joint.sum(axis=0)

    def entropy(p):
        p = p[p > 0]
        return float(-(p * np.log(p)).sum())

    hx, hy, hxy = entropy(px), entropy(py), entropy(joint.ravel())
    return float(np.clip(2.0 * (hx + hy - hxy) / max(hx + hy, 1e-12), 0.0, 1.0))


def register_flair_to_t1(t1, flair, *, iterations: int = 100) -> tuple[np.ndarray, float]:
    """Rigid registration of a FLAIR to its T1 (mutual information).

    Parameters
    ----------
    t1, flair : str, os.PathLike or nibabel image
        The 3D T1 and the (thick-slice) FLAIR of one session.
    iterations : int, default 100
        Optimiser iterations per resolution level.

    Returns
    -------
    (numpy.ndarray, float)
        4x4 matrix mapping T1 world (RAS mm) to FLAIR world, and the registration quality
        (:func:`registration_quality`).
    """
    import SimpleITK as sitk

    from wmhkit.preprocess.alignment import transform_matrix

    t1, flair = check_img(t1), check_img(flair)
    fixed, moving = _sitk_image(t1), _sitk_image(flair)
    initial = sitk.CenteredTransformInitializer(fixed, moving, sitk.Euler3DTransform(),
                                                sitk.CenteredTransformInitializerFilter.MOMENTS)
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=32)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(0.1, seed=0)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(2.0, 0.01, iterations, relaxationFactor=0.6)
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel([4, 2])
    method.SetSmoothingSigmasPerLevel([2.0, 1.0])
    method.SetInitialTransform(initial, inPlace=False)
    result = method.Execute(fixed, moving)
    # SimpleITK maps fixed (T1) physical points to moving (FLAIR) points, in LPS.
    lps = transform_matrix(result.GetNthTransform(0) if hasattr(result, "GetNthTransform") else result)
    t1_to_flair = _FLIP @ lps @ _FLIP
    return t1_to_flair, registration_quality(t1, flair, t1_to_flair)


def manifest_case(row: dict, *, seed: int = 0, space: str = "mni"):
    """Build a :class:`~wmhkit.train.cases.Case` from one manifest row (prepares the T1, registers the FLAIR).

    ``space`` is the grid the case's T1 lives on: "mni" or "subject" (config ``data.space``).
    """
    from wmhkit.preprocess import align_to_mni
    from wmhkit.train.cases import make_case
    from wmhkit.train.recipe import _network_input

    t1 = check_img(row["t1"])
    flair = check_img(row["flair"])
    label = check_img(row["label"], check_voxels=False)
    if label.shape != flair.shape or not np.allclose(label.affine, flair.affine, atol=1e-3):
        raise TableError(f"Label {row['label']} is not on the grid of FLAIR {row['flair']}; give the label drawn on that FLAIR.")
    if row.get("transform"):
        t1_to_flair = np.loadtxt(row["transform"]).reshape(4, 4)
        quality = registration_quality(t1, flair, t1_to_flair)
        method = "given"
    else:
        t1_to_flair, quality = register_flair_to_t1(t1, flair)
        method = "rigid-mi"
    if quality < REGISTRATION_WARN:
        logger.warning("Case %s: FLAIR-to-T1 registration quality %.3f is low; check the pair.", row["case_id"], quality)
    # Only the alignment is needed: _network_input normalises the T1 itself (no brain mask or eTIV).
    alignment = align_to_mni(t1)
    grid, _ = _network_input(t1, alignment, space)
    meta = {"kind": "manifest", "space": space, "t1": row["t1"], "flair": row["flair"], "label": row["label"],
            "registration": method, "registration_quality": quality,
            "alignment_quality": float(alignment.quality)}
    return make_case(row["case_id"], label=label, t1_to_label_world=t1_to_flair, meta=meta, seed=seed, **grid)
