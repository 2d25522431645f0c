"""The cohort's lesion-frequency map in MNI space: the fraction of subjects with a lesion at
each MNI voxel, from the per-subject MNI-space masks, as a NIfTI image and a figure.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterable

import nibabel as nib
import numpy as np

from wmhkit.errors import InputImageError
from wmhkit.io import save_img, sidecar_path, write_json

__all__ = ["MAP_NAME", "FIGURE_NAME", "lesion_frequency_map", "write_group_map"]

logger = logging.getLogger(__name__)

MAP_NAME = "wmhkit_space-MNI152NLin2009aSym_desc-lesionfrequency_map.nii.gz"
FIGURE_NAME = "wmhkit_lesion_frequency.png"


def lesion_frequency_map(mni_masks: Iterable[str | Path]) -> nib.Nifti1Image:
    """Fraction of subjects (0-1) with a lesion at each voxel of a common MNI grid.

    Parameters
    ----------
    mni_masks : iterable of paths
        Per-subject lesion masks already on one MNI grid (``*_space-MNI152NLin2009aSym_desc-wmh_mask.nii.gz``).

    Returns
    -------
    nibabel.Nifti1Image
        float32 frequency on the masks' grid; header ``descrip`` holds the subject count.

    Raises
    ------
    wmhkit.errors.InputImageError
        When no mask is given or two masks lie on different grids.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for i in range(4):
    ...     data = np.zeros((3, 4, 5), np.uint8); data[0, 0, 0] = 1; data[1, 1, 1] = i % 2
    ...     nib.save(nib.Nifti1Image(data, np.eye(4)), folder / f"m{i}.nii.gz")
    >>> freq = np.asarray(lesion_frequency_map(sorted(folder.glob("*.nii.gz"))).dataobj)
    >>> float(freq[0, 0, 0]), float(freq[1, 1, 1]), float(freq[2, 2, 2])
    (1.0, 0.5, 0.0)
    """
    total = None
    count = 0
    for path in mni_masks:
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj) > 0
        if total is None:
            total, affine, first = np.zeros(data.shape, np.float32), img.affine, path
        elif data.shape != total.shape or not np.allclose(img.affine, affine, atol=1e-3):
            raise InputImageError(f"MNI mask {path} is on another grid than {first}; resample both to one MNI grid.")
        total += data
        count += 1
    if total is None:
        raise InputImageError("No MNI-space lesion mask to build a frequency map from; run the cohort first.")
    out = nib.Nifti1Image(total / count, affine)
    out.header.set_xyzt_units("mm")
    out.header["descrip"] = f"wmhkit lesion frequency, n={count}".encode()[:79]
    return out


def write_group_map(table, out_dir: str | Path) -> tuple[Path, Path] | None:
    """Write the frequency map (NIfTI) and its figure (PNG) of the successful subjects of a run.

    Parameters
    ----------
    table : pandas.DataFrame
        The combined table (``status`` and ``mni_mask`` columns, paths relative to ``out_dir``).
    out_dir : str or path
        The derivatives folder.

    Returns
    -------
    (pathlib.Path, pathlib.Path) or None
        The map (with its JSON sidecar beside it) and the figure; None when no successful
        subject has an MNI mask.
    """
    out_dir = Path(out_dir)
    if "mni_mask" not in table.columns:
        return None
    paths = [out_dir / p for p, status in zip(table["mni_mask"], table["status"]) if status == "ok" and isinstance(p, str)]
    paths = [p for p in paths if p.is_file()]
    if not paths:
        logger.warning("No per-subject MNI mask found; the lesion-frequency map is not written.")
        return None
    frequency = lesion_frequency_map(paths)
    map_path = save_img(frequency, out_dir / MAP_NAME)
    write_json({"Description": f"Fraction of the cohort's {len(paths)} successful subjects with a lesion at each "
                               "voxel of the MNI152 2009a symmetric 1 mm grid.",
                "Sources": [f"bids::{Path(p).relative_to(out_dir).as_posix()}" for p in paths]},
               sidecar_path(map_path))
    from wmhkit.plotting.qc import write_frequency_overview

    figure_path = write_frequency_overview(frequency, out_dir / FIGURE_NAME, title=f"WMH frequency, n={len(paths)}")
    return map_path, figure_path
