"""Tool calls through the "openai" provider, against the scripted server: the
``tools`` sent, streamed and whole ``tool_calls`` read (parallel calls too),
and the turns of earlier steps sent back in OpenAI's shape."""

from __future__ import annotations

from typing import Any

import pytest

from tests.llm.test_openai_provider import REQUEST, provider_for
from tests.support.openai_server import Call, Reply, openai_server
from wizd.errors import ProviderProtocolError
from wizd.llm import ChatMessage, complete
from wizd.llm.base import ChatRequest, ToolCall, ToolSpec

pytestmark = pytest.mark.anyio

TOOLS = (ToolSpec("fs__read_file", "Read a file.",
                  {"type": "object", "properties": {"path": {"type": "string"}}}),)


@pytest.mark.parametrize("plain", [False, True], ids=["sse", "json"])
async def test_parallel_calls_are_read_whole_and_in_order(deltas: Any, plain: bool) -> None:
    async with openai_server() as srv:
        srv.enqueue(Reply(text="Let me look.", plain=plain, tool_calls=[
            Call("fs__read_file", {"path": "README.md"}, id="a"),
            Call("fs__read_file", {"path": "docs/é.md"}, id="b")]))
        request = ChatRequest(model="gpt-test", messages=REQUEST.messages, tools=TOOLS)
        answer = await complete(provider_for(srv), request, deltas)
        assert answer.tool_calls == (
            ToolCall("a", "fs__read_file", '{"path": "README.md"}'),
            ToolCall("b", "fs__read_file", '{"path": "docs/\\u00e9.md"}'))
        assert (answer.content, answer.finish_reason) == ("Let me look.", "tool_calls")
        [sent] = srv.requests
        assert sent.body["tools"] == [{"type": "function", "function": {
            "name": "fs__read_file", "description": "Read a file.",
            "parameters": TOOLS[0].parameters}}]


async def test_earlier_steps_are_sent_in_openais_shape(deltas: Any) -> None:
    async with openai_server() as srv:
        srv.enqueue(Reply(text="It says hi."))
        turn = ChatMessage("assistant", "", tool_calls=(ToolCall("a", "fs__read_file", "{}"),))
        request = ChatRequest(model="gpt-test", tools=TOOLS, messages=(
            *REQUEST.messages, turn, ChatMessage("tool", "hi", tool_call_id="a")))
        answer = await complete(provider_for(srv), request, deltas)
        assert answer.tool_calls == () and answer.content == "It says hi."
        messages = srv.requests[0].body["messages"]
        assert messages[2:] == [
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "a", "type": "function",
                 "function": {"name": "fs__read_file", "arguments": "{}"}}]},
            {"role": "tool", "content": "hi", "tool_call_id": "a"}]


async def test_a_call_without_a_name_is_a_protocol_error(deltas: Any) -> None:
    async with openai_server() as srv:
        srv.enqueue(Reply(tool_calls=[Call("", {})]))
        with pytest.raises(ProviderProtocolError, match="malformed tool call"):
            await complete(provider_for(srv), REQUEST, deltas)


