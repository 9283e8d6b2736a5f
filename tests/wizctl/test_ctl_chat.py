"""``wizctl chat`` driven by piped input against the scripted socket server."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from tests.wizctl.fakewizd import FakeWizd, Peer
from wizctl import chat
from wizctl.client import Client

ME = {"id": "u-me", "name": "me"}
ALICE = {"id": "a-1", "user_id": "u-alice", "name": "alice"}



def script(fake: FakeWizd, dms: list[dict[str, Any]]) -> None:
    seq = iter(range(100, 1000))
    subs: dict[str, Peer] = {}
    fake.on("user.me", ME)
    fake.on("user.list", {"users": [ME, {"id": "u-alice", "name": "alice"}]})
    fake.on("agent.list", {"agents": [ALICE]})
    fake.on("dm.list", {"conversations": dms})
    fake.on("dm.create", {"id": "dm-new", "type": "dm", "name": None,
                          "participants": ["u-me", "u-alice"]})
    fake.on("message.list", {"messages": []})

    def subscribe(params: dict[str, Any], peer: Peer) -> dict[str, Any]:
        subs["s"] = peer
        return {"subscription": "s"}

    def send(params: dict[str, Any], peer: Peer) -> dict[str, Any]:
        sent = {"id": f"m{next(seq)}", "seq": next(seq), "author_id": "u-me",
                "conversation_id": params["conversation_id"], "content": params["content"]}
        reply = {"id": f"m{next(seq)}", "seq": next(seq), "author_id": "u-alice",
                 "conversation_id": params["conversation_id"], "reply_to": sent["id"],
                 "content": f"re: {params['content']}", "kind": "text", "created_at": 0}
        for m in (sent, reply):
            subs["s"].notify("message.created", subscription="s", message=m)
        return {"message": sent, "jobs": ["j"]}
    fake.on("events.subscribe", fn=subscribe)
    fake.on("message.send", fn=send)


def test_chat_creates_the_dm_and_prints_each_reply(fake: FakeWizd) -> None:
    script(fake, dms=[])
    out, err = io.StringIO(), io.StringIO()
    code = chat.run(lambda: Client(fake.path), "alice", stdin=io.StringIO("one\n\ntwo\n"),
                    out=out, err=err)
    assert code == 0 and err.getvalue() == ""
    assert [line.split(" ", 1)[1] for line in out.getvalue().splitlines()] == [
        "alice: re: one", "alice: re: two"]
    assert fake.calls("dm.create") == [{"participants": ["a-1"]}]
    assert [p["content"] for p in fake.calls("message.send")] == ["one", "two"]
    assert fake.calls("events.subscribe")[0]["conversation_id"] == "dm-new"


def test_chat_reuses_the_one_to_one_dm(fake: FakeWizd) -> None:
    script(fake, dms=[
        {"id": "dm-group", "type": "dm", "participants": ["u-me", "u-alice", "u-bob"]},
        {"id": "dm-1", "type": "dm", "participants": ["u-me", "u-alice"], "created_at": 1},
    ])
    chat.run(lambda: Client(fake.path), "alice", stdin=io.StringIO("hi\n"), out=io.StringIO())
    assert fake.calls("dm.create") == []
    assert fake.calls("message.send")[0]["conversation_id"] == "dm-1"


def test_history_file_follows_xdg_state_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", "/state")
    assert chat.history_file() == Path("/state/wiz/chat_history")
    monkeypatch.delenv("XDG_STATE_HOME")
    assert chat.history_file() == Path.home() / ".local/state/wiz/chat_history"
