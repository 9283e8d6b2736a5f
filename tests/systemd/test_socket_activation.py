"""Socket activation through systemd-socket-activate: the manager owns the socket file."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.daemon import Conn
from tests.systemd.test_daemon import NotifyListener

ACTIVATE = shutil.which("systemd-socket-activate") or "/usr/lib/systemd/systemd-socket-activate"
pytestmark = pytest.mark.skipif(
    not Path(ACTIVATE).exists(),
    reason="systemd-socket-activate is not installed (Debian/Ubuntu: apt install systemd)")


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifyListener]:
    listener = NotifyListener(tmp_path / "notify.sock")
    yield listener
    listener.close()


def activate(tmp_path: Path, *listen: str, env: tuple[str, ...] = ()) -> subprocess.Popen[bytes]:
    """Start ``systemd-socket-activate`` with wizd behind it (it passes no
    environment but what ``-E`` names, like a service manager)."""
    cmd = [ACTIVATE, *listen, "-E", f"XDG_CONFIG_HOME={tmp_path / 'config'}",
           *(arg for name in env for arg in ("-E", name)),
           sys.executable, "-m", "wizd", "--db", str(tmp_path / "wiz.db"), "--log-level", "debug"]
    with open(tmp_path / "wizd.log", "ab") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=log)


def listening(path: Path) -> bool:
    """Whether a Unix stream socket listens at ``path``, from the kernel's table
    (/proc/net/unix: flag 0x10000 is __SO_ACCEPTCON); looking connects to nothing,
    so it starts nothing. The file appears at bind(), before listen(): a connect
    in between is refused."""
    with open("/proc/net/unix") as table:
        next(table)
        for line in table:
            fields = line.split()
            if len(fields) >= 8 and fields[7] == str(path) and int(fields[3], 16) & 0x10000:
                return True
    return False


def wait_for_path(path: Path, proc: subprocess.Popen[bytes], *, stream: bool = True) -> None:
    """Wait until the activator's socket is at ``path`` (and listens, if a stream socket)."""
    deadline = time.monotonic() + 20
    while not (path.exists() and (not stream or listening(path))):
        assert proc.poll() is None, "systemd-socket-activate exited"
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


def test_wizd_serves_the_inherited_socket_and_leaves_its_file_alone(
        tmp_path: Path, notify: NotifyListener) -> None:
    sock = tmp_path / "run" / "wiz" / "wizd.sock"
    sock.parent.mkdir(parents=True, mode=0o700)
    proc = activate(tmp_path, "-l", str(sock), env=(f"NOTIFY_SOCKET={notify.path}",))
    try:
        wait_for_path(sock, proc)
        inode = sock.stat().st_ino
        notify.sock.setblocking(False)
        with pytest.raises(BlockingIOError):  # nothing runs before the first client
            notify.sock.recv(4096)
        with Conn(sock, timeout=30) as c:  # this connection starts wizd
            status = c.call("daemon.status")
        assert status["pid"] == proc.pid  # the activator exec'd wizd in its place
        assert status["socket"] == str(sock)
        notify.wait_for("READY=1")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        notify.wait_for("STOPPING=1")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # The manager's socket: neither made nor removed by wizd.
    assert sock.stat().st_ino == inode
    log = (tmp_path / "wizd.log").read_text()
    assert "serving the socket passed by the service manager" in log


@pytest.mark.parametrize(("listen", "message"), [
    (("--datagram", "-l", "{dir}/a.sock"), "is not a listening Unix stream socket"),
    (("-l", "{dir}/a.sock", "-l", "{dir}/b.sock"), "passed 2 sockets"),
])
def test_a_socket_wizd_cannot_serve_is_refused_clearly(tmp_path: Path, listen: tuple[str, ...],
                                                       message: str) -> None:
    proc = activate(tmp_path, *(arg.format(dir=tmp_path) for arg in listen))
    try:
        kind = socket.SOCK_DGRAM if "--datagram" in listen else socket.SOCK_STREAM
        for path in (arg.format(dir=tmp_path) for arg in listen if arg.endswith(".sock")):
            wait_for_path(Path(path), proc, stream=kind == socket.SOCK_STREAM)
        with socket.socket(socket.AF_UNIX, kind) as s:  # wake the activator
            s.connect(str(tmp_path / "a.sock"))
            s.send(b"hello\n")
            assert proc.wait(timeout=30) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    last = (tmp_path / "wizd.log").read_text().strip().splitlines()[-1]
    assert message in last
    assert not (tmp_path / "wiz.db").exists()  # refused before touching anything
