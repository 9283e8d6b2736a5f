"""One wizd per database and per socket (end to end in test_daemon.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wizd.errors import DaemonBusy
from wizd.lock import InstanceLock, instance_locks


def test_second_holder_is_refused_with_the_holders_pid(tmp_path: Path) -> None:
    db = tmp_path / "data" / "wiz.db"
    first = InstanceLock(db, "database")
    first.acquire()
    assert (tmp_path / "data" / "wiz.db.lock").read_text() == f"{os.getpid()}\n"
    # flock belongs to the open file, so a second open in this process conflicts too.
    with pytest.raises(DaemonBusy) as caught:
        InstanceLock(db, "database").acquire()
    assert f"pid {os.getpid()}" in caught.value.message
    assert str(db) in caught.value.message
    first.release()
    assert (tmp_path / "data" / "wiz.db.lock").read_text() == ""  # no pid left behind
    again = InstanceLock(db, "database")
    again.acquire()  # released: free again
    again.release()


def test_socket_lock_is_checked_too_and_nothing_stays_held_after_a_refusal(tmp_path: Path) -> None:
    sock = tmp_path / "run" / "wizd.sock"
    holder = InstanceLock(sock, "socket")
    holder.acquire()
    with pytest.raises(DaemonBusy, match="socket"):
        with instance_locks(tmp_path / "wiz.db", sock):
            pass
    holder.release()
    # The database lock taken before the refusal was let go.
    with instance_locks(tmp_path / "wiz.db", sock):
        pass
