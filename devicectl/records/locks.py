"""Liveness locks: an OS file lock per session, held while its writer lives.

The OS drops the lock when the process dies, even on SIGKILL, so a "running" session whose lock
can be taken was left by a crashed process.
"""

from __future__ import annotations

import sys
from contextlib import suppress
from pathlib import Path
from typing import IO


def lock_path(db_path: Path, session_id: int) -> Path:
    return db_path.with_name(f"{db_path.name}-session-{session_id}.lock")


if sys.platform == "win32":
    import msvcrt

    def _try_lock(f: IO[bytes]) -> bool:
        try:
            msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

else:
    import fcntl

    def _try_lock(f: IO[bytes]) -> bool:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


class SessionLock:
    """An exclusive OS lock on one file: held while a session's writer lives, gone when it dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None

    def try_acquire(self) -> bool:
        f = self.path.open("a+b")
        if not _try_lock(f):
            f.close()
            return False
        self._file = f
        return True

    def release(self, *, remove: bool = True) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the lock
            self._file = None
        if remove:
            with suppress(OSError):  # another process may hold it open (Windows) or have removed it
                self.path.unlink(missing_ok=True)
