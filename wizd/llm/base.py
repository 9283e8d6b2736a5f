"""The values every provider speaks: requests, configuration, completions.

A provider is an ``async def complete(provider, request, on_delta) -> Completion``
that streams text pieces to ``on_delta`` and raises only ``ProviderError``
subclasses. This module holds the shared types and the two pure helpers every
HTTP provider needs: secret scrubbing and ``Retry-After`` parsing.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime

__all__ = [
    "ChatMessage",
    "ChatRequest",
    "Completion",
    "OnDelta",
    "ProviderConfig",
    "ToolCall",
    "ToolSpec",
    "cut_utf8",
    "parse_retry_after",
    "scrub_secret",
    "utf8_size",
]


@dataclass(frozen=True)
class ToolCall:
    """A call the model asked for: ``arguments`` is the JSON text it wrote
    (not parsed here: a model may write invalid JSON, which the caller tells it)."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ToolSpec:
    """A tool offered to the model: a function ``name`` (letters, digits, ``_``
    and ``-``, as OpenAI requires), its description and JSON Schema."""

    name: str
    description: str
    parameters: dict[str, object]


@dataclass(frozen=True)
class ChatMessage:
    role: str  # "system" | "user" | "assistant" | "tool"
    content: str
    # An assistant turn that asked for tools; a "tool" turn answers one call.
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: tuple[ChatMessage, ...]
    temperature: float | None = None
    max_tokens: int | None = None
    # The most reply text (UTF-8 bytes) to take in; not sent to the server. A
    # provider stops reading there and returns the reply cut, marked truncated.
    max_reply_bytes: int | None = None
    # The tools the model may call (none: a plain chat completion).
    tools: tuple[ToolSpec, ...] = ()


@dataclass(frozen=True)
class ProviderConfig:
    """One ``llm_providers`` row with its secret resolved, built right before a call.

    ``api_key`` is left out of ``repr()`` (and so of ``str()``), but
    ``dataclasses.asdict()`` would still include it: never serialise this object.
    ``api_key_file`` (a path, not a secret) names a file holding the key instead:
    ``complete()`` reads it off the event loop right before the call.
    """

    id: str
    name: str
    type: str
    base_url: str | None
    default_model: str
    api_key: str | None = field(default=None, repr=False)
    api_key_file: str | None = None
    # False: ask for one JSON answer instead of a stream (for servers that
    # cannot stream); either kind of answer is accepted whatever was asked.
    stream: bool = True


@dataclass(frozen=True)
class Completion:
    content: str
    model: str
    finish_reason: str | None
    usage: dict[str, int] | None  # prompt_tokens, completion_tokens, total_tokens
    # True when the reply went on past ``max_reply_bytes`` and was cut there.
    truncated: bool = False
    # The tools the model asked to call, in its order (parallel calls: several).
    tool_calls: tuple[ToolCall, ...] = ()


OnDelta = Callable[[str], Awaitable[None]]


def utf8_size(text: str) -> int:
    """The length of ``text`` in UTF-8 bytes (a lone surrogate counts three)."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


# What OpenAI allows in a function name: no dots, so ``server.tool`` is
# offered to the model as ``server__tool``.
_NOT_FUNCTION = re.compile(r"[^A-Za-z0-9_-]")
MAX_FUNCTION = 64


def function_name(server: str, tool: str) -> str:
    """The function name the model is offered for MCP tool ``server.tool``."""
    return _NOT_FUNCTION.sub("_", f"{server}__{tool}")[:MAX_FUNCTION]


def display_name(function: str) -> str:
    """``server.tool`` for a function name the model wrote, as best it can be told."""
    server, sep, tool = function.partition("__")
    return f"{server}.{tool}" if sep else function


def storable(text: str) -> str:
    """``text`` with NUL characters replaced (U+FFFD): a model or a tool may
    send them, and PostgreSQL's text columns refuse them where SQLite's take them."""
    return text.replace("\x00", "\ufffd") if "\x00" in text else text


def cut_utf8(text: str, max_bytes: int) -> str:
    """The longest start of ``text`` whose UTF-8 form fits in ``max_bytes``.

    The cut falls between characters, never inside one.
    """
    if text.isascii():
        return text[:max_bytes]
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= max_bytes:
        return text
    end = max(max_bytes, 0)
    while end > 0 and data[end] & 0xC0 == 0x80:  # a continuation byte: mid-character
        end -= 1
    return data[:end].decode("utf-8", "surrogatepass")


# Tokens that look like API keys: OpenAI's "sk-..." (also as echoed truncated,
# "sk-abc***wxyz") and anything following "Bearer ", up to a space or quote (a
# final full stop belongs to the sentence).
_KEY_LIKE = re.compile(r"(?:\bsk-|(?i:\bbearer)\s+)[^\s\"',;]*[^\s\"',;.]")
REDACTED = "[redacted]"


def scrub_secret(text: str, secret: str | None) -> str:
    """``text`` with every occurrence of ``secret`` and every key-like token replaced.

    Provider error messages sometimes echo the key they were given (OpenAI says
    "Incorrect API key provided: sk-abc***wxyz"), so no provider text reaches an
    exception before passing through here.
    """
    if secret:
        text = text.replace(secret, REDACTED)
    return _KEY_LIKE.sub(REDACTED, text)


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """Seconds to wait as the server asked, or None when it did not say (or said nonsense).

    Reads ``retry-after-ms`` (milliseconds, OpenAI's extension) first, then
    ``Retry-After`` as delta-seconds or an HTTP-date (relative to ``now``, Unix
    seconds, default the wall clock). Header names match case-insensitively; a
    date in the past gives 0.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    millis = _non_negative(lowered.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000
    value = lowered.get("retry-after")
    if value is None:
        return None
    seconds = _non_negative(value)
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" parses zone-less; HTTP dates are GMT anyway
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _non_negative(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    # float() accepts "nan" and "inf"; a wait needs a finite, non-negative number.
    return number if 0 <= number < float("inf") else None
