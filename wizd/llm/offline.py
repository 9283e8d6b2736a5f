"""The built-in "offline" provider type: a demo and test stand-in for a real LLM.

It never touches the network and always gives the same answer to the same
request, so wiz can be tried, and tested end to end, without any LLM at all.
The reply says who the agent is (from the system prompt's ``You are NAME.`` and
``Your role: ROLE.`` lines) and quotes the last user message, shortened::

    [offline demo] I'm Ada (Researcher). You said: "hello there"

It is streamed word by word through ``on_delta``, with a scheduler checkpoint
between pieces (no real sleeping). ``model`` echoes ``request.model``,
``finish_reason`` is ``"stop"``, and ``usage`` counts words. A reply longer
than ``request.max_reply_bytes`` (a role may be 20 000 characters) is cut
there and marked truncated, with no finish reason, as a real provider's would be.

Test triggers, recognised as a separate word anywhere in the last user message:

- ``/fail``: raises ``ProviderError`` (retryable), as a flaky server would.
- ``/fail-auth``: raises ``ProviderAuthError`` (never retried).
- ``/hang``: streams the first piece, then waits until cancelled (for timeout
  and cancellation tests).
- ``/tool SERVER.TOOL key=value ...``: calls that MCP tool with those
  arguments (strings; a value that reads as a JSON number, boolean or null is
  one), then answers with its result: tools shown working without a network.
"""

from __future__ import annotations

import json
import re
import shlex

import anyio
import anyio.lowlevel

from ..errors import ProviderAuthError, ProviderError
from .base import (
    ChatRequest,
    Completion,
    OnDelta,
    ProviderConfig,
    ToolCall,
    cut_utf8,
    function_name,
)

__all__ = ["complete", "reply_text"]

LABEL = "[offline demo]"
QUOTE_LIMIT = 80

_TRIGGER = re.compile(r"(?<!\S)/(fail-auth|fail|hang)(?!\S)")
_NAME = re.compile(r"^You are (.+?)\.?$", re.MULTILINE)
_ROLE = re.compile(r"^Your role: (.+?)\.?$", re.MULTILINE)
_PIECE = re.compile(r"\S+\s*")
_TOOL = re.compile(r"(?<!\S)/tool\s+(\S+)(.*)$", re.MULTILINE)
RESULT_LIMIT = 2000  # characters of a tool's result quoted in the answer


async def complete(
    provider: ProviderConfig, request: ChatRequest, on_delta: OnDelta, clients: object = None
) -> Completion:
    """Stream the deterministic demo reply; raises on the ``/fail`` triggers (module docstring)."""
    last_user = _last_content(request, "user")
    trigger = _TRIGGER.search(last_user)
    action = trigger.group(1) if trigger else None
    if action == "fail":
        raise ProviderError("offline demo failure requested with /fail", provider=provider.name)
    if action == "fail-auth":
        raise ProviderAuthError(
            "offline demo auth failure requested with /fail-auth", provider=provider.name
        )

    results = _tool_results(request)
    if not results:
        call = _tool_call(last_user)
        if call is not None:
            return Completion(content="", model=request.model, finish_reason="tool_calls",
                              usage=None, tool_calls=(call,))
    whole = reply_text(request) if not results else _answer(request, results)
    cap = request.max_reply_bytes
    text = whole if cap is None else cut_utf8(whole, cap)
    truncated = text != whole
    pieces = _PIECE.findall(text)
    for index, piece in enumerate(pieces):
        if index:
            await anyio.lowlevel.checkpoint()
        await on_delta(piece)
        if action == "hang":
            await anyio.sleep_forever()
    prompt_words = sum(len(m.content.split()) for m in request.messages)
    return Completion(
        content=text,
        model=request.model,
        finish_reason=None if truncated else "stop",
        usage={
            "prompt_tokens": prompt_words,
            "completion_tokens": len(pieces),
            "total_tokens": prompt_words + len(pieces),
        },
        truncated=truncated,
    )


def reply_text(request: ChatRequest) -> str:
    """The whole reply ``complete`` would stream for ``request``."""
    system = _last_content(request, "system")
    name = _NAME.search(system)
    role = _ROLE.search(system)
    who = ""
    if name:
        who = f" I'm {name.group(1)}" + (f" ({role.group(1)})" if role else "") + "."
    said = " ".join(_last_content(request, "user").split())
    if len(said) > QUOTE_LIMIT:
        said = said[: QUOTE_LIMIT - 1].rstrip() + "…"
    return f'{LABEL}{who} You said: "{said}"'


def _tool_call(text: str) -> ToolCall | None:
    """The call ``/tool server.tool key=value ...`` in ``text`` asks for, if any."""
    found = _TOOL.search(text)
    if found is None:
        return None
    name = found.group(1)
    server, _, tool = name.partition(".")
    try:
        words = shlex.split(found.group(2))
    except ValueError:
        words = found.group(2).split()
    arguments: dict[str, object] = {}
    for word in words:
        key, sep, value = word.partition("=")
        if sep:
            arguments[key] = _value(value)
    function = function_name(server, tool) if tool else name
    return ToolCall("offline_1", function, json.dumps(arguments))


def _value(text: str) -> object:
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if value is None or isinstance(value, (bool, int, float)) else text


def _tool_results(request: ChatRequest) -> list[str]:
    """The tool results after the last user message (what its /tool call gave)."""
    results: list[str] = []
    for message in reversed(request.messages):
        if message.role == "user":
            break
        if message.role == "tool":
            results.append(message.content)
    return results[::-1]


def _answer(request: ChatRequest, results: list[str]) -> str:
    found = _TOOL.search(_last_content(request, "user"))
    name = found.group(1) if found else "the tool"
    result = "\n".join(results)
    if len(result) > RESULT_LIMIT:
        result = result[: RESULT_LIMIT - 1] + "…"
    return f"{LABEL} {name} answered:\n{result}"


def _last_content(request: ChatRequest, role: str) -> str:
    for message in reversed(request.messages):
        if message.role == role:
            return message.content
    return ""
