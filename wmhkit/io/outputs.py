"""Output naming (:class:`OutputPaths`, the files the README lists), atomic writes and input hashes.

Every file wmhkit writes goes through :func:`atomic_path`: it is written under a temporary
name in the destination folder and renamed into place only when complete, so an interrupted
run never leaves a half-written output behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import nibabel as nib
import numpy as np

from wmhkit.errors import OutputError

__all__ = [
    "OutputPaths",
    "atomic_path",
    "bids_stem",
    "cache_dir",
    "file_sha256",
    "img_sha256",
    "output_paths",
    "output_prefix",
    "safe_output_path",
    "sidecar_path",
    "save_img",
    "write_json",
    "write_tsv",
]

_STRIP = (".nii.gz", ".nii", ".mgz", ".mgh")
#: BIDS raw-data suffixes of anatomical images. A BIDS derivative is named by its source's
#: entities without the source's suffix (``sub-01_ses-1_desc-wmh_mask``, not ``sub-01_ses-1_T1w_...``).
RAW_SUFFIXES = ("T1w", "T2w", "PDw", "T2starw", "FLAIR", "inplaneT1", "inplaneT2", "PDT2", "UNIT1", "T1map",
                "MP2RAGE")


def output_prefix(stem: str) -> str:
    """The start of every output name of an input: its stem without a BIDS raw-data suffix.

    Only a BIDS name (``sub-<label>``, then ``key-value`` entities, then one of
    :data:`RAW_SUFFIXES`) loses its suffix; any other stem is kept whole.

    >>> output_prefix("sub-01_ses-2_T1w")
    'sub-01_ses-2'
    >>> output_prefix("sub-01_desc-wmh_mask"), output_prefix("case_003_T1w")
    ('sub-01_desc-wmh_mask', 'case_003_T1w')
    """
    *entities, suffix = stem.split("_")
    if (entities and suffix in RAW_SUFFIXES and entities[0].startswith("sub-")
            and all(len(part.split("-")) == 2 and all(part.split("-")) for part in entities)):
        return "_".join(entities)
    return stem


def bids_stem(path: str | os.PathLike) -> str:
    """File name without its image ending, BIDS entities kept.

    >>> bids_stem("/data/sub-01/ses-1/anat/sub-01_ses-1_T1w.nii.gz")
    'sub-01_ses-1_T1w'
    >>> bids_stem("brain.mgz")
    'brain'

    A DICOM folder keeps its whole name (``1.3.12.2`` is no file ending), and a series picked
    as ``FOLDER@N`` (:mod:`wmhkit.io.dicom`) adds ``_series-N``: ``exam@5`` gives ``exam_series-5``.
    """
    from wmhkit.io.dicom import dicom_request

    request = dicom_request(path)
    if request is not None:
        folder, series = request
        return folder.name if series is None else f"{folder.name}_series-{series}"
    name = Path(path).name
    for suffix in _STRIP:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


@dataclass(frozen=True)
class OutputPaths:
    """Where the outputs of one input go: :attr:`prefix` plus a BIDS-derivatives suffix per file (README, *Outputs*)."""

    out_dir: Path
    stem: str

    @property
    def prefix(self) -> str:
        """The stem without its BIDS raw-data suffix (:func:`output_prefix`): ``sub-01_ses-1``."""
        return output_prefix(self.stem)

    def _path(self, suffix: str) -> Path:
        return self.out_dir / f"{self.prefix}{suffix}"

    @property
    def wmh_mask(self) -> Path:
        """uint8 0/1 lesion mask on the input grid."""
        return self._path("_desc-wmh_mask.nii.gz")

    @property
    def wmh_probseg(self) -> Path:
        """float32 lesion probability (0-1) on the input grid."""
        return self._path("_desc-wmh_probseg.nii.gz")

    @property
    def brain_mask(self) -> Path:
        """uint8 0/1 brain mask on the input grid."""
        return self._path("_desc-brain_mask.nii.gz")

    @property
    def summary_json(self) -> Path:
        """Volumes (mL), eTIV, model and software versions, input sha256, thresholds."""
        return self._path("_wmh.json")

    @property
    def regions_tsv(self) -> Path:
        """Tidy regional table: one row per scheme and region."""
        return self._path("_regions.tsv")

    @property
    def lesions_tsv(self) -> Path:
        """One row per connected lesion."""
        return self._path("_lesions.tsv")

    @property
    def t1w(self) -> Path:
        """The T1 converted from a DICOM input (:func:`wmhkit.io.dicom.save_converted_t1`), on the input grid."""
        return self._path("_T1w.nii.gz")

    @property
    def mni_mask(self) -> Path:
        """Lesion mask resampled to MNI152 1 mm space."""
        return self._path("_space-MNI152NLin2009aSym_desc-wmh_mask.nii.gz")

    @property
    def mni_probseg(self) -> Path:
        """Lesion probability resampled to MNI152 1 mm space."""
        return self._path("_space-MNI152NLin2009aSym_desc-wmh_probseg.nii.gz")

    def all(self) -> dict[str, Path]:
        """Every output path by name."""
        names = ("wmh_mask", "wmh_probseg", "brain_mask", "summary_json", "regions_tsv", "lesions_tsv")
        return {name: getattr(self, name) for name in names}

    def images(self) -> dict[str, Path]:
        """Every image path by name, in the input's space and in MNI space."""
        names = ("wmh_mask", "wmh_probseg", "brain_mask", "mni_mask", "mni_probseg")
        return {name: getattr(self, name) for name in names}


