"""Servers that do not stream: a plain ``chat.completion`` JSON body answers a
streaming request, or the provider is set not to ask for a stream at all.
Against the real scripted HTTP server."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from tests.support.openai_server import Reply, openai_server
from wizd.errors import ProviderProtocolError
from wizd.llm import ChatMessage, ChatRequest, ProviderConfig, complete

REQUEST = ChatRequest(model="gpt-test", messages=(ChatMessage("user", "Hello there"),),
                      max_reply_bytes=2048)


def provider_at(base_url: str, *, stream: bool = True) -> ProviderConfig:
    return ProviderConfig("prov-1", "local", "openai", base_url, "gpt-test", "sk-test",
                          stream=stream)


@pytest.mark.anyio
async def test_a_json_answer_to_a_streaming_request_is_a_reply(deltas: Any) -> None:
    async with openai_server() as srv:
        srv.enqueue(Reply(text="Hello from a server that never streams", plain=True))
        result = await complete(provider_at(srv.base_url), REQUEST, deltas)
        assert srv.requests[0].stream is True

    assert result.content == "Hello from a server that never streams"
    assert deltas.pieces == [result.content]  # one delta with all of it
    assert result.finish_reason == "stop"
    assert not result.truncated
    assert result.usage == {"prompt_tokens": 2, "completion_tokens": 7, "total_tokens": 9}


@pytest.mark.anyio
async def test_a_provider_set_not_to_stream_asks_for_no_stream(deltas: Any) -> None:
    async with openai_server() as srv:
        srv.enqueue(Reply(text="plain and simple"))
        result = await complete(provider_at(srv.base_url, stream=False), REQUEST, deltas)
        sent = srv.requests[0]

    assert sent.stream is False
    assert "stream_options" not in sent.body
    assert result.content == "plain and simple"
    assert deltas.pieces == ["plain and simple"]


@pytest.mark.anyio
async def test_a_json_answer_past_the_cap_is_cut_and_marked(deltas: Any) -> None:
    async with openai_server() as srv:
        srv.enqueue(Reply(chunks=["€" * 100], repeat=10, plain=True))  # 3000 bytes
        request = dataclasses.replace(REQUEST, max_reply_bytes=1000)
        result = await complete(provider_at(srv.base_url), request, deltas)

    assert result.truncated
    assert result.content == "€" * 333  # 999 bytes: the next one would not fit whole
    assert deltas.pieces == [result.content]


@pytest.mark.anyio
async def test_a_json_body_too_large_for_any_reply_under_the_cap_is_refused(
    deltas: Any,
) -> None:
    # Far more than a reply of max_reply_bytes could take, even fully escaped:
    # not read into memory, and not worth a retry either... it is a protocol error.
    async with openai_server() as srv:
        srv.enqueue(Reply(body={"choices": [], "junk": "x" * 200_000}))
        request = dataclasses.replace(REQUEST, max_reply_bytes=1000)
        with pytest.raises(ProviderProtocolError, match="larger than"):
            await complete(provider_at(srv.base_url), request, deltas)
    assert deltas.pieces == []


@pytest.mark.parametrize("body", [
    {"choices": "nope"},
    {"object": "chat.completion"},
    {"choices": [{"index": 0, "message": "hi"}]},
    [1, 2],
])
@pytest.mark.anyio
async def test_a_json_body_without_a_reply_is_a_protocol_error(deltas: Any, body: Any) -> None:
    async with openai_server() as srv:
        srv.enqueue(Reply(body=body))
        with pytest.raises(ProviderProtocolError):
            await complete(provider_at(srv.base_url), REQUEST, deltas)
    assert deltas.pieces == []


@pytest.mark.anyio
async def test_an_empty_json_reply_with_a_finish_reason_is_a_reply(deltas: Any) -> None:
    async with openai_server() as srv:
        srv.enqueue(Reply(text="", plain=True, finish_reason="length"))
        result = await complete(provider_at(srv.base_url), REQUEST, deltas)
    assert result.content == ""
    assert result.finish_reason == "length"
    assert deltas.pieces == []
