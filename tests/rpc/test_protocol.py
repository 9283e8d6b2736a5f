"""The wire protocol against a real wizd: every error code, batches, oversized
lines and clients that vanish mid-request."""

from __future__ import annotations

import json
import socket
import threading
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
    watcher = daemon.connect()
    watcher.call("events.subscribe", conversation_id=conversation)
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
    # Each stored message is announced: wait for as many as whole requests were
    # sent (the connection's read timeout bounds the wait), then check that no
    # half request was stored either.
    for _ in expected:
        watcher.notification("message.created")
    stored = [m["content"] for m in c.call("message.list", conversation_id=conversation,
                                           limit=100)["messages"]]
    assert sorted(stored) == sorted(expected)  # every whole request ran once; no half one
    assert daemon.proc is not None and daemon.proc.poll() is None
    assert c.call("daemon.status")["pid"] == daemon.proc.pid
    assert "Traceback" not in daemon.log_text()
    watcher.close()


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


@pytest.mark.parametrize("line", [
    b'{"jsonrpc":"2.0","id":1e999,"method":"user.me"}',
    b'{"jsonrpc":"2.0","id":NaN,"method":"user.me"}',
    b'{"jsonrpc":"2.0","id":1,"method":"job.list","params":{"limit":Infinity}}',
    b'{"jsonrpc":"2.0","id":1,"method":"agent.list","params":{"x":-Infinity}}',
    b'[{"jsonrpc":"2.0","id":1,"method":"user.me"},{"jsonrpc":"2.0","id":2e400,"method":"x"}]',
])
def test_non_finite_numbers_are_a_parse_error(c: Conn, line: bytes) -> None:
    c.send_raw(line + b"\n")
    answer = c.file.readline()
    # Strictly JSON (no NaN or Infinity anywhere), and a parse error.
    resp = json.loads(answer, parse_constant=lambda name: pytest.fail(f"{name} in {answer!r}"))
    assert resp["error"]["code"] == -32700 and resp["id"] is None
    assert c.call("user.me")["type"] == "human"  # still serving


def test_a_batch_over_max_batch_is_refused_whole(daemon: Wizd, c: Conn) -> None:
    limit = c.call("daemon.status")["config"]["max_batch"]
    name = unique("proj")
    over = [{"jsonrpc": "2.0", "id": i, "method": "user.me"} for i in range(limit)]
    over.append({"jsonrpc": "2.0", "id": "p", "method": "project.create",
                 "params": {"name": name}})
    c.send(over)
    resp = c.read()
    assert resp["error"]["code"] == -32600 and resp["id"] is None
    assert resp["error"]["data"] == f"batch of {limit + 1} calls; at most {limit}"
    # Not one call of it ran.
    assert name not in [p["name"] for p in c.call("project.list")["projects"]]
    c.send(over[1:])  # at the limit: every call answered
    assert sorted(str(r["id"]) for r in c.read()) == sorted(
        [str(i) for i in range(1, limit)] + ["p"])


@pytest.mark.parametrize(("method", "params", "field"), [
    ("message.list", {"after_seq": 2**63}, "after_seq"),
    ("message.list", {"limit": 2**64}, "limit"),
    ("message.list", {"after_seq": True}, "after_seq"),
    ("message.list", {"limit": 10.0}, "limit"),
    ("events.subscribe", {"after_seq": 2**63}, "after_seq"),
    ("events.subscribe", {"after_seq": False}, "after_seq"),
    ("job.list", {"limit": True}, "limit"),
    ("job.list", {"limit": 1e20}, "limit"),
    ("job.list", {"limit": "5"}, "limit"),
    ("agent.create", {"max_tokens": 1e20}, "max_tokens"),
    ("agent.create", {"max_tokens": 2**63}, "max_tokens"),
    ("agent.create", {"max_tokens": True}, "max_tokens"),
    ("agent.create", {"temperature": True}, "temperature"),
    ("agent.create", {"temperature": "0.5"}, "temperature"),
    ("agent.update", {"max_tokens": True}, "max_tokens"),
    ("agent.update", {"max_tokens": -(2**63) - 1}, "max_tokens"),
    ("agent.update", {"temperature": False}, "temperature"),
    ("dm.list", {"include_archived": 1}, "include_archived"),
])
def test_numbers_are_strict_and_storable(daemon: Wizd, c: Conn, method: str, params: dict,
                                         field: str) -> None:
    if method == "agent.create":
        params = {"name": unique("agent"), "role": "r", "backstory": "", "goal": "", **params}
    elif method == "agent.update":
        agent = c.call("agent.create", name=unique("agent"), role="r", backstory="", goal="")
        params = {"id": agent["id"], **params}
    elif method == "message.list" or (method == "events.subscribe" and field == "after_seq"):
        params = {"conversation_id": channel(c), **params}
    error = c.request(method, **params)["error"]
    assert (error["code"], error["data"]["field"]) == (-32602, field)
    assert "Traceback" not in daemon.log_text()


def test_an_integer_is_a_fine_temperature(c: Conn) -> None:
    agent = c.call("agent.create", name=unique("agent"), role="r", backstory="", goal="",
                   temperature=1, max_tokens=2**31)
    assert (agent["temperature"], agent["max_tokens"]) == (1.0, 2**31)
    assert c.call("agent.update", id=agent["id"], max_tokens=7)["max_tokens"] == 7
