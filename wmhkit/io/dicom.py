"""DICOM in: a folder holding one DICOM series is read as a 3D image wherever a T1 path is accepted.

The conversion is dcm2niix's (Li et al. 2016, J Neurosci Methods 264:47-56), the converter the
neuroimaging tools use: it keeps the scanner geometry (slice positions, orientation, slice
order, Siemens mosaics, vendor scaling) exactly, and nothing is resampled. pydicom only reads the
headers to find the series. Both come with the optional extra ``pip install "wmhkit[dicom]"``.

Which path names which image:

* ``FOLDER`` -- the one DICOM series in ``FOLDER`` (sub-folders included). A folder holding
  several series is refused with the list of them (series number, description, file count).
* ``FOLDER@N`` -- the series whose SeriesNumber is ``N`` in ``FOLDER`` (read so only when no
  file or folder of that exact name exists): ``wmhkit segment exam@5 --out d``,
  ``wmhkit.segment("exam@5")``, and the same text in the ``t1`` column of a cohort manifest.

Outputs are named after the folder (``exam_desc-wmh_mask.nii.gz``), and after the folder and
the series for a picked one (``exam_series-5_desc-wmh_mask.nii.gz``; :func:`wmhkit.io.bids_stem`).

The converted image lives in memory (the temporary folder of the conversion is removed); the
last conversions are kept, so the checks, the segmentation and the cohort's QC of one input
convert it once. :func:`save_converted_t1` writes it beside the outputs as
``<prefix>_T1w.nii.gz`` with dcm2niix's BIDS sidecar ``<prefix>_T1w.json`` (anonymised), so the
masks have an image to sit on.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib

from wmhkit.errors import InputImageError
from wmhkit.io.outputs import OutputPaths, atomic_path, bids_stem, sidecar_path

__all__ = ["SERIES_SEPARATOR", "SeriesInfo", "dicom_request", "list_series", "read_dicom", "converted_sidecar",
           "save_converted_t1", "is_dicom_file", "dcm2niix_binary"]

logger = logging.getLogger(__name__)

#: Between a folder and a SeriesNumber in a path that picks one series: ``exam@5``.
SERIES_SEPARATOR = "@"
INSTALL_HINT = 'pip install "wmhkit[dicom]"'
#: Longest a conversion may take (s); dcm2niix converts a 3D T1 series in about a second.
CONVERT_TIMEOUT_S = 600


@dataclass(frozen=True)
class SeriesInfo:
    """One DICOM series found in a folder.

    Attributes
    ----------
    number : int or None
        SeriesNumber (0020,0011); None when the files carry none.
    description : str
        SeriesDescription (0008,103E), else ProtocolName, else "".
    uid : str
        SeriesInstanceUID.
    files : tuple of pathlib.Path
        The series' files, sorted.
    """

    number: int | None
    description: str
    uid: str
    files: tuple

    def label(self) -> str:
        """``5 "T1 MPRAGE" (176 files)``, as the refusal of a folder lists it."""
        number = "?" if self.number is None else str(self.number)
        return f'{number} "{self.description}" ({len(self.files)} files)'


def is_dicom_file(path: str | os.PathLike) -> bool:
    """True for a DICOM Part 10 file (``DICM`` after its 128-byte preamble)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def dicom_request(path: str | os.PathLike) -> tuple[Path, int | None] | None:
    """The folder and SeriesNumber a path asks for, or None when it names no folder.

    An existing path is taken as it is: a folder asks for its one series, a file is no DICOM
    request. Only a path that does not exist is read as ``FOLDER@N``.

    >>> import tempfile, pathlib
    >>> exam = pathlib.Path(tempfile.mkdtemp())
    >>> dicom_request(exam) == (exam, None), dicom_request(f"{exam}@5") == (exam, 5)
    (True, True)
    >>> dicom_request(exam / "t1.nii.gz") is None
    True
    """
    path = Path(path)
    if path.is_dir():
        return path, None
    if path.exists():
        return None
    name, separator, number = path.name.rpartition(SERIES_SEPARATOR)
    if name and separator and number.isdigit() and path.with_name(name).is_dir():
        return path.with_name(name), int(number)
    return None


def _requires(module: str):
    try:
        return __import__(module)
    except ImportError:
        raise InputImageError(
            f"Reading DICOM needs the optional package {module}; install it with {INSTALL_HINT}."
        ) from None


