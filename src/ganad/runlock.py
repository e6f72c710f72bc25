"""One writer per run folder: a lock file ``<folder>/.lock`` holding the owner's pid.

``ganad fit`` takes it before it touches a run folder, so two fits on one
``--out`` cannot race on its checkpoint and model files; the second is
refused with a one-line :class:`RunInUseError` (a ``ValueError``).

The lock is created atomically (``O_CREAT | O_EXCL``) and removed on release,
also when the holder raises.  A holder killed with ``kill -9`` leaves the file
behind: a lock whose pid is no longer alive on this host is stale and taken
over (renamed away atomically, so that of two processes breaking one stale lock
only one succeeds).  A lock of another host, or one still being written, is
treated as held.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from types import TracebackType

LOCK_NAME = ".lock"
#: a lock file still empty after this long was left by a writer that died
_EMPTY_GRACE_S = 10.0


class RunInUseError(ValueError):
    """The run folder is locked by a live process."""


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (a zombie counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def _read(path: str) -> tuple[int | None, str | None]:
    """(pid, host) written in a lock file; (None, None) when empty or unreadable."""
    try:
        with open(path) as f:
            fields = f.read().split()
    except OSError:
        return None, None
    try:
        return int(fields[0]), (fields[1] if len(fields) > 1 else None)
    except (IndexError, ValueError):
        return None, None


def _folder_name(folder: str | os.PathLike) -> str:
    return os.path.join(os.fspath(folder), "")  # "run" and "run/" both read "run/"


class RunLock:
    """The lock of one run folder; use :func:`acquire` or ``with RunLock(folder):``."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.path = os.fspath(self.folder / LOCK_NAME)
        self.pid: int | None = None

    def _holder(self) -> int | None:
        """The pid of a live holder of the existing lock file, or None when it is stale."""
        pid, host = _read(self.path)
        if pid is None:  # being written right now, or its writer died mid-write
            try:
                fresh = time.time() - os.path.getmtime(self.path) < _EMPTY_GRACE_S
            except OSError:
                return None
            return -1 if fresh else None
        if host is not None and host != socket.gethostname():
            return pid  # cannot tell whether it lives: keep off
        return pid if _alive(pid) else None

    def acquire(self, pid: int | None = None) -> "RunLock":
        """Take the lock for ``pid`` (default: this process); raise :class:`RunInUseError` when held."""
        pid = os.getpid() if pid is None else int(pid)
        self.folder.mkdir(parents=True, exist_ok=True)
        for _ in range(5):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder is not None:
                    who = f"process {holder}" if holder > 0 else "another process"
                    raise RunInUseError(
                        f"{_folder_name(self.folder)} is in use by {who} (another `ganad fit`); "
                        f"wait for it or use another --out"
                    ) from None
                self._break_stale()
                continue
            try:
                os.write(fd, f"{pid} {socket.gethostname()}\n".encode())
            finally:
                os.close(fd)
            self.pid = pid
            return self
        raise RunInUseError(f"{_folder_name(self.folder)}: could not take the lock {self.path}; try again")

    def _break_stale(self) -> None:
        """Rename a stale lock away; put it back if it turned out to be a fresh one."""
        stale = f"{self.path}.{os.getpid()}.stale"
        try:
            os.rename(self.path, stale)
        except FileNotFoundError:  # another process broke it first
            return
        pid, _ = _read(stale)
        if pid is not None and _alive(pid):  # a new holder got in between: give its lock back
            try:
                os.link(stale, self.path)
            except FileExistsError:
                pass
        os.remove(stale)

    def release(self) -> None:
        """Remove the lock file if it is still ours."""
        if self.pid is None:
            return
        pid, _ = _read(self.path)
        if pid == self.pid:
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass
        self.pid = None

    def __enter__(self) -> "RunLock":
        return self if self.pid is not None else self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()


def acquire(folder: str | os.PathLike, pid: int | None = None) -> RunLock:
    """Lock ``folder`` for ``pid`` (default: this process); see :class:`RunLock`."""
    return RunLock(folder).acquire(pid)


def holder(folder: str | os.PathLike) -> int | None:
    """The pid of the live process holding ``folder``'s lock, or None."""
    lock = RunLock(folder)
    if not os.path.exists(lock.path):
        return None
    h = lock._holder()
    return None if h is None or h < 0 else h


__all__ = ["LOCK_NAME", "RunInUseError", "RunLock", "acquire", "holder"]
