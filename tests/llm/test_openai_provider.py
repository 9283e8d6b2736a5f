"""The "openai" provider against a real scripted HTTP server, with the real openai client."""

from __future__ import annotations

import socket
import traceback
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import anyio
import pytest
import trio

from tests.support.openai_server import OpenAIServer, Reply, openai_server
from wizd.errors import (
    ProviderAuthError,
    ProviderBadRequest,
    ProviderError,
    ProviderProtocolError,
    ProviderRateLimited,
    ProviderTimeout,
)
from wizd.llm import ChatMessage, ChatRequest, ProviderConfig, complete

KEY = "sk-proj-Zx81TESTKEYabcdefghijklmnopqrstuvwxyz0123456789"

REQUEST = ChatRequest(
    model="gpt-test",
    messages=(ChatMessage("system", "You are Ada."), ChatMessage("user", "Hello there")),
    temperature=0.25,
    max_tokens=64,
)


def provider_for(srv: OpenAIServer, api_key: str | None = KEY) -> ProviderConfig:
    return ProviderConfig(
        id="prov-1",
        name="local",
        type="openai",
        base_url=srv.base_url,
        default_model="gpt-test",
        api_key=api_key,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def fail_with(srv: OpenAIServer, reply: Reply, deltas: Any) -> ProviderError:
    srv.enqueue(reply)
    with pytest.raises(ProviderError) as info:
        await complete(provider_for(srv), REQUEST, deltas)
    return info.value


def assert_no_key(exc: BaseException) -> None:
    text = "\n".join(
        [str(exc), repr(exc), repr(getattr(exc, "data", None)), *traceback.format_exception(exc)]
    )
    assert KEY not in text
    assert KEY[:12] not in text
    assert "sk-" not in text


# -- success ------------------------------------------------------------------


@pytest.mark.anyio
async def test_streams_pieces_in_order_and_returns_the_whole(deltas: Any) -> None:
    async with openai_server() as srv:
        srv.enqueue(Reply(chunks=["Hel", "lo", " world", "", "!"], model="gpt-test-0613"))
        result = await complete(provider_for(srv), REQUEST, deltas)

    assert deltas.pieces == ["Hel", "lo", " world", "!"]  # empty pieces are not delivered
    assert result.content == "Hello world!"
    assert result.model == "gpt-test-0613"  # as the server named it
    assert result.finish_reason == "stop"
    assert result.usage == {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10}


@pytest.mark.anyio
async def test_the_server_receives_the_request_as_given(deltas: Any) -> None:
    async with openai_server() as srv:
        await complete(provider_for(srv), REQUEST, deltas)
        (request,) = srv.requests

    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["authorization"] == f"Bearer {KEY}"
    assert request.headers["x-stainless-retry-count"] == "0"
    assert request.body == {
        "model": "gpt-test",
        "messages": [
            {"role": "system", "content": "You are Ada."},
            {"role": "user", "content": "Hello there"},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.25,
        "max_tokens": 64,
    }


@pytest.mark.anyio
async def test_optional_parameters_are_left_out_and_a_missing_key_is_a_placeholder(
    deltas: Any,
) -> None:
    request = ChatRequest(model="gpt-test", messages=(ChatMessage("user", "hi"),))
    async with openai_server() as srv:
        result = await complete(provider_for(srv, api_key=None), request, deltas)
        (received,) = srv.requests

    assert result.content == "echo: hi"
    assert "temperature" not in received.body
    assert "max_tokens" not in received.body
    assert received.headers["authorization"] == "Bearer not-needed"


@pytest.mark.anyio
async def test_a_stream_without_usage_or_done_still_completes(deltas: Any) -> None:
    async with openai_server() as srv:
        srv.enqueue(Reply(text="short answer", finish_reason="length", done=False))
        result = await complete(provider_for(srv), REQUEST, deltas)
    assert result.content == "short answer"
    assert result.finish_reason == "length"


# -- HTTP errors ----------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "message", "expected"),
    [
        (401, "Incorrect API key provided", ProviderAuthError),
        (403, "You are not allowed to use this model", ProviderAuthError),
        (400, "Invalid value for 'temperature'", ProviderBadRequest),
        (404, "The model `gpt-nope` does not exist", ProviderBadRequest),
        (422, "Unprocessable request", ProviderBadRequest),
        (408, "Request timed out", ProviderTimeout),
        (500, "The server had an error", ProviderError),
        (503, "The engine is overloaded", ProviderError),
    ],
)
async def test_http_errors_map_to_the_error_tree(
    status: int, message: str, expected: type[ProviderError], deltas: Any
) -> None:
    async with openai_server() as srv:
        exc = await fail_with(srv, Reply(status=status, error=message), deltas)
    assert type(exc) is expected
    assert exc.status == status
    assert exc.provider == "local"
    assert exc.retryable is (expected in (ProviderError, ProviderTimeout))
    assert str(exc) == f"provider local: {message} (HTTP {status})"
    assert exc.data == {"status": status, "message": message, "provider": "local"}
    assert deltas.pieces == []


@pytest.mark.anyio
async def test_an_error_body_that_is_not_json_is_quoted(deltas: Any) -> None:
    async with openai_server() as srv:
        exc = await fail_with(srv, Reply(status=502, body="<html>Bad gateway</html>"), deltas)
    assert type(exc) is ProviderError
    assert "<html>Bad gateway</html>" in str(exc)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": "0.5"}, 0.5),
        ({"retry-after-ms": "1500", "Retry-After": "9"}, 1.5),
        ({}, None),
    ],
)
async def test_429_carries_retry_after(
    headers: dict[str, str], expected: float | None, deltas: Any
) -> None:
    async with openai_server() as srv:
        exc = await fail_with(srv, Reply(status=429, headers=headers, error="Slow down"), deltas)
    assert type(exc) is ProviderRateLimited
    assert exc.retryable
    assert exc.status == 429
    assert exc.retry_after == expected
    assert "Slow down" in str(exc)