def dcm2niix_binary() -> str:
    """Path of the dcm2niix program: the PyPI package's, else one on ``PATH``.

    Raises
    ------
    wmhkit.errors.InputImageError
        When neither is installed.
    """
    try:
        import dcm2niix

        if Path(dcm2niix.bin).is_file():
            return str(dcm2niix.bin)
    except ImportError:
        pass
    found = shutil.which("dcm2niix")
    if found:
        return found
    raise InputImageError(f"Reading DICOM needs the dcm2niix converter; install it with {INSTALL_HINT}.")


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def list_series(folder: str | os.PathLike) -> list[SeriesInfo]:
    """Every DICOM image series in ``folder`` and its sub-folders, by series number.

    Files that are not DICOM images (no SeriesInstanceUID or no Rows: a DICOMDIR, a report,
    a NIfTI) are left out.
    """
    files = [path for path in _files(Path(folder)) if is_dicom_file(path)]
    if not files:  # said without pydicom: a folder of NIfTI files needs no DICOM reader
        return []
    pydicom = _requires("pydicom")
    series: dict[str, dict] = {}
    for path in files:
        try:
            header = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=[
                "SeriesInstanceUID", "SeriesNumber", "SeriesDescription", "ProtocolName", "Rows"])
        except Exception as exc:  # noqa: BLE001 - a damaged file is left out, as dcm2niix does
            logger.debug("%s is not a readable DICOM file (%s); left out.", path, exc)
            continue
        uid = str(header.get("SeriesInstanceUID", "") or "")
        if not uid or "Rows" not in header:
            continue
        entry = series.setdefault(uid, {"files": [], "header": header})
        entry["files"].append(path)
    found = []
    for uid, entry in series.items():
        header = entry["header"]
        number = header.get("SeriesNumber")
        description = str(header.get("SeriesDescription", "") or header.get("ProtocolName", "") or "")
        found.append(SeriesInfo(None if number in (None, "") else int(number), description, uid, tuple(entry["files"])))
    return sorted(found, key=lambda s: (s.number is None, s.number or 0, s.uid))


def _pick(folder: Path, series: int | None) -> SeriesInfo:
    found = list_series(folder)
    if not found:
        raise InputImageError(
            f"Input folder {folder} holds no DICOM images; give a folder of one DICOM series or a .nii, .nii.gz or "
            ".mgz file."
        )
    listing = "; ".join(s.label() for s in found)
    if series is None:
        if len(found) == 1:
            return found[0]
        example = next((s.number for s in found if s.number is not None), 1)
        raise InputImageError(
            f"DICOM folder {folder} holds {len(found)} series ({listing}); pick one by adding its series number to "
            f"the path, as in {folder}{SERIES_SEPARATOR}{example}."
        )
    matches = [s for s in found if s.number == series]
    if len(matches) != 1:
        problem = "no series" if not matches else f"{len(matches)} series (of different studies)"
        raise InputImageError(
            f"DICOM folder {folder} holds {problem} numbered {series} (it holds {listing}); pick another number"
            + (" or put each study in its own folder." if matches else ".")
        )
    return matches[0]


def _signature(folder: Path) -> tuple:
    """Names, sizes and modification times of the folder's files: a changed folder is converted again."""
    return tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in _files(folder))


