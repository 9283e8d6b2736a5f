"""Real storage failures for tests: a small tmpfs that can be filled or made
read-only, and read-only bind mounts. Mounting needs root (or CAP_SYS_ADMIN):
tests that use these skip, saying why, where it is not permitted.

File permissions are no substitute here: root ignores them, and the tests run
as root on the development machine.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"mount {' '.join(args)} is not permitted here: {done.stderr.strip()}")


def _umount(path: Path) -> None:
    # A process that still holds a file there (a wizd that failed to die)
    # must not leave the mount behind: detach it lazily then.
    if subprocess.run(["umount", str(path)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(path)], check=True)


def require_mounts() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs (and root ignores file permissions)")


@contextmanager
def tmpfs(path: Path, size: str = "4m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``path`` (made if missing) for the block."""
    require_mounts()
    path.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path))
    try:
        yield path
    finally:
        _umount(path)


def remount_read_only(path: Path) -> None:
    """Make the tmpfs at ``path`` read-only (it stays mounted)."""
    _mount("-o", "remount,ro", str(path))


@contextmanager
def read_only_file(path: Path) -> Iterator[Path]:
    """``path`` (an existing file) bound read-only over itself: its folder stays writable."""
    require_mounts()
    _mount("--bind", str(path), str(path))
    try:
        _mount("-o", "remount,bind,ro", str(path))
        yield path
    finally:
        _umount(path)


def fill(folder: Path, name: str = "filler") -> Path:
    """Write a file in ``folder`` until its file system has no byte left; the file."""
    filler = folder / name
    chunk = b"\0" * 65536
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        while True:
            try:
                os.write(fd, chunk)
            except OSError as exc:
                if exc.errno != errno.ENOSPC:
                    raise
                return filler
    finally:
        os.close(fd)
