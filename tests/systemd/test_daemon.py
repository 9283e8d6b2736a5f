"""wizd's life under a service manager, end to end with real processes and sockets:
sd_notify, the journal stream, one instance per database and socket, stale sockets."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.daemon import Conn, Wizd


class NotifyListener:
    """A datagram socket standing in for systemd's notify socket."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.received: list[str] = []

    def close(self) -> None:
        self.sock.close()

    def wait_for(self, line: str, count: int = 1, timeout: float = 20.0) -> list[str]:
        """Read datagrams until ``count`` of them hold ``line``; all read so far."""
        deadline = time.monotonic() + timeout
        while sum(line in msg.splitlines() for msg in self.received) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {line!r} in {self.received}")
            self.sock.settimeout(left)
            self.received.append(self.sock.recv(4096).decode())
        return self.received


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifyListener]:
    listener = NotifyListener(tmp_path / "notify.sock")
    yield listener
    listener.close()


def test_ready_status_watchdog_and_stopping_reach_the_manager(
        tmp_path: Path, notify: NotifyListener) -> None:
    log = tmp_path / "w" / "wizd.log"
    log.parent.mkdir()
    log.touch()
    st = log.stat()  # wizd's stderr is this file: make it "the journal stream"
    w = Wizd(tmp_path / "w", env={"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "200000",
                                   "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
    try:
        w.start(wait=False, fork=False)  # the real `python -m wizd`, as systemd runs it
        got = notify.wait_for("READY=1")
        # READY=1 promises the socket accepts: no retry loop here.
        with Conn(w.socket) as c:
            assert c.call("daemon.status")["queue"]["active"] == 0
        got = notify.wait_for("STATUS=serving: 0 active, 0 waiting, 0 delayed, 0 failed")
        got = notify.wait_for("WATCHDOG=1", count=3)  # every 100 ms of real time
        assert w.stop() == 0
        got = notify.wait_for("STOPPING=1")
        assert not w.socket.exists()
    finally:
        w.close()
    stopping = next(m for m in got if "STOPPING=1" in m).splitlines()
    assert "EXTEND_TIMEOUT_USEC=15000000" in stopping  # shutdown_grace 0 + the margin
    lines = w.log_text().splitlines()
    assert "<6>wizd: received SIGTERM" in lines
    assert all(line.startswith("<") for line in lines), lines


def test_a_second_daemon_on_the_same_database_or_socket_is_refused(wizd_factory: type[Wizd],
                                                                   tmp_path: Path) -> None:
    first = wizd_factory("first").start()
    pid = first.call("daemon.status")["pid"]
    same_db = wizd_factory("same-db", extra_args=["--db", str(first.db)])
    same_socket = wizd_factory("same-socket", extra_args=["--socket", str(first.socket)])
    for other, what in ((same_db, "database"), (same_socket, "socket")):
        other.start(wait=False)
        assert other.proc is not None
        assert other.proc.wait(timeout=30) == 1
        message = other.log_text().strip().splitlines()[-1]
        assert f"another wizd (pid {pid}) is already using the {what}" in message
    # The refused ones touched nothing: the first still serves on its socket.
    assert first.call("daemon.status")["pid"] == pid
    assert first.stop() == 0
    assert not first.socket.exists()


def test_what_a_crashed_daemon_leaves_behind_is_taken_over(tmp_path: Path) -> None:
    w = Wizd(tmp_path / "w")
    w.socket.parent.mkdir(parents=True, mode=0o700)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.bind(str(w.socket))  # a socket file whose listener is gone
    # A lock file naming a dead pid: the kernel dropped the lock with its owner.
    w.db.parent.mkdir(parents=True, mode=0o700)
    Path(f"{w.db}.lock").write_text("999999999\n")
    with pytest.raises(ConnectionRefusedError):
        Conn(w.socket)
    try:
        w.start()  # returns once daemon.status answers on the path
        assert "removing stale socket" in w.log_text()
        assert w.stop() == 0
    finally:
        w.close()

