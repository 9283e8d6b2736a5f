"""The blocking client against a real Unix socket with scripted replies."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.wizctl.fakewizd import Fail, FakeWizd
from wizctl.client import (
    NOT_FOUND,
    Client,
    ConnectionLost,
    DaemonNotRunning,
    Notification,
    ProtocolError,
    RpcError,
    RpcTimeout,
    default_socket_path,
)


def test_call_returns_the_result_and_sends_params_by_name(fake: FakeWizd) -> None:
    fake.on("agent.get", fn=lambda p, peer: {"id": p["id"], "name": "alice"})
    with Client(fake.path) as c:
        assert c.call("agent.get", id="a1") == {"id": "a1", "name": "alice"}
        assert c.call("agent.get", id="a2")["id"] == "a2"
    assert fake.requests == [("agent.get", {"id": "a1"}), ("agent.get", {"id": "a2"})]


def test_no_params_means_no_params_member(fake: FakeWizd) -> None:
    seen = []

    def status(params: dict, peer: object) -> dict:
        seen.append(params)
        return {}
    fake.on("daemon.status", fn=status)
    with Client(fake.path) as c:
        c.call("daemon.status")
    assert seen == [{}]  # the fake defaults a missing "params" to {}


def test_error_response_raises_rpc_error_with_code_and_data(fake: FakeWizd) -> None:
    def missing(params: dict, peer: object) -> None:
        raise Fail(NOT_FOUND, "agent not found: bob", {"kind": "agent", "ref": "bob"})
    fake.on("agent.get", fn=missing)
    with Client(fake.path) as c, pytest.raises(RpcError) as info:
        c.call("agent.get", name="bob")
    assert info.value.code == NOT_FOUND
    assert info.value.message == "agent not found: bob"
    assert info.value.data == {"kind": "agent", "ref": "bob"}


def test_invalid_params_description_names_the_field() -> None:
    err = RpcError(-32602, "Invalid params", {"field": "limit", "problem": "must be positive"})
    assert err.describe() == "Invalid params (limit: must be positive)"
    assert str(err) == err.describe()
    # data that repeats the message adds nothing
    err = RpcError(-32001, "agent not found: x", {"kind": "agent"})
    assert err.describe() == "agent not found: x"


def test_notifications_before_a_response_are_kept_in_order(fake: FakeWizd) -> None:
    def subscribe(params: dict, peer) -> dict:
        # The history arrives before the response to events.subscribe.
        for seq in (1, 2):
            peer.notify("message.created", subscription="s1", message={"seq": seq})
        return {"subscription": "s1"}
    fake.on("events.subscribe", fn=subscribe)
    fake.on("daemon.status", {"ok": True})
    with Client(fake.path) as c:
        assert c.subscribe("conv", after_seq=0) == "s1"
        assert c.call("daemon.status") == {"ok": True}
        first = c.next_notification(timeout=1)
        second = c.next_notification(timeout=1)
    assert first == Notification("message.created", {"subscription": "s1", "message": {"seq": 1}})
    assert second is not None and second.params["message"]["seq"] == 2
    assert fake.calls("events.subscribe") == [{"conversation_id": "conv", "after_seq": 0}]


def test_next_notification_times_out_with_none(fake: FakeWizd) -> None:
    with Client(fake.path) as c:
        start = time.monotonic()
        assert c.next_notification(timeout=0.05) is None
        assert time.monotonic() - start < 1


def test_notifications_iterator_ends_with_connection_lost(fake: FakeWizd) -> None:
    fake.on("events.subscribe", {"subscription": 1})
    with Client(fake.path) as c:
        c.subscribe()
        peer = fake.peers[0]
        peer.notify("agent.status", subscription=1, agent_id="a", status="busy")
        peer.close()
        it = c.notifications()
        assert next(it).params["status"] == "busy"
        with pytest.raises(ConnectionLost):
            next(it)
        assert c.closed


def test_call_times_out_and_a_late_answer_is_dropped(fake: FakeWizd) -> None:
    release = threading.Event()

    def slow(params: dict, peer: object) -> str:
        release.wait(5)
        return "late"
    fake.on("slow", fn=slow)
    fake.on("fast", "fast")
    with Client(fake.path, timeout=0.1) as c:
        with pytest.raises(RpcTimeout):
            c.call("slow")
        release.set()
        # The late answer to "slow" arrives first and must not be taken for this one.
        assert c.request("fast", timeout=5) == "fast"


@contextmanager
def raw_server(path: Path, script: Callable[[socket.socket], None]) -> Iterator[None]:
    """A one-connection server that runs ``script`` on the accepted socket."""
    with socket.socket(socket.AF_UNIX) as srv:
        srv.bind(str(path))
        srv.listen()

        def serve() -> None:
            conn, _ = srv.accept()
            with conn:
                script(conn)
        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        yield
        thread.join(5)


def test_an_error_with_null_id_answers_the_call_in_flight(tmp_path: Path) -> None:
    def script(conn: socket.socket) -> None:
        conn.recv(1000)
        conn.sendall(b'{"jsonrpc":"2.0","error":{"code":-32600,"message":"Invalid request",'
                     b'"data":"line longer than 1048576 bytes"},"id":null}\n')
    with raw_server(tmp_path / "s", script), Client(tmp_path / "s") as c:
        with pytest.raises(RpcError) as info:
            c.call("x")
    assert info.value.code == -32600
    assert "line longer" in str(info.value)


def test_garbage_from_the_daemon_is_a_protocol_error(tmp_path: Path) -> None:
    def script(conn: socket.socket) -> None:
        conn.recv(1000)
        conn.sendall(b"HTTP/1.1 400 Bad Request\n")
    with raw_server(tmp_path / "s", script), Client(tmp_path / "s") as c:
        with pytest.raises(ProtocolError):
            c.call("x")


def test_replies_split_across_reads_are_reassembled(tmp_path: Path) -> None:
    big = "é" * 100_000

    def script(conn: socket.socket) -> None:
        conn.recv(1000)
        data = ('{"jsonrpc":"2.0","id":1,"result":"' + big + '"}\n').encode()
        for i in range(0, len(data), 7777):
            conn.sendall(data[i:i + 7777])
            time.sleep(0.001)
    with raw_server(tmp_path / "s", script), Client(tmp_path / "s") as c:
        assert c.call("x") == big


def test_missing_socket_is_daemon_not_running(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "wizd.sock"
    with pytest.raises(DaemonNotRunning) as info:
        Client(path)
    msg = str(info.value)
    assert str(path) in msg and "wizd" in msg and "systemctl --user start wizd" in msg
    assert info.value.path == str(path)


def test_stale_socket_is_daemon_not_running(tmp_path: Path) -> None:
    path = tmp_path / "wizd.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))  # bound, never listening: ECONNREFUSED, as after a crash
    try:
        with pytest.raises(DaemonNotRunning, match="nobody listens"):
            Client(path)
    finally:
        s.close()


def test_calls_after_the_daemon_went_raise_connection_lost(fake: FakeWizd) -> None:
    fake.on("daemon.status", {})
    c = Client(fake.path)
    c.call("daemon.status")
    fake.stop()
    with pytest.raises(ConnectionLost):
        c.call("daemon.status")
        c.call("daemon.status")  # the first may still be written into the dead socket
    c.close()


def test_a_socket_path_too_long_for_sun_path_still_connects(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    path = deep / "wizd.sock"
    assert len(str(path)) > 108
    cwd = os.getcwd()
    os.chdir(deep)  # bind with a short relative name, like a daemon could
    try:
        server = FakeWizd(Path("wizd.sock")).start()
    finally:
        os.chdir(cwd)
    server.on("daemon.status", {"ok": 1})
    try:
        with Client(path) as c:
            assert c.call("daemon.status") == {"ok": 1}
    finally:
        server.stop()
        path.unlink(missing_ok=True)


def test_default_socket_path_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WIZ_SOCKET", "/x/y.sock")
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/5")
    assert default_socket_path() == "/x/y.sock"
    monkeypatch.delenv("WIZ_SOCKET")
    assert default_socket_path() == "/run/user/5/wiz/wizd.sock"
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert default_socket_path() == f"/tmp/wiz-{os.getuid()}/wizd.sock"


def test_client_uses_wiz_socket(fake: FakeWizd, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WIZ_SOCKET", str(fake.path))
    fake.on("user.me", {"name": "me"})
    with Client() as c:
        assert c.socket_path == str(fake.path)
        assert c.call("user.me") == {"name": "me"}
