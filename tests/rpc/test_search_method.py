"""message.search over a real socket to a real wizd."""

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
    with shared_wizd(tmp_path_factory.mktemp("search"), request.param) as w:
        yield w


@pytest.fixture
def c(daemon: Wizd) -> Iterator[Conn]:
    with daemon.connect() as conn:
        yield conn


def test_search_finds_a_sent_message_by_its_words(c: Conn) -> None:
    name = unique("agent")
    c.call("agent.create", name=name, role="r", backstory="b", goal="g")
    dm = c.call("dm.create", participants=[name])
    c.call("agent.deactivate", id=name)  # no reply: the hits stay as they are
    word = unique("zebra").replace("-", "")
    sent = c.call("message.send", conversation_id=dm["id"], content=f'a "{word} crossing')
    found = c.call("message.search", query=f'"{word}')["results"]
    assert [h["message"]["id"] for h in found] == [sent["message"]["id"]]
    assert found[0]["conversation"] == {"id": dm["id"], "type": "dm", "name": name}
    assert f"[{word}]" in found[0]["snippet"]
    assert c.call("message.search", query=word, agent=name)["results"] == found
    assert c.call("message.search", query=word, conversation_id=dm["id"])["results"] == found


def test_a_malformed_raw_query_is_invalid_params(c: Conn) -> None:
    with pytest.raises(RpcFailure) as info:
        c.call("message.search", query='"unbalanced', raw=True)
    assert info.value.code == -32602
    assert "FTS5" in info.value.message
    with pytest.raises(RpcFailure) as info:
        c.call("message.search", query="x", limit=1000)
    assert info.value.code == -32602
