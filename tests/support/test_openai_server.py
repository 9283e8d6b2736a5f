"""The scripted OpenAI server itself, checked with the real openai client (async and sync)."""

from __future__ import annotations

import time

import anyio
import openai
import pytest
import trio
from openai.types.chat import ChatCompletionMessageParam

from tests.support.openai_server import Reply, openai_server, openai_server_in_thread
from wizd.llm import ChatMessage, ChatRequest, ProviderConfig, complete

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "ping"}]


def async_client(base_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=base_url, api_key="sk-test", max_retries=0, timeout=10)


@pytest.mark.anyio
async def test_non_streaming_completion() -> None:
    async with openai_server() as srv, async_client(srv.base_url) as client:
        srv.enqueue(Reply(text="pong pong", finish_reason="length"))
        result = await client.chat.completions.create(model="gpt-x", messages=MESSAGES)

    assert result.choices[0].message.content == "pong pong"
    assert result.choices[0].finish_reason == "length"
    assert result.model == "gpt-x"
    assert result.usage is not None and result.usage.total_tokens == 3


@pytest.mark.anyio
async def test_replies_are_used_in_order_then_the_default_echoes() -> None:
    async with openai_server() as srv, async_client(srv.base_url) as client:
        srv.enqueue(Reply(text="first"), Reply(text="second"))
        texts = []
        for _ in range(3):
            result = await client.chat.completions.create(model="m", messages=MESSAGES)
            texts.append(result.choices[0].message.content)
        assert srv.pending == 0

    assert texts == ["first", "second", "echo: ping"]


@pytest.mark.anyio
async def test_the_default_reply_is_configurable() -> None:
    async with openai_server(default=Reply(text="always this")) as srv:
        async with async_client(srv.base_url) as client:
            result = await client.chat.completions.create(model="m", messages=MESSAGES)
    assert result.choices[0].message.content == "always this"


@pytest.mark.anyio
async def test_models_endpoint() -> None:
    async with openai_server(models=("gpt-a", "gpt-b")) as srv:
        async with async_client(srv.base_url) as client:
            page = await client.models.list()
        assert [m.id for m in page.data] == ["gpt-a", "gpt-b"]
        assert srv.requests[0].method == "GET"
        assert srv.requests[0].path == "/v1/models"


@pytest.mark.anyio
async def test_error_statuses_have_openai_shaped_bodies() -> None:
    async with openai_server() as srv, async_client(srv.base_url) as client:
        srv.enqueue(Reply(status=404, error="The model `nope` does not exist"))
        with pytest.raises(openai.NotFoundError) as info:
            await client.chat.completions.create(model="nope", messages=MESSAGES)
    assert info.value.body == {
        "message": "The model `nope` does not exist",
        "type": "invalid_request_error",
        "param": None,
        "code": "model_not_found",
    }


@pytest.mark.anyio
async def test_requests_are_recorded_with_headers_and_json_body() -> None:
    async with openai_server() as srv, async_client(srv.base_url) as client:
        await client.chat.completions.create(model="m", messages=MESSAGES, temperature=0)
        (request,) = await srv.wait_for_requests(1)
    assert request.headers["authorization"] == "Bearer sk-test"
    assert request.body == {"model": "m", "messages": MESSAGES, "temperature": 0}


@pytest.mark.anyio
async def test_in_flight_and_max_concurrent() -> None:
    ask = ChatRequest("m", (ChatMessage("user", "hi"),))

    async def ignore(piece: str) -> None:
        pass

    async with openai_server() as srv:
        provider = ProviderConfig("p", "local", "openai", srv.base_url, "m")
        srv.enqueue(Reply(hang=True), Reply(hang=True), Reply(hang=True))
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(complete, provider, ask, ignore)
            await srv.wait_for_requests(3)
            assert srv.in_flight == 3
            tg.cancel_scope.cancel()
        await srv.wait_idle()
        assert srv.max_concurrent == 3


@pytest.mark.trio
async def test_delays_follow_the_mock_clock(autojump_clock: trio.testing.MockClock) -> None:
    """A one-hour delay takes an hour of virtual time and almost no real time."""
    ask = ChatRequest("m", (ChatMessage("user", "hi"),))
    pieces: list[str] = []

    async def record(piece: str) -> None:
        pieces.append(piece)

    real_start = time.monotonic()
    async with openai_server() as srv:
        provider = ProviderConfig("p", "local", "openai", srv.base_url, "m")
        srv.enqueue(Reply(text="a b c", delay=3600, chunk_delay=60))
        start = trio.current_time()
        await complete(provider, ask, record)
        assert trio.current_time() - start == pytest.approx(3600 + 2 * 60)
    assert pieces == ["a", " b", " c"]
    assert time.monotonic() - real_start < 1


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_thread_runner_serves_synchronous_clients(backend: str) -> None:
    with openai_server_in_thread(backend=backend) as srv:
        srv.enqueue(Reply(text="from a thread"), Reply(chunks=["stre", "amed"]))
        with openai.OpenAI(base_url=srv.base_url, api_key="sk-test", max_retries=0) as client:
            result = client.chat.completions.create(model="m", messages=MESSAGES)
            stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
            streamed = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert len(srv.wait_for_requests(2)) == 2
        srv.wait_idle()
        assert srv.in_flight == 0
    assert result.choices[0].message.content == "from a thread"
    assert streamed == "streamed"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_thread_runner_serves_wizd_on_another_loop(backend: str) -> None:
    ask = ChatRequest("m", (ChatMessage("user", "over there"),))

    async def ignore(piece: str) -> None:
        pass

    with openai_server_in_thread() as srv:
        provider = ProviderConfig("p", "local", "openai", srv.base_url, "m")
        result = anyio.run(complete, provider, ask, ignore, backend=backend)
    assert result.content == "echo: over there"