@functools.lru_cache(maxsize=2)
def _convert(folder: Path, series: int | None, signature: tuple) -> tuple[bytes, dict, str]:
    """dcm2niix's NIfTI bytes and BIDS sidecar of one series, and the series' label."""
    del signature  # part of the cache key only
    chosen = _pick(folder, series)
    binary = dcm2niix_binary()
    with tempfile.TemporaryDirectory(prefix="wmhkit-dicom-") as tmp:
        source, target = Path(tmp) / "in", Path(tmp) / "out"
        source.mkdir()
        target.mkdir()
        # dcm2niix converts every series it finds: it is shown the chosen series' files only.
        for index, path in enumerate(chosen.files):
            link = source / f"{index:06d}.dcm"
            try:
                link.symlink_to(path.resolve())
            except OSError:  # file systems without symbolic links
                shutil.copyfile(path, link)
        # -g i: ignore a user's ~/.dcm2nii.ini; -z n: plain .nii, read back at once; -b y -ba y:
        # the anonymised BIDS sidecar; -d 0: the flat folder above; -i n -x n: nothing dropped, cropped or rotated.
        command = [binary, "-g", "i", "-b", "y", "-ba", "y", "-z", "n", "-d", "0", "-i", "n", "-x", "n",
                   "-f", "series", "-o", str(target), str(source)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=CONVERT_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise InputImageError(
                f"DICOM series {chosen.label()} in {folder} could not be converted ({type(exc).__name__}: {exc}); "
                "check the dcm2niix installation."
            ) from None
        logger.debug("dcm2niix on %s: %s", folder, done.stdout.strip())
        images = sorted(target.glob("*.nii"))
        if done.returncode != 0 or not images:
            lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
            reason = lines[-1].strip() if lines else f"exit code {done.returncode}"
            raise InputImageError(
                f"DICOM series {chosen.label()} in {folder} could not be converted by dcm2niix ({reason}); check "
                "that the files are complete."
            )
        if len(images) > 1:
            raise InputImageError(
                f"DICOM series {chosen.label()} in {folder} converts to {len(images)} images "
                f"({', '.join(p.name for p in images)}: echoes, phases or differing slice geometry); export the one "
                "T1 volume as its own series."
            )
        sidecar_file = images[0].with_suffix(".json")
        sidecar = json.loads(sidecar_file.read_text()) if sidecar_file.is_file() else {}
        logger.info("Converted DICOM series %s in %s with dcm2niix.", chosen.label(), folder)
        return images[0].read_bytes(), sidecar, chosen.label()


def _converted(path: str | os.PathLike) -> tuple[bytes, dict, str]:
    request = dicom_request(path)
    if request is None:
        raise InputImageError(f"Input {path} is not a folder of DICOM files; give a folder of one DICOM series.")
    folder, series = request
    folder = folder.resolve()
    return _convert(folder, series, _signature(folder))


def read_dicom(path: str | os.PathLike) -> nib.Nifti1Image:
    """The 3D image of one DICOM series, converted by dcm2niix with its geometry kept exactly.

    Parameters
    ----------
    path : str or os.PathLike
        A folder holding one DICOM series, or ``FOLDER@N`` for series number ``N`` of a
        folder holding several (see the module's documentation).

    Returns
    -------
    nibabel.Nifti1Image
        dcm2niix's NIfTI, held in memory: its affine, voxels (stored dtype, scale factors in
        the header) and qform/sform exactly as dcm2niix wrote them.

    Raises
    ------
    wmhkit.errors.InputImageError
        A folder without DICOM images, several series and none picked, a series number the
        folder lacks, a failed conversion, or dcm2niix/pydicom not installed.
    """
    raw, _, _ = _converted(path)
    img = nib.Nifti1Image.from_bytes(raw)
    img._wmhkit_source = str(path)  # noqa: SLF001 - named in messages and outputs, as check_img does
    return img


def converted_sidecar(path: str | os.PathLike) -> dict:
    """dcm2niix's BIDS sidecar (acquisition parameters, anonymised) of the series :func:`read_dicom` reads."""
    return dict(_converted(path)[1])


def save_converted_t1(path: str | os.PathLike, out_dir: str | os.PathLike, stem: str | None = None) -> Path | None:
    """Write the converted T1 of a DICOM input beside its outputs; nothing for any other input.

    Parameters
    ----------
    path : str, os.PathLike or nibabel image
        The input as the user gave it; only a DICOM folder (or ``FOLDER@N``) writes anything.
    out_dir : str or os.PathLike
        The output folder.
    stem : str, optional
        Output stem; default the folder's name (:func:`wmhkit.io.bids_stem`).

    Returns
    -------
    pathlib.Path or None
        ``<prefix>_T1w.nii.gz`` (:attr:`wmhkit.io.OutputPaths.t1w`), written atomically with
        its sidecar ``<prefix>_T1w.json``; None for an input that is not DICOM.
    """
    if not isinstance(path, (str, os.PathLike)) or dicom_request(path) is None:
        return None
    raw, sidecar, _ = _converted(path)
    paths = OutputPaths(Path(out_dir), stem or bids_stem(path))
    with atomic_path(paths.t1w) as tmp:
        nib.save(nib.Nifti1Image.from_bytes(raw), str(tmp))
    with atomic_path(sidecar_path(paths.t1w)) as tmp:
        tmp.write_text(json.dumps(sidecar, indent=2) + "\n")
    return paths.t1w
