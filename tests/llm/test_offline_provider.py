"""The built-in "offline" demo provider: deterministic, networkless, with test triggers."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
import trio

from wizd.errors import ProviderAuthError, ProviderError
from wizd.llm import ChatMessage, ChatRequest, ProviderConfig, complete, system_prompt
from wizd.llm.offline import reply_text

OFFLINE = ProviderConfig("prov-off", "demo", "offline", None, "offline-1")
PROMPT = system_prompt("Ada", "Researcher", "Grew up among books.", "Find the truth.")


def request(*user: str, system: str | None = PROMPT, model: str = "offline-1") -> ChatRequest:
    messages = [ChatMessage("system", system)] if system is not None else []
    for text in user:
        messages += [ChatMessage("user", text), ChatMessage("assistant", "noted")]
    return ChatRequest(model, tuple(messages[:-1]) if user else tuple(messages))


@pytest.mark.anyio
async def test_the_reply_introduces_the_agent_and_quotes_the_user(deltas: Any) -> None:
    asked = request("earlier", "What is   wiz?")
    result = await complete(OFFLINE, asked, deltas)
    assert result.content == '[offline demo] I\'m Ada (Researcher). You said: "What is wiz?"'
    assert "".join(deltas.pieces) == result.content
    assert len(deltas.pieces) == len(result.content.split())  # streamed word by word
    assert result.model == "offline-1"
    assert result.finish_reason == "stop"
    prompt_words = sum(len(m.content.split()) for m in asked.messages)
    assert result.usage == {
        "prompt_tokens": prompt_words,
        "completion_tokens": len(deltas.pieces),
        "total_tokens": prompt_words + len(deltas.pieces),
    }


@pytest.mark.anyio
async def test_it_is_deterministic(deltas: Any) -> None:
    first = await complete(OFFLINE, request("hello"), deltas)
    again = await complete(OFFLINE, request("hello"), deltas)
    assert first == again
    assert deltas.pieces[: len(deltas.pieces) // 2] == deltas.pieces[len(deltas.pieces) // 2 :]


@pytest.mark.anyio
async def test_without_a_system_prompt_or_user_message(deltas: Any) -> None:
    result = await complete(OFFLINE, request("hi", system=None, model="x"), deltas)
    assert result.content == '[offline demo] You said: "hi"'
    assert result.model == "x"
    empty = await complete(OFFLINE, ChatRequest("x", ()), deltas)
    assert empty.content == '[offline demo] You said: ""'


@pytest.mark.anyio
async def test_long_messages_are_shortened(deltas: Any) -> None:
    result = await complete(OFFLINE, request("word " * 100), deltas)
    quoted = result.content.split('You said: "', 1)[1].rstrip('"')
    assert len(quoted) <= 80
    assert quoted.endswith("…")


@pytest.mark.anyio
async def test_fail_trigger_raises_a_retryable_error(deltas: Any) -> None:
    with pytest.raises(ProviderError) as info:
        await complete(OFFLINE, request("@ada please /fail now"), deltas)
    assert type(info.value) is ProviderError
    assert info.value.retryable
    assert info.value.provider == "demo"
    assert deltas.pieces == []


@pytest.mark.anyio
async def test_fail_auth_trigger_raises_a_final_error(deltas: Any) -> None:
    with pytest.raises(ProviderAuthError) as info:
        await complete(OFFLINE, request("/fail-auth"), deltas)
    assert not info.value.retryable


@pytest.mark.anyio
@pytest.mark.parametrize("text", ["/failure", "path/fail", "fail", "/fail-authx"])
async def test_lookalikes_do_not_trigger(text: str, deltas: Any) -> None:
    result = await complete(OFFLINE, request(text), deltas)
    assert text in result.content


@pytest.mark.trio
async def test_hang_trigger_waits_until_cancelled(
    autojump_clock: trio.testing.MockClock, deltas: Any
) -> None:
    start = trio.current_time()
    with pytest.raises(TimeoutError), anyio.fail_after(120):
        await complete(OFFLINE, request("/hang"), deltas)
    assert trio.current_time() - start == pytest.approx(120)
    assert deltas.pieces == ["[offline "]


@pytest.mark.anyio
async def test_other_tasks_run_between_pieces() -> None:
    """A checkpoint between pieces: a long reply does not hog the event loop."""
    seen: list[str] = []

    async def record(piece: str) -> None:
        seen.append(piece)

    async def observer() -> None:
        await anyio.lowlevel.checkpoint()
        seen.append("<other task>")

    async with anyio.create_task_group() as tg:
        tg.start_soon(observer)
        await complete(OFFLINE, request("one two three four five six"), record)
    assert "<other task>" in seen[1:-1]


@pytest.mark.anyio
async def test_the_reply_cap_holds_offline_too(deltas: Any) -> None:
    # A role may be 20 000 characters: the introduction alone passes a small cap.
    prompt = system_prompt("Ada", "Ré" * 5_000, "", "")
    asked = ChatRequest("offline-1", (ChatMessage("system", prompt), ChatMessage("user", "hi")),
                        max_reply_bytes=1025)
    result = await complete(OFFLINE, asked, deltas)
    assert (result.truncated, result.finish_reason) == (True, None)
    assert len(result.content.encode()) == 1024  # "Ré" is three bytes; the cut is between them
    assert reply_text(asked).startswith(result.content)
    assert "".join(deltas.pieces) == result.content

    whole = await complete(OFFLINE, request("hi"), deltas)
    assert not whole.truncated
