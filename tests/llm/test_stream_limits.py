"""How a streamed reply may end: cut off at ``max_reply_bytes``, or broken off
without a finish (a retryable failure), against the real scripted HTTP server."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.openai_server import Reply, openai_server
from wizd.errors import ProviderProtocolError
from wizd.llm import ChatMessage, ChatRequest, ProviderConfig, complete
from wizd.llm.base import cut_utf8

CAP = 2048


def capped(cap: int | None = CAP) -> ChatRequest:
    return ChatRequest(model="gpt-test", messages=(ChatMessage("user", "Hello there"),),
                       max_tokens=100, max_reply_bytes=cap)


def provider_at(base_url: str) -> ProviderConfig:
    return ProviderConfig("prov-1", "local", "openai", base_url, "gpt-test", "sk-test")


# -- the reply cap ------------------------------------------------------------


@pytest.mark.anyio
async def test_a_huge_stream_is_cut_at_the_cap_and_abandoned(deltas: Any) -> None:
    # 20 MB against max_tokens 100: the client keeps 2 KiB and hangs up.
    async with openai_server() as srv:
        srv.enqueue(Reply(chunks=["x" * 999 + " "], repeat=20_000))
        result = await complete(provider_at(srv.base_url), capped(), deltas)
        await srv.wait_idle()
        assert srv.hangups == 1  # the server could not send it all: nobody was reading

    assert result.truncated
    assert result.content == ("x" * 999 + " ") * 2 + "x" * (CAP - 2000)
    assert "".join(deltas.pieces) == result.content  # deltas never pass the cap either


@pytest.mark.anyio
async def test_the_cut_falls_on_a_character_boundary(deltas: Any) -> None:
    async with openai_server() as srv:
        srv.enqueue(Reply(chunks=["€🙂é" * 50], repeat=100))
        # 9 bytes a round: 113 rounds, then "€🙂" make 1024; "é" would end at 1026.
        result = await complete(provider_at(srv.base_url), capped(1025), deltas)

    assert result.truncated
    assert len(result.content.encode()) == 1024
    assert ("€🙂é" * 50 * 100).startswith(result.content)
    assert "".join(deltas.pieces) == result.content


@pytest.mark.anyio
async def test_a_reply_of_exactly_the_cap_is_whole(deltas: Any) -> None:
    async with openai_server() as srv:
        srv.enqueue(Reply(chunks=["y" * 1000, "y" * 1048]))
        result = await complete(provider_at(srv.base_url), capped(), deltas)
    assert not result.truncated
    assert result.content == "y" * CAP
    assert result.finish_reason == "stop"


@pytest.mark.anyio
async def test_without_a_cap_the_whole_reply_is_read(deltas: Any) -> None:
    async with openai_server() as srv:
        srv.enqueue(Reply(chunks=["z" * 1000], repeat=5))
        result = await complete(provider_at(srv.base_url), capped(None), deltas)
        await srv.wait_idle()
        assert srv.hangups == 0
    assert not result.truncated
    assert result.content == "z" * 5000


@pytest.mark.parametrize(
    ("text", "cap", "expected"),
    [
        ("hello", 10, "hello"),
        ("hello", 5, "hello"),
        ("hello", 3, "hel"),
        ("aé", 2, "a"),  # é is two bytes
        ("a€", 3, "a"),  # € is three
        ("a🙂", 4, "a"),  # 🙂 is four
        ("a🙂b", 5, "a🙂"),
        ("é", 0, ""),
    ],
)
def test_cut_utf8(text: str, cap: int, expected: str) -> None:
    assert cut_utf8(text, cap) == expected


# -- a stream that ends before the reply is finished ------------------------------


@pytest.mark.anyio
async def test_a_stream_with_content_but_no_finish_is_a_retryable_error(deltas: Any) -> None:
    # The body ends cleanly, but neither a finish_reason nor [DONE] came:
    # what arrived may be any part of the reply, so it is not one.
    async with openai_server() as srv:
        srv.enqueue(Reply(chunks=["partial", " answer"], finish_reason=None, done=False))
        with pytest.raises(ProviderProtocolError) as info:
            await complete(provider_at(srv.base_url), capped(), deltas)
    assert info.value.retryable
    assert "the stream ended before the reply was finished" in str(info.value)
    assert deltas.pieces == ["partial", " answer"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("reply", "finish_reason"),
    [
        pytest.param(Reply(text="all here", done=False), "stop", id="finish-without-done"),
        pytest.param(Reply(text="all here", finish_reason=None), None, id="done-without-finish"),
    ],
)
async def test_either_end_marker_makes_a_reply_whole(
    reply: Reply, finish_reason: str | None, deltas: Any
) -> None:
    async with openai_server() as srv:
        srv.enqueue(reply)
        result = await complete(provider_at(srv.base_url), capped(), deltas)
    assert result.content == "all here"
    assert result.finish_reason == finish_reason
    assert not result.truncated