@pytest.mark.anyio
async def test_429_retry_after_as_an_http_date(deltas: Any) -> None:
    when = datetime.now(UTC) + timedelta(seconds=30)
    async with openai_server() as srv:
        reply = Reply(status=429, headers={"Retry-After": format_datetime(when, usegmt=True)})
        exc = await fail_with(srv, reply, deltas)
    assert type(exc) is ProviderRateLimited
    assert exc.retry_after is not None
    assert 27 <= exc.retry_after <= 30  # the date has whole seconds; the test took some time


# -- broken streams and connections ---------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    "reply",
    [
        pytest.param(Reply(malformed=True), id="invalid-json"),
        pytest.param(Reply(chunks=[], finish_reason=None), id="no-content-no-finish"),
        pytest.param(Reply(body='{"id": "x", "choices": []}'), id="json-instead-of-sse"),
        pytest.param(Reply(chunks=[], finish_reason=None, done=False), id="empty-body"),
    ],
)
async def test_unintelligible_streams_are_protocol_errors(reply: Reply, deltas: Any) -> None:
    async with openai_server() as srv:
        exc = await fail_with(srv, reply, deltas)
    assert type(exc) is ProviderProtocolError
    assert exc.retryable
    assert exc.provider == "local"


@pytest.mark.anyio
async def test_an_error_event_in_the_stream_is_a_provider_error(deltas: Any) -> None:
    body = b'data: {"error": {"message": "The server is overloaded", "type": "server_error"}}\n\n'
    reply = Reply(body=body, headers={"Content-Type": "text/event-stream"})
    async with openai_server() as srv:
        exc = await fail_with(srv, reply, deltas)
    assert type(exc) is ProviderError
    assert "The server is overloaded" in str(exc)


@pytest.mark.anyio
async def test_a_connection_cut_mid_stream_is_a_retryable_error(deltas: Any) -> None:
    async with openai_server() as srv:
        exc = await fail_with(srv, Reply(chunks=["partial", " answer"], cut=True), deltas)
    assert type(exc) is ProviderError
    assert exc.retryable
    assert "connection lost" in str(exc)
    assert deltas.pieces == ["partial", " answer"]


@pytest.mark.anyio
async def test_connection_refused_is_a_retryable_error(deltas: Any) -> None:
    port = free_port()
    provider = ProviderConfig("p", "gone", "openai", f"http://127.0.0.1:{port}/v1", "m", KEY)
    with pytest.raises(ProviderError) as info:
        await complete(provider, REQUEST, deltas)
    assert type(info.value) is ProviderError
    assert info.value.retryable
    assert f"cannot reach http://127.0.0.1:{port}/v1" in str(info.value)
    assert_no_key(info.value)


@pytest.mark.anyio
@pytest.mark.parametrize("base_url", ["localhost:8080", "ftp://example.com/v1", "http://[::1"])
async def test_an_unusable_base_url_is_a_bad_request(base_url: str, deltas: Any) -> None:
    provider = ProviderConfig("p", "typo", "openai", base_url, "m", KEY)
    with pytest.raises(ProviderBadRequest) as info:
        await complete(provider, REQUEST, deltas)
    assert not info.value.retryable
    assert f"unusable base URL {base_url!r}" in str(info.value)


# -- the key never leaks ----------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    "message",
    [
        f"Incorrect API key provided: {KEY}.",
        f"Incorrect API key provided: {KEY[:8]}***{KEY[-4:]}. See https://example.com",
        f"The header was 'Bearer {KEY}'",
    ],
)
async def test_the_key_never_appears_in_errors(message: str, deltas: Any) -> None:
    async with openai_server() as srv:
        exc = await fail_with(srv, Reply(status=401, error=message), deltas)
    assert type(exc) is ProviderAuthError
    assert "Incorrect API key" in str(exc) or "header was" in str(exc)
    assert_no_key(exc)
    # Not even in the chain: the SDK exception holds the request and its headers.
    assert exc.__cause__ is None and exc.__suppress_context__


