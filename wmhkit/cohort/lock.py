"""One cohort run per output folder at a time.

Two ``wmhkit cohort run`` on the same derivatives folder would segment the same subjects twice
and race to write the combined table. :func:`cohort_lock` takes an exclusive advisory lock
(``flock``) on ``<out>/.wmhkit_cohort.lock`` for the whole run; a second run (or ``cohort report``)
finds it taken and refuses at once, naming the process that holds it. The operating system
releases the lock when that process ends in any way (``kill -9``, a crash, a power-off of the
node), so a crashed run never leaves it stuck; the file itself stays behind, empty, and means
nothing once unlocked. The lock file is never deleted: deleting it would let a third run lock a
new file while a second still holds the old one.

On Linux, ``flock`` also works across NFS clients (the kernel maps it to NFS byte-range locks).
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

__all__ = ["LOCK_NAME", "cohort_lock", "lock_holder"]

logger = logging.getLogger(__name__)

#: The lock file inside the derivatives folder (hidden, like the temporary files).
LOCK_NAME = ".wmhkit_cohort.lock"
_BUSY = (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK)


def _try_lock(fd: int) -> bool:
    """Take the exclusive lock on ``fd`` without waiting; False when another process holds it."""
    if sys.platform == "win32":  # pragma: no cover - Windows
        import msvcrt

        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in _BUSY:
            return False
        raise
    return True


def lock_holder(out_dir: str | os.PathLike) -> str:
    """What the lock file says about the run holding it (``pid 123 on host, ...``), or ``""``."""
    try:
        return (Path(out_dir) / LOCK_NAME).read_text(encoding="utf-8").strip()
    except OSError:
        return ""


@contextlib.contextmanager
def cohort_lock(out_dir: str | os.PathLike, *, action: str = "cohort run") -> Iterator[Path]:
    """Hold the derivatives folder ``out_dir`` for one run; refuse at once when another holds it.

    Parameters
    ----------
    out_dir : str or path
        The derivatives folder (created when missing).
    action : str, default "cohort run"
        What this process does, written into the lock file for the message another run shows.

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
    """
    out_dir = Path(out_dir)
    path = out_dir / LOCK_NAME
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o664)
    except OSError as exc:
        raise OutputError(f"Output folder {out_dir} cannot be used ({exc.strerror}); choose another --out.") from None
    try:
        if not _try_lock(fd):
            holder = lock_holder(out_dir) or "another process"
            raise OutputError(
                f"Output folder {out_dir} is in use by another wmhkit run ({holder}); wait for it to finish or "
                "choose another --out."
            )
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        note = f"pid {os.getpid()} on {socket.gethostname()}, wmhkit {action}, since {started}\n".encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, note, 0) if hasattr(os, "pwrite") else os.write(fd, note)
        logger.debug("Locked %s (%s)", out_dir, note.decode().strip())
        try:
            yield path
        finally:
            with contextlib.suppress(OSError):  # free the note; the lock goes with the descriptor
                os.ftruncate(fd, 0)
    finally:
        os.close(fd)
