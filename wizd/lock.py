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

from .errors import DaemonBusy


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

        Raises DaemonBusy, naming the holder's pid, if another process holds it.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
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
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

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
def instance_locks(db: Path, socket: Path) -> Iterator[None]:
    """Hold the database lock, then the socket lock, for the life of the block.

    Raises DaemonBusy if another wizd holds either.
    """
    with contextlib.ExitStack() as stack:
        for path, what in ((db, "database"), (socket, "socket")):
            lock = InstanceLock(path, what)
            lock.acquire()
            stack.callback(lock.release)
        yield
