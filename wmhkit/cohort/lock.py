"""One cohort run per output folder at a time.

Two ``wmhkit cohort run`` on the same derivatives folder would segment the same subjects twice
and race to write the combined table. :func:`cohort_lock` takes an exclusive advisory lock
(``flock``) on ``<out>/.wmhkit_cohort.lock`` for the whole run; a second run (or ``cohort report``)
finds it taken and refuses at once, naming the process that holds it. The operating system
releases the lock when that process ends in any way (``kill -9``, a crash, a power-off of the
node), so a crashed run never leaves it stuck; the file itself stays behind, empty, and means
nothing once unlocked. The lock file is never deleted: deleting it would let a third run lock a
new file while a second still holds the old one.

Participant-level runs (``wmhkit BIDS_DIR OUT participant``, one per task of a cluster array)
share the folder instead: each takes the folder's lock *shared* and an exclusive lock per
subject folder it segments (``<out>/sub-<label>/[ses-<label>/]anat/.wmhkit_participant.lock``,
:func:`subject_locks`). Runs on different subjects then proceed side by side; two on the same
subject, or a ``cohort run``/group step while any participant run works, refuse at once.

On Linux, ``flock`` also works across NFS clients (the kernel maps it to NFS byte-range locks).
On Windows a shared lock is not available: participant runs there do not lock the folder.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from wmhkit.errors import OutputError

__all__ = ["LOCK_NAME", "SUBJECT_LOCK_NAME", "cohort_lock", "lock_holder", "subject_locks"]

logger = logging.getLogger(__name__)

#: The lock file inside the derivatives folder (hidden, like the temporary files).
LOCK_NAME = ".wmhkit_cohort.lock"
#: The lock file of a participant-level run inside each subject folder it segments.
SUBJECT_LOCK_NAME = ".wmhkit_participant.lock"
_BUSY = (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK)


def _try_lock(fd: int, shared: bool = False) -> bool:
    """Take the lock on ``fd`` without waiting; False when another process holds it (exclusively,
    or at all for an exclusive request)."""
    if sys.platform == "win32":  # pragma: no cover - Windows
        import msvcrt

        if shared:  # msvcrt has no shared lock
            return True
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in _BUSY:
            return False
        raise
    return True


def lock_holder(out_dir: str | os.PathLike) -> str:
    """What the lock file says about the run holding it (``pid 123 on host, ...``), or ``""``."""
    return _read_note(Path(out_dir) / LOCK_NAME)


@contextlib.contextmanager
def _hold(path: Path, *, action: str, shared: bool, busy: str) -> Iterator[Path]:
    """Hold the lock file ``path`` (created with its folder); ``busy`` is the refusal message,
    with ``{holder}`` for what the lock file says about the process holding it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o664)
    except OSError as exc:
        raise OutputError(f"Output folder {path.parent} cannot be used ({exc.strerror}); choose another --out.") from None
    try:
        if not _try_lock(fd, shared):
            raise OutputError(busy.format(holder=_read_note(path) or "another process"))
        if shared:  # several holders: none writes a note, which another would overwrite
            yield path
            return
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        note = f"pid {os.getpid()} on {socket.gethostname()}, wmhkit {action}, since {started}\n".encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, note, 0) if hasattr(os, "pwrite") else os.write(fd, note)
        logger.debug("Locked %s (%s)", path, note.decode().strip())
        try:
            yield path
        finally:
            with contextlib.suppress(OSError):  # free the note; the lock goes with the descriptor
                os.ftruncate(fd, 0)
    finally:
        os.close(fd)


def _read_note(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""


@contextlib.contextmanager
def cohort_lock(out_dir: str | os.PathLike, *, action: str = "cohort run", shared: bool = False) -> Iterator[Path]:
    """Hold the derivatives folder ``out_dir`` for one run; refuse at once when another holds it.

    Parameters
    ----------
    out_dir : str or path
        The derivatives folder (created when missing).
    action : str, default "cohort run"
        What this process does, written into the lock file for the message another run shows.
    shared : bool, default False
        Share the folder with other shared holders (participant-level runs, which also lock
        their subjects with :func:`subject_locks`); an exclusive holder excludes everyone.

    Yields
    ------
    pathlib.Path
        The lock file.

    Raises
    ------
    wmhkit.errors.OutputError
        When another process holds the folder, or the lock file cannot be created.

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with cohort_lock(folder):
    ...     "wmhkit cohort run" in lock_holder(folder)
    True
    >>> lock_holder(folder)
    ''
    >>> with cohort_lock(folder, shared=True), cohort_lock(folder, shared=True):
    ...     pass
    """
    out_dir = Path(out_dir)
    busy = (f"Output folder {out_dir} is in use by another wmhkit run ({{holder}}); wait for it to finish or "
            "choose another --out.")
    with _hold(out_dir / LOCK_NAME, action=action, shared=shared, busy=busy) as path:
        yield path


@contextlib.contextmanager
def subject_locks(out_dir: str | os.PathLike, subdirs, *, action: str = "participant run") -> Iterator[list[Path]]:
    """Hold subject folders of ``out_dir`` exclusively, all or none; refuse at once when one is held.

    Parameters
    ----------
    out_dir : str or path
        The derivatives folder.
    subdirs : iterable of str
        Subject folders inside it (``sub-01/anat``, ``sub-02/ses-1/anat``); repeats count once.
    action : str, default "participant run"
        Written into each lock file for the message another run shows.

    Yields
    ------
    list of pathlib.Path
        The lock files.

    Raises
    ------
    wmhkit.errors.OutputError
        When another process holds one of the folders (the others are released first).

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with subject_locks(folder, ["sub-01/anat"]):
    ...     with subject_locks(folder, ["sub-02/anat"]):  # another subject: fine
    ...         pass
    ...     try:
    ...         with subject_locks(folder, ["sub-02/anat", "sub-01/anat"]):
    ...             pass
    ...     except OutputError as exc:
    ...         "sub-01" in str(exc)
    True
    """
    out_dir = Path(out_dir)
    with contextlib.ExitStack() as stack:
        held = []
        for subdir in dict.fromkeys(str(s) for s in subdirs):
            busy = (f"Subject folder {out_dir / subdir} is in use by another wmhkit run ({{holder}}); wait for it "
                    "to finish or leave that participant out.")
            held.append(stack.enter_context(_hold(out_dir / subdir / SUBJECT_LOCK_NAME, action=action, shared=False,
                                                  busy=busy)))
        yield held
