"""``wizctl usage`` and ``wizctl log --usage`` against the fake daemon."""

from __future__ import annotations

import json

import pytest

from tests.wizctl.fakewizd import FakeWizd
from tests.wizctl.test_ctl_main import ALICE, dm_with_alice, run
from tests.wizctl.test_ctl_main import wiz as wiz  # noqa: F401  (the fixture)

Capsys = pytest.CaptureFixture[str]
ROW = {"agent_id": ALICE["id"], "agent_name": "alice", "model": "gpt-4o", "replies": 3,
       "unreported": 0, "prompt_tokens": 120, "completion_tokens": 45}


def test_usage_sends_the_agent_id_and_since_and_shows_a_table(
    wiz: FakeWizd, capsys: Capsys,  # noqa: F811
) -> None:
    wiz.on("usage.summary", {"usage": [ROW, {**ROW, "model": "gpt-4o-mini", "replies": 1,
                                             "prompt_tokens": 10, "completion_tokens": 5}]})
    code, out, _ = run(capsys, "usage", "--agent", "alice", "--since", "2d")
    assert code == 0
    [sent] = wiz.calls("usage.summary")
    assert sent["agent"] == ALICE["id"] and isinstance(sent["since"], int)
    lines = out.splitlines()
    assert lines[0].lower().split() == ["agent", "model", "replies", "prompt", "completion",
                                        "unreported"]
    assert lines[1].split() == ["alice", "gpt-4o", "3", "120", "45"]
    assert lines[-1].split() == ["total", "4", "130", "50"]
    code, out, _ = run(capsys, "usage", "--json")
    assert code == 0 and json.loads(out)["usage"][0] == ROW


def test_usage_since_must_make_sense(wiz: FakeWizd, capsys: Capsys) -> None:  # noqa: F811
    code, _, err = run(capsys, "usage", "--since", "lately")
    assert code == 2 and "--since" in err


def test_log_usage_shows_each_replys_tokens(wiz: FakeWizd, capsys: Capsys) -> None:  # noqa: F811
    dm_with_alice(wiz)
    msgs = [{"id": "m1", "seq": 1, "author_id": "u-me", "content": "hi", "kind": "text",
             "created_at": 0},
            {"id": "m2", "seq": 2, "author_id": "u-alice", "content": "hello", "kind": "text",
             "created_at": 0}]
    wiz.on("message.list", {"messages": msgs})
    tokens = {"model": "gpt-4o", "prompt_tokens": 12, "completion_tokens": 3}
    wiz.on("usage.messages", {"usage": {"m2": tokens}})
    code, out, _ = run(capsys, "log", "alice", "--usage")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 3 and lines[0].endswith("me: hi") and lines[1].endswith("alice: hello")
    assert lines[2] == "  [gpt-4o: 12 prompt + 3 completion tokens]"
    assert wiz.calls("usage.messages") == [{"message_ids": ["m1", "m2"]}]
    code, out, _ = run(capsys, "log", "alice", "--usage", "--json")
    got = json.loads(out)["messages"]
    assert [m["usage"] for m in got] == [None, tokens]
