"""Load and validate 3D images: the one entry point every public function uses.

Affine choice: wmhkit uses nibabel's ``img.affine``, which takes the sform when its code
is above 0, else the qform when its code is above 0, else a voxel-size-only fallback
(``header.get_best_affine``). The affine is kept exactly; outputs are written on the
input's own grid with the input's affine.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from pathlib import Path
from typing import Union

import nibabel as nib
import numpy as np
from nibabel.orientations import (
    apply_orientation,
    axcodes2ornt,
    inv_ornt_aff,
    io_orientation,
    ornt_transform,
)

from wmhkit.errors import InputImageError
from wmhkit.io import dicom

__all__ = [
    "ImgLike",
    "check_img",
    "check_mask",
    "img_label",
    "source_path",
    "reorient_to_ras",
    "reorient_like",
    "voxel_sizes_mm",
    "voxel_volume_ml",
    "mask_volume_ml",
    "new_img_like",
]

logger = logging.getLogger(__name__)

ImgLike = Union[str, os.PathLike, nib.spatialimages.SpatialImage]

#: File endings wmhkit reads.
IMAGE_SUFFIXES = (".nii", ".nii.gz", ".mgz", ".mgh")
#: Finest voxel size above which results get a warning (mm).
WARN_VOXEL_MM = 2.0
#: Finest voxel size above which images are refused (mm).
MAX_VOXEL_MM = 6.0
#: Smallest field of view, per axis, that can hold a brain (mm).
MIN_EXTENT_MM = 80.0
#: Coarsest voxel edge, on any axis, a header may declare (mm): thick 2D slices stay under it;
#: more is a corrupt header (seen in header fuzzing: 1e10-1e35 mm).
MAX_ANY_VOXEL_MM = 30.0
#: Farthest the centre of the field of view may lie from the scanner origin (mm).
MAX_CENTRE_MM = 10_000.0
#: Largest voxel magnitude accepted (single-precision work must not overflow).
MAX_ABS_VALUE = 1e30
#: Smallest ``(max - min) / max(|min|, |max|)`` of the voxels: below it, an image is constant
#: to single precision (a corrupt ``scl_inter`` of 5.8e19 with a tiny ``scl_slope`` did that).
MIN_RELATIVE_RANGE = 1e-5
#: Smallest ``|det(A)| / prod(voxel sizes)`` of the affine's 3x3 part ``A``: 1 for orthogonal
#: voxel axes, near 0 for axes that are almost parallel (a corrupt header).
MIN_ORTHOGONALITY = 0.5


def source_path(img: ImgLike) -> str | None:
    """The file an image came from, or None for an image built in memory."""
    if isinstance(img, (str, os.PathLike)):
        return str(img)
    source = getattr(img, "_wmhkit_source", None) or getattr(img, "get_filename", lambda: None)()
    return str(source) if source else None


def img_label(img: ImgLike) -> str:
    """Name an image in messages: its path, or a short description of an in-memory image."""
    source = source_path(img)
    if source:
        return source
    shape = getattr(img, "shape", "?")
    return f"<in-memory image of shape {tuple(shape) if shape != '?' else shape}>"


def _has_image_suffix(path: Path) -> bool:
    name = path.name.lower()
    return any(name.endswith(suffix) for suffix in IMAGE_SUFFIXES)


@contextlib.contextmanager
def _quiet_nibabel():
    """Silence nibabel's header-repair messages ("sizeof_hdr should be 348; set sizeof_hdr to
    348") that it prints to stderr for corrupt headers: wmhkit's own checks decide what is
    usable and say so in one sentence."""
    nib_logger = logging.getLogger("nibabel.global")
    disabled = nib_logger.disabled
    nib_logger.disabled = True
    try:
        yield
    finally:
        nib_logger.disabled = disabled


def _load_path(path: Path) -> nib.spatialimages.SpatialImage:
    label = str(path)
    if dicom.dicom_request(path) is not None:  # a folder of one DICOM series, or FOLDER@N
        return dicom.read_dicom(path)
    if not path.exists():
        raise InputImageError(f"Input image {label} does not exist; check the path.")
    if path.stat().st_size == 0:
        raise InputImageError(f"Input image {label} is an empty file; copy or export it again.")
    if not _has_image_suffix(path):
        if dicom.is_dicom_file(path):
            raise InputImageError(
                f"Input image {label} is a DICOM file, not a NIfTI or MGZ file; give the folder that holds its series."
            )
        raise InputImageError(
            f"Input image {label} is not a NIfTI or MGZ file (expected .nii, .nii.gz or .mgz); convert it first."
        )
    try:
        with _quiet_nibabel():
            img = nib.load(str(path))
    except Exception as exc:  # nibabel raises many types for corrupt files
        raise InputImageError(
            f"Input image {label} could not be read as an image ({type(exc).__name__}: {exc}); check that the file is complete."
        ) from None
    if isinstance(img, nib.Nifti1Image):
        _check_raw_pixdim(path, type(img.header), label)
    return img


def _check_raw_pixdim(path: Path, header_class, label: str) -> None:
    # nibabel silently repairs zero or negative pixdim on load; a header that says so is broken.
    try:
        with nib.openers.ImageOpener(str(path)) as handle:
            raw = header_class.from_fileobj(handle, check=False)
        pixdim = np.asarray(raw["pixdim"][1:4], dtype=float)
    except Exception:  # the load above succeeded; a failure here is not the user's to fix
        return
    if not np.all(np.isfinite(pixdim)) or np.any(pixdim <= 0):
        raise InputImageError(
            f"Input image {label} has voxel sizes {tuple(float(z) for z in pixdim)} in its header; every size must be positive."
        )


def _read_data(img: nib.spatialimages.SpatialImage, label: str) -> np.ndarray:
    try:
        data = np.asanyarray(img.dataobj)
    except Exception as exc:  # truncated gzip streams fail here, not at load
        raise InputImageError(
            f"Input image {label} is truncated or corrupt ({type(exc).__name__}); copy or export it again."
        ) from None
    if data.dtype.kind not in "biuf":
        raise InputImageError(f"Input image {label} holds {data.dtype} voxels; convert it to a numeric type.")
    return data


def _squeeze_to_3d(data: np.ndarray, label: str) -> np.ndarray:
    if data.ndim < 3:
        raise InputImageError(f"Input image {label} is {data.ndim}D; wmhkit needs a 3D volume.")
    if data.ndim > 3:
        extra = data.shape[3:]
        if int(np.prod(extra)) != 1:
            raise InputImageError(
                f"Input image {label} is 4D with {int(np.prod(extra))} volumes; extract the one T1 volume first."
            )
        data = data.reshape(data.shape[:3])
    if min(data.shape) < 2:
        raise InputImageError(f"Input image {label} has shape {data.shape}; wmhkit needs a 3D volume, not a slice.")
    return data


def _check_affine(img: nib.spatialimages.SpatialImage, label: str) -> np.ndarray:
    affine = np.asarray(img.affine, dtype=np.float64)
    if not np.all(np.isfinite(affine)):
        raise InputImageError(f"Input image {label} has a non-finite affine; fix its header (qform/sform).")
    if abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        raise InputImageError(f"Input image {label} has a singular affine; fix its header (qform/sform).")
    zooms = img.header.get_zooms()[:3]
    if any((not np.isfinite(z)) or z <= 0 for z in zooms):
        raise InputImageError(
            f"Input image {label} has voxel sizes {tuple(float(z) for z in zooms)}; every size must be positive."
        )
    sizes = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    if sizes.max() > MAX_ANY_VOXEL_MM:
        raise InputImageError(
            f"Input image {label} has voxels of {sizes.max():.3g} mm along one axis in its affine (at most "
            f"{MAX_ANY_VOXEL_MM:g} mm is plausible); its header is corrupt: export the image again."
        )
    if abs(np.linalg.det(affine[:3, :3])) < MIN_ORTHOGONALITY * float(np.prod(sizes)):
        raise InputImageError(
            f"Input image {label} has nearly parallel voxel axes in its affine; its header is corrupt: export the image again."
        )
    centre = affine[:3, :3] @ ((np.asarray(img.shape[:3], float) - 1) / 2) + affine[:3, 3]
    if np.abs(centre).max() > MAX_CENTRE_MM:
        raise InputImageError(
            f"Input image {label} lies {np.abs(centre).max():.3g} mm from the scanner origin in its affine (at most "
            f"{MAX_CENTRE_MM:g} mm is plausible); its header is corrupt: export the image again."
        )
    return affine


def voxel_sizes_mm(img: nib.spatialimages.SpatialImage) -> np.ndarray:
    """Voxel edge lengths in mm, read from the affine.

    >>> import numpy as np, nibabel as nib
    >>> voxel_sizes_mm(nib.Nifti1Image(np.zeros((4, 5, 6)), np.diag([1.0, 2.0, 3.0, 1.0]))).tolist()
    [1.0, 2.0, 3.0]
    """
    return np.sqrt((np.asarray(img.affine)[:3, :3] ** 2).sum(axis=0))


def _check_voxels(data: np.ndarray, affine: np.ndarray, label: str, min_extent_mm: float) -> None:
    sizes = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    if sizes.min() > MAX_VOXEL_MM:
        raise InputImageError(
            f"Input image {label} has {sizes.min():.1f} mm voxels at best; wmhkit refuses images coarser than "
            f"{MAX_VOXEL_MM:g} mm on the finest axis."
        )
    if sizes.min() > WARN_VOXEL_MM:
        message = (
            f"Input image {label} has {sizes.min():.1f} mm voxels at best; results above {WARN_VOXEL_MM:g} mm "
            "are less reliable."
        )
        logger.warning(message)
        warnings.warn(message, UserWarning, stacklevel=3)
    extent = sizes * np.asarray(data.shape)
    if extent.min() < min_extent_mm:
        raise InputImageError(
            f"Input image {label} covers only {extent.round(0).tolist()} mm; it is too small to hold a brain "
            f"(at least {min_extent_mm:g} mm per axis)."
        )
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        raise InputImageError(f"Input image {label} contains NaN or infinite voxels; replace them before running.")
    if data.size and data.min() == data.max():
        raise InputImageError(f"Input image {label} is constant (every voxel is {data.flat[0]}); it holds no image.")
    low, high = float(data.min()), float(data.max())
    if max(abs(low), abs(high)) > MAX_ABS_VALUE or (high - low) <= MIN_RELATIVE_RANGE * max(abs(low), abs(high)):
        # A corrupt scale factor (scl_slope/scl_inter) gives these; single precision cannot hold them.
        raise InputImageError(
            f"Input image {label} has voxel values from {low:.7g} to {high:.7g}, which no image holds; check its "
            "scale factors (scl_slope, scl_inter) or export it again."
        )


def check_img(img: ImgLike, *, min_extent_mm: float = MIN_EXTENT_MM, check_voxels: bool = True) -> nib.Nifti1Image:
    """Turn anything image-like into a validated 3D NIfTI image held in memory.

    Parameters
    ----------
    img : str, os.PathLike or nibabel image
        A path to a .nii, .nii.gz, .mgz or .mgh file, a folder holding one DICOM series (or
        ``FOLDER@N`` for series number N; converted by dcm2niix: :mod:`wmhkit.io.dicom`), or a
        nibabel image. A 4D image with a single volume is accepted and squeezed to 3D.
    min_extent_mm : float, default 80.0
        Smallest field of view per axis, in mm; smaller images cannot hold a brain. Pass 0
        for images that are not heads (cropped masks, tiny test volumes).
    check_voxels : bool, default True
        Refuse NaN/Inf, constant or nearly constant voxels (range under 1e-5 of their
        magnitude) and magnitudes above 1e30, coarse voxels (finest axis above 6 mm) and small
        fields of view, and warn above 2 mm. Masks pass False (an empty mask is constant).

    Returns
    -------
    nibabel.Nifti1Image
        A 3D image with the input's exact affine, its voxel data in memory (input dtype,
        scaling applied) and, for NIfTI input, the input's header.

    Raises
    ------
    wmhkit.errors.InputImageError
        With one sentence naming the image and the problem.

    Examples
    --------
    >>> import numpy as np, nibabel as nib
    >>> data = np.random.default_rng(0).random((90, 100, 85, 1)).astype("float32")
    >>> check_img(nib.Nifti1Image(data, np.eye(4))).shape
    (90, 100, 85)
    """
    label = img_label(img)
    if isinstance(img, (str, os.PathLike)):
        loaded = _load_path(Path(img))
    elif isinstance(img, nib.spatialimages.SpatialImage):
        loaded = img
    else:
        raise InputImageError(
            f"Input {type(img).__name__} is not an image; pass a path to a NIfTI/MGZ file or a nibabel image."
        )
    if len(loaded.shape) < 3:
        raise InputImageError(f"Input image {label} is {len(loaded.shape)}D; wmhkit needs a 3D volume.")
    if len(loaded.shape) > 3 and int(np.prod(loaded.shape[3:])) != 1:
        raise InputImageError(
            f"Input image {label} is 4D with {int(np.prod(loaded.shape[3:]))} volumes; extract the one T1 volume first."
        )
    affine = _check_affine(loaded, label)
    with _quiet_nibabel():
        data = _squeeze_to_3d(_read_data(loaded, label), label)
    if check_voxels:
        _check_voxels(data, affine, label, min_extent_mm)
    if isinstance(loaded, nib.Nifti1Image) and not isinstance(loaded, nib.Nifti2Image) and loaded.ndim == 3:
        header = loaded.header.copy()
    else:
        header = None
    with _quiet_nibabel():
        out = nib.Nifti1Image(data, affine, header=header)
    if header is not None:
        # Keep the input's qform/sform codes so outputs match the input's geometry exactly.
        out.set_sform(affine, int(loaded.header["sform_code"]) or 1)
        out.set_qform(affine, int(loaded.header["qform_code"]) or 1)
        _repair_units(out.header)
    # Scaling already applied by dataobj; reset so the in-memory array is read as is.
    out.header.set_slope_inter(None, None)
    if isinstance(img, (str, os.PathLike)):
        # Remembered for messages and input hashes; see source_path().
        out._wmhkit_source = str(img)  # noqa: SLF001
    return out


def _repair_units(header: nib.Nifti1Header) -> None:
    """Unknown space/time unit codes (a corrupt ``xyzt_units`` byte) become mm and s: wmhkit
    reads every affine in mm, and nibabel cannot write or copy a header with unknown units."""
    try:
        header.get_xyzt_units()
    except KeyError:
        logger.debug("Unknown xyzt_units code %s in the header; set to mm and s.", header["xyzt_units"])
        header.set_xyzt_units("mm", "sec")


def check_mask(
    img: ImgLike, *, reference: nib.spatialimages.SpatialImage | None = None, threshold: float = 0.5
) -> nib.Nifti1Image:
    """Validate a lesion or brain mask and binarise it (value above ``threshold``).

    Parameters
    ----------
    img : str, os.PathLike or nibabel image
        Mask or probability map.
    reference : nibabel image, optional
        When given, the mask must share its shape and affine (to 1e-3 mm).
    threshold : float, default 0.5
        Voxels strictly above it are in the mask.

    Returns
    -------
    nibabel.Nifti1Image
        uint8 0/1 image on the mask's grid.

    Examples
    --------
    >>> import numpy as np, nibabel as nib
    >>> m = check_mask(nib.Nifti1Image(np.full((4, 5, 6), 0.7), np.eye(4)))
    >>> int(m.get_fdata().sum()), m.get_data_dtype().name
    (120, 'uint8')
    """
    checked = check_img(img, check_voxels=False)
    label = img_label(img)
    if reference is not None:
        if checked.shape[:3] != tuple(reference.shape[:3]) or not np.allclose(
            checked.affine, reference.affine, atol=1e-3
        ):
            raise InputImageError(
                f"Mask {label} is not on the grid of {img_label(reference)} (shape {checked.shape} vs "
                f"{tuple(reference.shape[:3])}); resample it onto the image first."
            )
    data = np.asanyarray(checked.dataobj)
    if data.dtype.kind == "f" and not np.isfinite(data).all():
        raise InputImageError(f"Mask {label} contains NaN or infinite voxels; replace them with 0.")
    binary = (data > threshold).astype(np.uint8)
    return new_img_like(checked, binary)


def new_img_like(reference: nib.spatialimages.SpatialImage, data: np.ndarray) -> nib.Nifti1Image:
    """A NIfTI image with ``data`` on the grid (affine, qform/sform codes) of ``reference``."""
    out = nib.Nifti1Image(data, reference.affine)
    if isinstance(reference, nib.Nifti1Image):
        out.set_sform(reference.affine, int(reference.header["sform_code"]) or 1)
        out.set_qform(reference.affine, int(reference.header["qform_code"]) or 1)
        try:
            out.header.set_xyzt_units(*reference.header.get_xyzt_units())
        except KeyError:  # unknown unit codes in a header wmhkit did not check: keep the default
            pass
    out.header.set_data_dtype(data.dtype)
    return out


def reorient_to_ras(img: nib.spatialimages.SpatialImage) -> nib.Nifti1Image:
    """Flip and permute axes so that they run Right, Anterior, Superior (no resampling).

    Examples
    --------
    >>> import numpy as np, nibabel as nib
    >>> las = nib.Nifti1Image(np.zeros((3, 4, 5)), np.diag([-1.0, 1.0, 1.0, 1.0]))
    >>> nib.aff2axcodes(reorient_to_ras(las).affine)
    ('R', 'A', 'S')
    """
    data = np.asanyarray(img.dataobj)
    ornt = io_orientation(img.affine)
    transform = ornt_transform(ornt, axcodes2ornt("RAS"))
    ras_data = apply_orientation(data, transform)
    ras_affine = img.affine @ inv_ornt_aff(transform, data.shape[:3])
    return nib.Nifti1Image(ras_data, ras_affine)


def reorient_like(ras_data: np.ndarray, reference: nib.spatialimages.SpatialImage) -> np.ndarray:
    """Undo :func:`reorient_to_ras`: put an array made in RAS order back in ``reference``'s voxel order."""
    transform = ornt_transform(axcodes2ornt("RAS"), io_orientation(reference.affine))
    return apply_orientation(ras_data, transform)


