"""The MNI152 2009a symmetric template (1 mm) bundled in nilearn's wheel.

The maps are read with nibabel straight from the files that nilearn ships, exactly as
``nilearn.datasets.load_mni152_template(resolution=1)`` and its GM/WM/brain-mask siblings
build them (intensities divided by their maximum; brain mask = T1 above 0.2), without
importing ``nilearn.datasets`` (which imports scikit-learn and costs about 2.5 s). A test
checks that both routes give identical voxels. Nothing is downloaded.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import nibabel as nib
import numpy as np

from wmhkit.errors import OptionError

__all__ = [
    "TEMPLATE_KINDS",
    "TEMPLATE_SHAPE",
    "TEMPLATE_AFFINE",
    "BRAIN_MASK_THRESHOLD",
    "MNI_BRAIN_BOX",
    "load_template",
    "template_brain_bounds",
    "template_brain_corners_mm",
    "template_data",
    "template_path",
]

#: Map names accepted by :func:`load_template`.
TEMPLATE_KINDS = ("t1", "brain_mask", "gm", "wm", "csf")
#: Shape of the 1 mm MNI152 2009a grid (voxels).
TEMPLATE_SHAPE = (197, 233, 189)
#: Voxel-to-MNI-mm affine of the 1 mm grid.
TEMPLATE_AFFINE = np.array(
    [[1.0, 0.0, 0.0, -98.0], [0.0, 1.0, 0.0, -134.0], [0.0, 0.0, 1.0, -72.0], [0.0, 0.0, 0.0, 1.0]]
)
#: nilearn's ``load_mni152_brain_mask`` default: template T1 (scaled 0-1) above this is brain.
BRAIN_MASK_THRESHOLD = 0.2
#: Voxel box of the 1 mm grid that holds every brain after affine alignment: the template brain
#: mask's bounding box plus 6 mm across and front to back, and from the grid's floor to 7 mm above
#: the brain (157 x 193 x 162 voxels). The network reads it (training crops to it, and the
#: classical baseline runs on it); a test checks that it holds the brain with that margin.
MNI_BRAIN_BOX = (slice(20, 177), slice(21, 214), slice(0, 162))

_FILES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}


def template_path(kind: str) -> Path:
    """Path of nilearn's bundled file for ``kind`` ("t1", "gm" or "wm")."""
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise OptionError("The MNI template needs nilearn; install it with `pip install nilearn`.")
    return Path(spec.submodule_search_locations[0]) / "datasets" / "data" / _FILES[kind]


def _check_kind(kind: str) -> None:
    if kind not in TEMPLATE_KINDS:
        raise OptionError(f"Template kind {kind!r} is unknown; choose one of {', '.join(TEMPLATE_KINDS)}.")


@functools.lru_cache(maxsize=None)
def template_data(kind: str = "t1") -> np.ndarray:
    """Voxels of one template map on the 1 mm grid, read once per process (read-only array).

    Parameters
    ----------
    kind : {"t1", "brain_mask", "gm", "wm", "csf"}, default "t1"
        "t1", "gm", "wm": float32 scaled to 0-1. "brain_mask": uint8, T1 above 0.2.
        "csf": float32, ``1 - gm - wm`` clipped to 0-1 inside the brain mask, 0 outside.

    Returns
    -------
    numpy.ndarray
        Shape :data:`TEMPLATE_SHAPE`; not writeable (copy before changing it).
    """
    _check_kind(kind)
    if kind in _FILES:
        data = np.asanyarray(nib.load(str(template_path(kind))).dataobj).astype(np.float32)
        data /= data.max()
    elif kind == "brain_mask":
        data = (template_data("t1") > BRAIN_MASK_THRESHOLD).astype(np.uint8)
    else:  # csf
        data = np.clip(1.0 - template_data("gm") - template_data("wm"), 0.0, 1.0)
        data *= template_data("brain_mask")
    data.setflags(write=False)
    return data


def load_template(kind: str = "t1") -> nib.Nifti1Image:
    """One MNI152 2009a symmetric 1 mm map (197 x 233 x 189 voxels) as a NIfTI image.

    Parameters
    ----------
    kind : {"t1", "brain_mask", "gm", "wm", "csf"}, default "t1"
        T1 intensities (0-1), the whole-brain mask (uint8, nilearn's T1 > 0.2), grey- and
        white-matter probabilities (0-1), or CSF probability derived as ``1 - gm - wm`` inside
        the brain mask.

    Returns
    -------
    nibabel.Nifti1Image
        On the MNI 1 mm grid (:data:`TEMPLATE_AFFINE`), sform/qform code 4 (MNI). The voxels
        are cached once per process and shared read-only.

    Raises
    ------
    wmhkit.errors.OptionError
        When ``kind`` is not one of the names above.

    Examples
    --------
    >>> img = load_template("brain_mask")
    >>> img.shape, img.get_data_dtype().name
    ((197, 233, 189), 'uint8')
    """
    _check_kind(kind)
    img = nib.Nifti1Image(template_data(kind), TEMPLATE_AFFINE.copy())
    img.set_sform(TEMPLATE_AFFINE, 4)
    img.set_qform(TEMPLATE_AFFINE, 4)
    return img




def _brain_bounds() -> np.ndarray:
    brain = template_data("brain_mask")
    hits = [np.flatnonzero(brain.any(axis=tuple(a for a in range(3) if a != axis))) for axis in range(3)]
    return np.array([[float(h[0]) for h in hits], [float(h[-1]) for h in hits]])


@functools.lru_cache(maxsize=None)
def template_brain_bounds(margin_mm: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """First and last voxel index of the template brain mask along each axis, widened by ``margin_mm``.

    The one definition of "where the brain is" on the MNI grid: every box that crops to the brain
    (the brain mask's work area, the MNI T1, the regional atlas's area on a subject grid) starts
    from it. Widened bounds may lie off the grid.

    Parameters
    ----------
    margin_mm : float, default 0.0
        Margin added on every side (mm; the grid is 1 mm).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        float ``low`` and ``high`` voxel indices (inclusive), 3 each.

    Examples
    --------
    >>> low, high = template_brain_bounds()
    >>> low.tolist(), high.tolist()
    ([26.0, 27.0, 0.0], [170.0, 207.0, 154.0])
    """
    from wmhkit.io import cached_array

    # Kept on disk (6 numbers): reading the template T1 to find them costs about 0.2 s and 35 MB.
    found = cached_array("templates", "mni152_brain_bounds", _brain_bounds)
    bounds = found[0] - margin_mm, found[1] + margin_mm
    for array in bounds:
        array.setflags(write=False)
    return bounds


def template_brain_corners_mm(margin_mm: float = 0.0) -> np.ndarray:
    """MNI mm of the 8 corners of :func:`template_brain_bounds` (8 x 4, homogeneous).

    Send them through an alignment and :func:`wmhkit.preprocess.resampling.box_on_grid` to find
    the part of a subject's grid that holds the brain.
    """
    low, high = template_brain_bounds(margin_mm)
    corners = np.array([[x, y, z, 1.0] for x in (low[0], high[0]) for y in (low[1], high[1]) for z in (low[2], high[2])])
    return corners @ TEMPLATE_AFFINE.T
