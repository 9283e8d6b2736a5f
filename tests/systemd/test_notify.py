"""sd_notify: addresses, the watchdog interval, and datagrams on a real socket."""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from wizd.systemd import Notifier, notify_address, watchdog_interval


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify.sock"))
    sock.settimeout(5)
    yield sock
    sock.close()


def test_address_forms() -> None:
    assert notify_address({"NOTIFY_SOCKET": "/run/user/1000/systemd/notify"}) == (
        "/run/user/1000/systemd/notify")
    assert notify_address({"NOTIFY_SOCKET": "@/org/freedesktop/systemd1/notify/42"}) == (
        "\0/org/freedesktop/systemd1/notify/42")
    assert notify_address({}) is None
    assert notify_address({"NOTIFY_SOCKET": ""}) is None
    assert notify_address({"NOTIFY_SOCKET": "vsock:2:1234"}) is None


def test_watchdog_interval_is_half_the_timeout_and_only_for_us() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": str(os.getpid())}) == 0.1
    assert watchdog_interval({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None
    assert watchdog_interval({}) is None


def test_messages_arrive_as_datagrams(receiver: socket.socket) -> None:
    with Notifier.from_environ({"NOTIFY_SOCKET": receiver.getsockname()}) as n:
        assert n.enabled
        assert n.ready("serving /x")
        assert receiver.recv(4096) == b"READY=1\nSTATUS=serving /x"
        # A newline would start another assignment: STATUS stays one line.
        assert n.status("2 active,\n5 waiting")
        assert receiver.recv(4096) == b"STATUS=2 active, 5 waiting"
        assert n.watchdog()
        assert receiver.recv(4096) == b"WATCHDOG=1"
        assert n.stopping()
        assert receiver.recv(4096) == b"STOPPING=1"


def test_abstract_namespace_address() -> None:
    name = f"wiz-test-notify-{os.getpid()}-{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        with Notifier.from_environ({"NOTIFY_SOCKET": "@" + name}) as n:
            assert n.ready()
        assert sock.recv(4096) == b"READY=1"


def test_without_notify_socket_everything_is_a_no_op() -> None:
    with Notifier.from_environ({}) as n:
        assert not n.enabled
        assert n.ready() is False
        assert n.watchdog() is False


def test_a_full_or_missing_receiver_never_blocks_nor_raises(receiver: socket.socket) -> None:
    with Notifier.from_environ({"NOTIFY_SOCKET": receiver.getsockname()}) as n:
        started = time.monotonic()
        sent = [n.status(f"{i} " + "x" * 1000) for i in range(2000)]
        assert sent[0] and not all(sent)  # the receiver's queue filled up: later ones dropped
        assert time.monotonic() - started < 5
    with Notifier.from_environ({"NOTIFY_SOCKET": receiver.getsockname() + ".gone"}) as n:
        assert n.ready() is False
