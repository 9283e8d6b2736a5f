"""The wire protocol against a real wizd: every error code, batches, oversized
lines and clients that vanish mid-request."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.rpc.shared import shared_wizd, unique
from tests.support.daemon import Conn, Wizd


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wizd]:
    with shared_wizd(tmp_path_factory.mktemp("protocol")) as w:
        yield w


@pytest.fixture
def c(daemon: Wizd) -> Iterator[Conn]:
    with daemon.connect() as conn:
        yield conn


def raw(c: Conn, line: bytes) -> dict:
    c.send_raw(line + b"\n")
    return c.read()  # type: ignore[no-any-return]


def channel(c: Conn) -> str:
    project = c.call("project.create", name=unique("proj"))
    return str(c.call("channel.create", project_id=project["id"], name="general")["id"])


def test_parse_error_then_the_connection_still_serves(c: Conn) -> None:
    resp = raw(c, b'{"jsonrpc": "2.0", "id": 1, "method": ')
    assert resp["error"]["code"] == -32700 and resp["id"] is None
    assert raw(c, b'\xff\xfe not utf-8')["error"]["code"] == -32700
    assert c.call("user.me")["type"] == "human"


@pytest.mark.parametrize("line", [
    b'{"jsonrpc": "2.0", "id": 1}',  # no method
    b'{"jsonrpc": "1.0", "id": 1, "method": "user.me"}',
    b'{"jsonrpc": "2.0", "id": 1, "method": 42}',
    b'[]',  # an empty batch
    b'"just a string"',
])
def test_invalid_request(c: Conn, line: bytes) -> None:
    resp = raw(c, line)
    assert resp["error"]["code"] == -32600
    assert c.call("user.me")  # still serving


def test_method_not_found(c: Conn) -> None:
    resp = c.request("agent.explode")
    assert resp["error"]["code"] == -32601 and resp["id"] == 1


@pytest.mark.parametrize(("method", "params", "field"), [
    ("agent.create", {"role": "r", "backstory": "", "goal": ""}, "name"),  # missing
    ("agent.get", {"nme": "x"}, "nme"),  # unknown
    ("message.list", {"conversation_id": "x", "limit": "many"}, "limit"),  # wrong type
    ("dm.create", {"participants": "not-a-list"}, "participants"),
    ("provider.create", {"name": "p", "type": "bogus", "default_model": "m"}, "type"),
])
def test_invalid_params_name_the_field(c: Conn, method: str, params: dict, field: str) -> None:
    error = c.request(method, **params)["error"]
    assert error["code"] == -32602
    assert error["data"]["field"] == field


def test_positional_params_are_refused(c: Conn) -> None:
    c.send({"jsonrpc": "2.0", "id": 7, "method": "agent.get", "params": ["x"]})
    assert c.response(7)["error"]["code"] == -32602


def test_not_found_and_conflict(c: Conn) -> None:
    err = c.request("agent.get", id="no-such-agent")["error"]
    assert err["code"] == -32001 and err["data"] == {"kind": "agent", "ref": "no-such-agent"}
    name = unique("proj")
    c.call("project.create", name=name)
    assert c.request("project.create", name=name)["error"]["code"] == -32002


def test_batch_mixing_requests_and_notifications(c: Conn) -> None:
    via_notification = unique("proj")
    batch = [
        {"jsonrpc": "2.0", "id": "a", "method": "user.me"},
        {"jsonrpc": "2.0", "method": "project.create", "params": {"name": via_notification}},
        {"jsonrpc": "2.0", "id": "b", "method": "agent.get", "params": {"id": "nobody"}},
        {"jsonrpc": "2.0", "method": "no.such.method"},
        {"jsonrpc": "2.0", "id": "c", "method": "no.such.method"},
    ]
    c.send(batch)
    responses = c.read()
    assert isinstance(responses, list)
    by_id = {r["id"]: r for r in responses}
    assert set(by_id) == {"a", "b", "c"}  # notifications get no response, errors neither
    assert by_id["a"]["result"]["type"] == "human"
    assert by_id["b"]["error"]["code"] == -32001
    assert by_id["c"]["error"]["code"] == -32601
    # The notification ran.
    assert via_notification in [p["name"] for p in c.call("project.list")["projects"]]


def test_a_batch_of_notifications_gets_no_answer(c: Conn) -> None:
    c.send([{"jsonrpc": "2.0", "method": "user.me"}, {"jsonrpc": "2.0", "method": "user.list"}])
    c.send({"jsonrpc": "2.0", "id": 99, "method": "user.me"})
    assert c.read()["id"] == 99  # the very next line answers the request


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    try:
        sock.sendall(data)
    except OSError:
        pass  # the daemon hung up mid-way: that is what is tested


def test_oversized_line_is_refused_and_others_are_served(daemon: Wizd, c: Conn) -> None:
    huge = (b'{"jsonrpc":"2.0","id":1,"method":"user.me","params":{"pad":"'
            + b"x" * (3 * 1024 * 1024) + b'"}}\n')
    with daemon.connect() as big:
        sender = threading.Thread(target=_send_quietly, args=(big.sock, huge))
        sender.start()
        try:
            resp = big.read()
            assert resp["error"]["code"] == -32600 and resp["id"] is None
            with pytest.raises((EOFError, ConnectionResetError)):
                big.read()  # the connection is closed
        finally:
            sender.join(10)
    assert c.call("user.me")["type"] == "human"  # a connection opened before
    with daemon.connect() as after:
        assert after.call("user.me")["type"] == "human"


def test_fifty_clients_vanishing_mid_request(daemon: Wizd, c: Conn) -> None:
    conversation = channel(c)
    expected = []
    for i in range(50):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(daemon.socket))
        request = json.dumps({"jsonrpc": "2.0", "id": i, "method": "message.send", "params": {
            "conversation_id": conversation, "content": f"vanishing {i}"}}).encode()
        if i % 3 == 0:
            sock.sendall(request[: len(request) // 2])  # half a request, then gone
        elif i % 3 == 1:
            sock.sendall(request + b"\n")  # a whole request, gone before the answer
            expected.append(f"vanishing {i}")
        else:
            sock.sendall(request + b"\n" + request[:10])  # one whole, one half
            expected.append(f"vanishing {i}")
        sock.close()
    deadline = time.monotonic() + 10
    while True:
        stored = [m["content"] for m in c.call("message.list", conversation_id=conversation,
                                               limit=100)["messages"]]
        if len(stored) >= len(expected) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert sorted(stored) == sorted(expected)  # every whole request ran once; no half one
    assert daemon.proc is not None and daemon.proc.poll() is None
    assert c.call("daemon.status")["pid"] == daemon.proc.pid
    assert "Traceback" not in daemon.log_text()


def test_pipelined_calls_each_get_one_whole_answer(c: Conn) -> None:
    """300 calls in one write, no waiting: answers written together (as they come
    ready) are still whole lines, one per call, and every message is stored
    once, with the seq its answer named."""
    conversation = channel(c)
    lines = b"".join(json.dumps({
        "jsonrpc": "2.0", "id": i, "method": "message.send",
        "params": {"conversation_id": conversation, "content": f"m{i}"}}).encode() + b"\n"
        for i in range(300))
    c.send_raw(lines)
    answers = [c.read() for _ in range(300)]
    assert sorted(a["id"] for a in answers) == list(range(300))
    assert all("result" in a for a in answers)
    seqs = {a["id"]: a["result"]["message"]["seq"] for a in answers}
    assert len(set(seqs.values())) == 300
    stored = c.call("message.list", conversation_id=conversation, limit=1000)["messages"]
    assert sorted(m["content"] for m in stored) == sorted(f"m{i}" for i in range(300))
    assert {m["content"]: m["seq"] for m in stored} == {f"m{i}": s for i, s in seqs.items()}