def sidecar_path(image: str | os.PathLike) -> Path:
    """The JSON sidecar of an image: the same name ending in ``.json``.

    >>> sidecar_path("d/sub-01_desc-wmh_mask.nii.gz").name
    'sub-01_desc-wmh_mask.json'
    """
    image = Path(image)
    return image.with_name(f"{bids_stem(image)}.json")


def output_paths(input_path: str | os.PathLike, out_dir: str | os.PathLike) -> OutputPaths:
    """Output paths for ``input_path`` inside ``out_dir``.

    >>> output_paths("sub-01_T1w.nii.gz", "/tmp/out").wmh_mask.name
    'sub-01_desc-wmh_mask.nii.gz'
    """
    return OutputPaths(Path(out_dir), bids_stem(input_path))


def safe_output_path(
    path: str | os.PathLike, out_dir: str | os.PathLike, inputs: tuple[str | os.PathLike, ...] = ()
) -> Path:
    """Check that ``path`` lies inside ``out_dir`` and is not one of ``inputs``.

    Raises
    ------
    wmhkit.errors.OutputError
        When the path escapes the output folder or would overwrite an input.
    """
    resolved = Path(path).resolve()
    root = Path(out_dir).resolve()
    if root != resolved and root not in resolved.parents:
        raise OutputError(f"Output {path} lies outside the output folder {out_dir}; choose a name inside it.")
    for item in inputs:
        if Path(item).resolve() == resolved:
            raise OutputError(f"Output {path} would overwrite the input {item}; choose another output folder.")
    return resolved


def _temporary_name(final: Path) -> Path:
    # Keep the full ending (.nii.gz) so that nibabel picks the format from the name.
    name = final.name
    for suffix in (".nii.gz", ".tsv.gz"):
        if name.endswith(suffix):
            ending = suffix
            break
    else:
        ending = final.suffix
    return final.with_name(f".{name}.{uuid.uuid4().hex[:8]}.tmp{ending}")


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it to ``final`` only if the block succeeds.

    The temporary file is removed when the block fails; an ``OSError`` (no space left, file too
    large, permission denied) comes out as :class:`wmhkit.errors.OutputError` naming ``final``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(folder / "x.txt") as tmp:
    ...     _ = tmp.write_text("done")
    >>> sorted(p.name for p in folder.iterdir())
    ['x.txt']
    """
    final = Path(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"Output folder {final.parent} cannot be created ({exc.strerror}); choose another.") from None
    tmp = _temporary_name(final)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            # A full disk, a file-size limit, a folder that cannot be written: one sentence.
            raise OutputError(
                f"Output {final} could not be written ({exc.strerror or exc}); free disk space or check the "
                "folder's permissions and file-size limit, then run again."
            ) from exc
        raise


def save_img(img: nib.spatialimages.SpatialImage, path: str | os.PathLike) -> Path:
    """Write a NIfTI image atomically; returns the final path."""
    with atomic_path(path) as tmp:
        nib.save(img, str(tmp))
    return Path(path)


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def write_json(obj, path: str | os.PathLike) -> Path:
    """Write ``obj`` as indented JSON atomically (numpy scalars and arrays allowed)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=_json_default, allow_nan=True) + "\n")
    return Path(path)


def write_tsv(table, path: str | os.PathLike) -> Path:
    """Write a pandas DataFrame as a tab-separated table atomically (no index)."""
    with atomic_path(path) as tmp:
        table.to_csv(tmp, sep="\t", index=False, na_rep="n/a")
    return Path(path)


def file_sha256(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_bytes), b""):
            digest.update(chunk)
    return digest.hexdigest()


def img_sha256(img: nib.spatialimages.SpatialImage) -> str:
    """sha256 of the source file when there is one, else of the voxel bytes and affine."""
    from wmhkit.io.images import source_path

    source = source_path(img)
    if source and Path(source).is_file():
        return file_sha256(source)
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(np.asanyarray(img.dataobj)).tobytes())
    digest.update(np.asarray(img.affine, dtype=np.float64).tobytes())
    return digest.hexdigest()
