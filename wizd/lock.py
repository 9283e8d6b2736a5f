"""One wizd per database and per socket: advisory locks on ``<path>.lock`` files.

Each lock is an ``flock`` on a file next to the thing it guards, holding the
pid of its owner so that a refused daemon can say who is in the way. The
kernel drops the lock when the owner exits, however it exits, so a crashed
daemon never leaves a stale lock; the file itself stays (removing it would
let a third daemon lock a new file while a second still holds the old one).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from .errors import DaemonBusy, StorageUnavailable
from .store.failures import at_start, os_cause


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


class InstanceLock:
    """An exclusive, non-blocking lock on ``<path>.lock``, held until ``release``."""

    def __init__(self, path: Path, what: str) -> None:
        self.guarded = Path(path)
        self.path = lock_path(self.guarded)
        self.what = what
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock and write our pid into it.

        Raises DaemonBusy, naming the holder's pid, if another process holds it;
        StorageUnavailable, saying where and what to do, if the lock file cannot
        be created or written (a read-only folder, a full disk, a file in the way).
        """
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise self._unavailable(exc) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            who = f"pid {holder}" if holder else "another process"
            raise DaemonBusy(
                f"another wizd ({who}) is already using the {self.what} {self.guarded} "
                f"(lock {self.path}); stop it first, or give this one its own --socket and --db"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as exc:
            os.close(fd)
            raise self._unavailable(exc) from None
        self._fd = fd

    def _unavailable(self, exc: OSError) -> StorageUnavailable:
        where = exc.filename if exc.filename and Path(exc.filename) != self.path else None
        option = "--socket" if self.what == "socket" else "--db"
        return at_start(os_cause(exc), str(where or f"lock file {self.path}"), option)

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            # Empty it first: a pid left in an unlocked file would be a lie.
            os.ftruncate(fd, 0)
            os.close(fd)


def _read_pid(fd: int) -> int | None:
    try:
        return int(os.pread(fd, 32, 0).decode().strip())
    except (OSError, ValueError, UnicodeDecodeError):
        return None


@contextlib.contextmanager
def instance_locks(db: Path | None, socket: Path) -> Iterator[None]:
    """Hold the database lock, then the socket lock, for the life of the block
    (the socket's only for a PostgreSQL database, ``db`` None: nodes share it).

    Raises DaemonBusy if another wizd holds either, StorageUnavailable if a
    lock file cannot be made.
    """
    with contextlib.ExitStack() as stack:
        for path, what in ((db, "database"), (socket, "socket")):
            if path is None:
                continue
            lock = InstanceLock(path, what)
            lock.acquire()
            stack.callback(lock.release)
        yield
