"""The scripted stand-in for wizd that the other wizctl tests rely on."""

from __future__ import annotations

import json
import socket

from tests.wizctl.fakewizd import Fail, FakeWizd


def ask(fake: FakeWizd, line: bytes) -> dict:
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(fake.path))
        s.sendall(line)
        with s.makefile("rb") as f:
            return json.loads(f.readline())


def test_the_fake_answers_and_records(fake: FakeWizd) -> None:
    fake.on("daemon.status", {"version": "x"})
    reply = ask(fake, b'{"jsonrpc":"2.0","id":7,"method":"daemon.status"}\n')
    assert reply == {"jsonrpc": "2.0", "id": 7, "result": {"version": "x"}}
    assert fake.requests == [("daemon.status", {})]


def test_the_fake_answers_errors_and_unknown_methods(fake: FakeWizd) -> None:
    def refuse(params: dict, peer: object) -> None:
        raise Fail(-32002, "taken", {"name": params["name"]})
    fake.on("agent.create", fn=refuse)
    reply = ask(fake, b'{"jsonrpc":"2.0","id":1,"method":"agent.create","params":{"name":"a"}}\n')
    assert reply["error"] == {"code": -32002, "message": "taken", "data": {"name": "a"}}
    reply = ask(fake, b'{"jsonrpc":"2.0","id":2,"method":"nope"}\n')
    assert reply["error"]["code"] == -32601


def test_the_fake_restarts_on_the_same_path(fake: FakeWizd) -> None:
    fake.on("daemon.status", {"version": "x"})
    fake.stop()
    assert not fake.path.exists()
    fake.start()
    assert ask(fake, b'{"jsonrpc":"2.0","id":1,"method":"daemon.status"}\n')["result"] == {
        "version": "x"}
