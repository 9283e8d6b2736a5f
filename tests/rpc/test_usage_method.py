"""usage.summary and usage.messages over a real socket to a real wizd (the
offline provider counts words as tokens)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.rpc.shared import shared_wizd, unique
from tests.support.daemon import Conn, RpcFailure, Wizd
from tests.support.engines import ENGINES


@pytest.fixture(scope="module", params=ENGINES)
def daemon(tmp_path_factory: pytest.TempPathFactory,
           request: pytest.FixtureRequest) -> Iterator[Wizd]:
    """One wizd per engine for the module's tests."""
    with shared_wizd(tmp_path_factory.mktemp("usage"), request.param) as w:
        yield w


@pytest.fixture
def c(daemon: Wizd) -> Iterator[Conn]:
    with daemon.connect() as conn:
        yield conn


def test_a_reply_counts_in_the_summary_and_by_message(c: Conn) -> None:
    name = unique("agent")
    made = c.call("agent.create", name=name, role="r", backstory="b", goal="g")
    dm = c.call("dm.create", participants=[name])
    c.call("events.subscribe", conversation_id=dm["id"])
    sent = c.call("message.send", conversation_id=dm["id"], content="three small words")
    while True:
        reply = c.notification("message.created")["params"]["message"]
        if reply["reply_to"] == sent["message"]["id"]:
            break

    [row] = c.call("usage.summary", agent=name)["usage"]
    words = len(reply["content"].split())
    assert row["agent_id"] == made["id"] and row["model"] == "offline-demo"
    assert (row["replies"], row["unreported"], row["completion_tokens"]) == (1, 0, words)
    assert row["prompt_tokens"] > 3
    assert c.call("usage.summary", since=reply["created_at"] + 10**9)["usage"] == []
    per = c.call("usage.messages", message_ids=[reply["id"], sent["message"]["id"]])["usage"]
    assert per == {reply["id"]: {"model": "offline-demo", "prompt_tokens": row["prompt_tokens"],
                                 "completion_tokens": words}}


def test_bad_params(c: Conn) -> None:
    for method, params in [("usage.summary", {"agent": "nobody-at-all"}),
                           ("usage.summary", {"since": -1}),
                           ("usage.messages", {"message_ids": ["x"] * 1001})]:
        with pytest.raises(RpcFailure) as info:
            c.call(method, **params)
        assert info.value.code in (-32001, -32602), method