def _is_orthogonal(affine: np.ndarray) -> bool:
    columns = np.asarray(affine)[:3, :3]
    gram = columns.T @ columns
    return bool(np.allclose(gram, np.diag(np.diag(gram))))


def voxel_volume_ml(img: nib.spatialimages.SpatialImage) -> float:
    """Volume of one voxel in mL (1 mL = 1000 mm^3).

    >>> import numpy as np, nibabel as nib
    >>> voxel_volume_ml(nib.Nifti1Image(np.zeros((2, 2, 2)), np.diag([2.0, 2.5, 2.0, 1.0])))
    0.01
    """
    return float(np.prod(voxel_sizes_mm(img))) / 1000.0 if _is_orthogonal(img.affine) else float(
        abs(np.linalg.det(np.asarray(img.affine)[:3, :3]))
    ) / 1000.0


def mask_volume_ml(mask: ImgLike, threshold: float = 0.5) -> float:
    """Volume in mL of the voxels of ``mask`` above ``threshold``.

    A 10 mm cube of 1 mm voxels is 1 mL:

    >>> import numpy as np, nibabel as nib
    >>> cube = np.zeros((20, 30, 25), dtype=np.uint8); cube[5:15, 5:15, 5:15] = 1
    >>> mask_volume_ml(nib.Nifti1Image(cube, np.eye(4)))
    1.0
    """
    checked = check_img(mask, check_voxels=False)
    count = int(np.count_nonzero(np.asanyarray(checked.dataobj) > threshold))
    return count * voxel_volume_ml(checked)
