"""Where the tests' folders go: a tmpfs (/dev/shm) where the machine has one.

Every test makes folders, a real SQLite database (WAL, synchronous commits)
and a Unix socket under pytest's base folder. On a disk each commit waits for
the disk and each folder costs a journal entry; in memory the same files,
locks and syscalls run without that wait. What the tests check (what is
stored, what survives a restart or a kill -9 of wizd) does not depend on the
disk under the file: no test can cut the power.

Only when nothing was chosen: ``--basetemp``, ``TMPDIR`` and pytest's
``PYTEST_DEBUG_TEMPROOT`` win. Without a writable tmpfs with room, pytest's
default stays.
"""

from __future__ import annotations

import os

import pytest

SHM = "/dev/shm"
ROOM = 1 << 30  # pytest keeps the folders of the last three runs


def _is_roomy_tmpfs(path: str) -> bool:
    try:
        with open("/proc/self/mounts") as mounts:
            if not any(line.split()[1:3] == [path, "tmpfs"] for line in mounts):
                return False
        stat = os.statvfs(path)
    except OSError:
        return False
    return os.access(path, os.W_OK | os.X_OK) and stat.f_bavail * stat.f_frsize >= ROOM


def choose(config: pytest.Config) -> None:
    """Point pytest's temporary root at the tmpfs, unless a folder was chosen.

    In the xdist controller (or a run without workers): workers get their
    folders under the controller's base folder.
    """
    if config.option.basetemp or os.environ.get("TMPDIR") \
            or os.environ.get("PYTEST_DEBUG_TEMPROOT") or hasattr(config, "workerinput"):
        return
    if _is_roomy_tmpfs(SHM):
        os.environ["PYTEST_DEBUG_TEMPROOT"] = SHM