def test_the_key_is_not_in_the_repr_of_the_config() -> None:
    provider = ProviderConfig("p", "local", "openai", None, "gpt-test", api_key=KEY)
    assert KEY not in repr(provider)
    assert KEY not in str(provider)


# -- time limits and cancellation -------------------------------------------------


@pytest.mark.trio
async def test_a_hanging_server_is_cut_off_by_the_callers_deadline(
    autojump_clock: trio.testing.MockClock, deltas: Any
) -> None:
    async with openai_server() as srv:
        srv.enqueue(Reply(hang=True))
        start = trio.current_time()
        with pytest.raises(TimeoutError), anyio.fail_after(30):
            await complete(provider_for(srv), REQUEST, deltas)
        assert trio.current_time() - start == pytest.approx(30)
        await srv.wait_idle()  # the client hung up: the server's handler is gone
        assert srv.in_flight == 0


@pytest.mark.anyio
async def test_a_stalled_stream_is_cancellable(deltas: Any) -> None:
    got_both = anyio.Event()

    async def record(piece: str) -> None:
        await deltas(piece)
        if len(deltas.pieces) == 2:
            got_both.set()

    async with openai_server() as srv:
        srv.enqueue(Reply(chunks=["one", " two"], stall=True))
        async with anyio.create_task_group() as tg:
            tg.start_soon(complete, provider_for(srv), REQUEST, record)
            await got_both.wait()
            assert srv.in_flight == 1
            tg.cancel_scope.cancel()
        assert deltas.pieces == ["one", " two"]
        await srv.wait_idle()


@pytest.mark.anyio
async def test_cancelled_while_delivering_a_piece(deltas: Any) -> None:
    """Cancellation arriving inside on_delta, while the body is still streaming:
    the call ends at once and leaves no half-read generator behind."""
    pieces = [f" w{i}" for i in range(20)]
    async with openai_server() as srv:
        srv.enqueue(Reply(chunks=pieces, chunk_delay=0.01))
        with anyio.CancelScope() as scope:

            async def cancel_on_third(piece: str) -> None:
                await deltas(piece)
                if len(deltas.pieces) == 3:
                    scope.cancel()
                    await anyio.lowlevel.checkpoint()

            await complete(provider_for(srv), REQUEST, cancel_on_third)
        assert scope.cancelled_caught
        assert deltas.pieces == pieces[:3]
        await srv.wait_idle()


@pytest.mark.anyio
async def test_errors_raised_by_on_delta_pass_through_untouched() -> None:
    class Boom(ValueError):
        pass

    async def explode(piece: str) -> None:
        raise Boom(piece)

    async with openai_server() as srv:
        srv.enqueue(Reply(chunks=["a", "b"]))
        with pytest.raises(Boom):
            await complete(provider_for(srv), REQUEST, explode)


@pytest.mark.anyio
async def test_concurrent_calls_each_get_their_own_answer() -> None:
    async def ask(text: str, results: dict[str, str]) -> None:
        request = ChatRequest("gpt-test", (ChatMessage("user", text),))

        async def ignore(piece: str) -> None:
            pass

        results[text] = (await complete(provider_for(srv), request, ignore)).content

    results: dict[str, str] = {}
    async with openai_server() as srv:
        async with anyio.create_task_group() as tg:
            for text in ("one", "two", "three"):
                tg.start_soon(ask, text, results)
    assert results == {"one": "echo: one", "two": "echo: two", "three": "echo: three"}


@pytest.mark.anyio
async def test_a_client_cache_reuses_one_client_per_provider() -> None:
    """With a ClientCache, calls to one provider share a client (and its connections);
    another key gets its own, and the cache closes them all."""
    from wizd.llm.clients import ClientCache
    from wizd.llm.providers import complete

    clients = ClientCache()
    async with openai_server() as srv:
        provider = ProviderConfig("p", "test", "openai", srv.base_url, "gpt-test", api_key="k1")
        other = ProviderConfig("q", "test2", "openai", srv.base_url, "gpt-test", api_key="k2")
        request = ChatRequest("gpt-test", (ChatMessage("user", "hi"),))

        async def sink(piece: str) -> None:
            pass

        try:
            for p in (provider, provider, other):
                assert (await complete(p, request, sink, clients)).content
            assert len(clients._clients) == 2
            assert "k1" not in repr(list(clients._clients))  # keys are digests, not secrets
            assert [r.headers["authorization"] for r in srv.requests] == [
                "Bearer k1", "Bearer k1", "Bearer k2"]
        finally:
            await clients.aclose()
        assert clients._clients == {}
