"""The "openai" provider type: any server that speaks OpenAI's chat-completions protocol.

Choices made here, so that callers need not know them:

- Retries and time limits are the job's (the response generator wraps the call
  in ``anyio.move_on_after``), so the SDK gets ``max_retries=0`` and
  ``timeout=None``.
- Clients come from the daemon's cache (``wizd/llm/clients.py``), one per
  (base URL, key), so connections stay alive between replies; a call's
  response is closed on the way out even when cancelled.
- The SDK's own ``AsyncStream`` breaks out of its chain of async generators at
  ``data: [DONE]`` and leaves them suspended; under trio each one then raises a
  ``ResourceWarning`` when garbage collected. So we take the raw streamed
  response (``with_streaming_response``), parse the server-sent events here, and
  always run the body to its end, or into a short deadline, so that every
  generator finishes inside its own ``await``. Works the same on asyncio.
- A reply past ``request.max_reply_bytes`` is cut there (between characters)
  and the rest is never read: the response is closed first, so the generators
  then run into a closed stream, and the connection is dropped rather than
  drained. Cancellation and failures mid-stream end the same way.
- Some servers ignore ``stream: true`` and answer with one ``chat.completion``
  JSON body; a provider set with ``stream=False`` asks for that. Either way the
  content type decides how the body is read: a JSON answer's text goes out as
  one delta, cut at ``max_reply_bytes`` like a stream. Its body is read only up
  to what a reply of that cap could take fully escaped (6 bytes a byte, plus
  64 KiB for the rest); a larger one is a ``ProviderProtocolError``.
- A stream that ends with neither a finish reason nor ``[DONE]`` was broken
  off: what came may be any part of the reply, so it is a (retryable)
  ``ProviderProtocolError``, never a reply.
- ``_translated`` is the one place where SDK and transport exceptions become
  ``ProviderError`` subclasses. Provider text passes through ``scrub_secret``,
  and the SDK exception is not chained: it holds the request (whose headers carry
  the key) and may echo the key in its message.
"""

from __future__ import annotations

import importlib
import json
import ssl
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from types import ModuleType
from typing import Any

import anyio
import anyio.lowlevel
import openai

from ..errors import (
    ProviderAuthError,
    ProviderBadRequest,
    ProviderError,
    ProviderProtocolError,
    ProviderRateLimited,
    ProviderTimeout,
)
from .base import (
    ChatMessage,
    ChatRequest,
    Completion,
    OnDelta,
    ProviderConfig,
    ToolCall,
    cut_utf8,
    parse_retry_after,
    scrub_secret,
    utf8_size,
)
from .clients import ClientCache

__all__ = ["complete"]

# How long cleanup may wait for the rest of a body or for the client to close.
DRAIN_SECONDS = 0.1
CLOSE_SECONDS = 1.0

USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")


def _optional_module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


# The SDK speaks httpx2 from openai 3 on, httpx before. A body we read ourselves
# raises that library's errors untranslated, so both libraries' are caught.
_HTTP_LIBRARIES = [m for m in map(_optional_module, ("httpx2", "httpx")) if m is not None]
_HTTP_TIMEOUTS: tuple[type[Exception], ...] = tuple(m.TimeoutException for m in _HTTP_LIBRARIES)
_HTTP_FAILURES: tuple[type[Exception], ...] = tuple(m.RequestError for m in _HTTP_LIBRARIES)
# A base URL that can never work: not worth a retry.
_HTTP_BAD_URLS: tuple[type[Exception], ...] = tuple(
    cls for m in _HTTP_LIBRARIES for cls in (m.InvalidURL, m.UnsupportedProtocol)
)


# The SDK's own HTTP client class (httpx2 from openai 3 on, httpx before).
_HTTP_CLIENT = getattr(openai, "DefaultAsyncHttpx2Client", None) or openai.DefaultAsyncHttpxClient

# One TLS context for every call. Left to itself, each client loads the whole
# CA bundle again, at a cost in event-loop CPU per client (figures: bench/README.md).
_TLS_CONTEXT: ssl.SSLContext | None = None


def _tls_context() -> ssl.SSLContext:
    """Build (once, in a worker thread) the context verifying against certifi's CAs,
    as the SDK's default client does."""
    global _TLS_CONTEXT
    if _TLS_CONTEXT is None:
        try:
            import certifi

            cafile: str | None = certifi.where()
        except ImportError:
            cafile = None
        _TLS_CONTEXT = ssl.create_default_context(cafile=cafile)
    return _TLS_CONTEXT


async def complete(
    provider: ProviderConfig,
    request: ChatRequest,
    on_delta: OnDelta,
    clients: ClientCache | None = None,
) -> Completion:
    """Stream one chat completion from ``provider``; see ``wizd.llm.providers.complete``.

    Awaits ``on_delta`` for each non-empty text piece, in order, and returns the
    whole reply. Raises only ``ProviderError`` subclasses (and whatever
    ``on_delta`` raises, untouched). With ``clients``, the HTTP client (and its
    kept-alive connections) is shared with other calls to the same provider;
    without, one is made for this call and closed after it.
    """
    with _translated(provider):
        tls = _TLS_CONTEXT if _TLS_CONTEXT is not None else await anyio.to_thread.run_sync(
            _tls_context)

        def make() -> openai.AsyncOpenAI:
            return openai.AsyncOpenAI(
                base_url=provider.base_url or None,  # empty means unset: the SDK's default
                api_key=provider.api_key or "not-needed",
                max_retries=0,
                timeout=None,
                http_client=_HTTP_CLIENT(verify=tls),
            )

        client = make() if clients is None else clients.get(
            provider.base_url, provider.api_key, make)
        try:
            create = client.chat.completions.with_streaming_response.create
            async with create(**_params(request, stream=provider.stream)) as response:
                content_type = response.headers.get("content-type", "")
                if "json" in content_type and "event-stream" not in content_type:
                    return await _read_json(provider, request, response, on_delta)
                return await _read_stream(provider, request, response, on_delta)
        finally:
            if clients is None:
                # Shielded so a cancelled call still releases its sockets; bounded
                # so a stuck close cannot hold the cancellation up for long.
                with anyio.CancelScope(shield=True), anyio.move_on_after(CLOSE_SECONDS):
                    await client.close()


def _message(m: ChatMessage) -> dict[str, Any]:
    """One message in OpenAI's shape: an assistant turn with its tool calls,
    a tool turn with the id of the call it answers."""
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        out["tool_calls"] = [{"id": c.id, "type": "function",
                              "function": {"name": c.name, "arguments": c.arguments}}
                             for c in m.tool_calls]
        out["content"] = m.content or None
    if m.tool_call_id is not None:
        out["tool_call_id"] = m.tool_call_id
    return out


def _params(request: ChatRequest, *, stream: bool = True) -> dict[str, Any]:
    params: dict[str, Any] = {
        "model": request.model,
        "messages": [_message(m) for m in request.messages],
        "stream": stream,
    }
    if request.tools:
        params["tools"] = [{"type": "function", "function": {
            "name": t.name, "description": t.description, "parameters": t.parameters}}
            for t in request.tools]
    if stream:
        # The usage comes in a last chunk only when asked for (a JSON answer has it anyway).
        params["stream_options"] = {"include_usage": True}
    if request.temperature is not None:
        params["temperature"] = request.temperature
    if request.max_tokens is not None:
        params["max_tokens"] = request.max_tokens
    return params


# -- reading the stream ---------------------------------------------------------


@dataclass
class _Reply:
    """What the stream has said so far."""

    model: str
    limit: int | None = None  # the most UTF-8 bytes of text to keep
    parts: list[str] = field(default_factory=list)
    size: int = 0  # UTF-8 bytes in parts
    finish_reason: str | None = None
    done: bool = False  # "data: [DONE]" came
    truncated: bool = False  # text past the limit came and was dropped
    usage: dict[str, int] | None = None
    # Streamed tool calls by their index: [id, name, argument pieces].
    calls: dict[int, list[Any]] = field(default_factory=dict)
    calls_size: int = 0  # UTF-8 bytes of names and arguments, capped as text is

    def add_calls(self, calls: object) -> None:
        """Take in the ``tool_calls`` of one delta: pieces of each call by index,
        its id and name in its first piece, its arguments spread over many."""
        if calls is None:
            return
        if not isinstance(calls, list) or not all(isinstance(c, dict) for c in calls):
            raise ValueError("'tool_calls' is not a list of objects")
        for position, call in enumerate(calls):
            index = call.get("index", position)
            if not isinstance(index, int):
                raise ValueError("a tool call's index is not a number")
            entry = self.calls.setdefault(index, [None, "", []])
            if isinstance(call.get("id"), str) and call["id"]:
                entry[0] = call["id"]
            function = call.get("function")
            if not isinstance(function, dict):
                continue
            for key, slot in (("name", 1), ("arguments", 2)):
                piece = function.get(key)
                if piece is None:
                    continue
                if not isinstance(piece, str):
                    raise ValueError(f"a tool call's {key} is not text")
                self.calls_size += utf8_size(piece)
                if self.limit is not None and self.calls_size > self.limit:
                    raise ValueError("tool calls larger than max_reply_bytes")
                if slot == 1:
                    entry[1] += piece
                else:
                    entry[2].append(piece)

    def tool_calls(self) -> tuple[ToolCall, ...]:
        calls = []
        for index in sorted(self.calls):
            call_id, name, arguments = self.calls[index]
            if not name:
                raise ValueError("a tool call has no function name")
            calls.append(ToolCall(call_id or f"call_{index}", name, "".join(arguments) or "{}"))
        return tuple(calls)

    def add(self, chunk: dict[str, Any]) -> str:
        """Take in one ``chat.completion.chunk``; returns its text (may be empty)."""
        if isinstance(chunk.get("model"), str) and chunk["model"]:
            self.model = chunk["model"]
        self.usage = _usage(chunk) or self.usage
        choices = chunk.get("choices") or []
        if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
            raise ValueError("'choices' is not a list of objects")
        piece = ""
        for choice in choices:
            if choice.get("index", 0) != 0:
                continue  # we ask for one choice; ignore any others
            if choice.get("finish_reason"):
                self.finish_reason = str(choice["finish_reason"])
            delta = choice.get("delta")
            content = delta.get("content") if isinstance(delta, dict) else None
            if isinstance(content, str) and content:
                piece += self._keep(content)
            if isinstance(delta, dict):
                self.add_calls(delta.get("tool_calls"))
        return piece

    def add_answer(self, answer: dict[str, Any]) -> str:
        """Take in a whole ``chat.completion``; returns its text (may be empty)."""
        if isinstance(answer.get("model"), str) and answer["model"]:
            self.model = answer["model"]
        self.usage = _usage(answer)
        choices = answer.get("choices")
        if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
            raise ValueError("'choices' is not a list of objects")
        choice = next((c for c in choices if c.get("index", 0) == 0), None)
        if choice is None or not isinstance(choice.get("message"), dict):
            raise ValueError("no message in the answer")
        if choice.get("finish_reason"):
            self.finish_reason = str(choice["finish_reason"])
        content = choice["message"].get("content")
        if content is not None and not isinstance(content, str):
            raise ValueError("the message's content is not text")
        calls = choice["message"].get("tool_calls")
        if isinstance(calls, list):  # a whole answer's calls have no index: their order is it
            calls = [{**c, "index": i} if isinstance(c, dict) else c for i, c in enumerate(calls)]
        self.add_calls(calls)
        return self._keep(content or "")

    def completion(self) -> Completion:
        """What was said, as the reply (raises ValueError for a tool call without a name)."""
        return Completion(content="".join(self.parts), model=self.model,
                          finish_reason=self.finish_reason, usage=self.usage,
                          truncated=self.truncated, tool_calls=self.tool_calls())

    def _keep(self, text: str) -> str:
        """Add ``text`` as far as the limit allows; returns what was kept."""
        if self.truncated:
            return ""
        size = utf8_size(text)
        if self.limit is not None and self.size + size > self.limit:
            text = cut_utf8(text, self.limit - self.size)
            size = utf8_size(text)
            self.truncated = True
        if text:
            self.parts.append(text)
            self.size += size
        return text


async def _read_stream(
    provider: ProviderConfig,
    request: ChatRequest,
    response: openai.AsyncAPIResponse[Any],
    on_delta: OnDelta,
) -> Completion:
    lines = response.iter_lines()
    reply = _Reply(model=request.model, limit=request.max_reply_bytes)
    events = _EventParser()
    ended = False  # read to the end of the body, or to [DONE]
    try:
        async for line in lines:
            data = events.feed(line)
            if data == "[DONE]":
                reply.done = True
                break
            if data is not None and (piece := _take(provider, reply, data)):
                await on_delta(piece)
            if reply.truncated:
                break
        else:
            data = events.flush()  # a last event the server did not end with a blank line
            if data == "[DONE]":
                reply.done = True
            elif data is not None and (piece := _take(provider, reply, data)):
                await on_delta(piece)
        ended = not reply.truncated
    finally:
        if ended:
            await _run_out(lines)  # what is left is short, and lets the connection be reused
        else:
            await _abandon(response, lines)
    if not reply.truncated:
        _check_finished(provider, reply, response.headers.get("content-type", ""))
    return _completion(provider, reply)


# A JSON answer's body beyond the text: id, model, usage, and the like.
_JSON_OVERHEAD = 64 * 1024


async def _read_json(
    provider: ProviderConfig,
    request: ChatRequest,
    response: openai.AsyncAPIResponse[Any],
    on_delta: OnDelta,
) -> Completion:
    """Read a plain ``chat.completion`` body; its text goes to ``on_delta`` as one piece."""
    limit = None if request.max_reply_bytes is None else (
        6 * request.max_reply_bytes + _JSON_OVERHEAD)  # "\u0001" is 6 bytes for 1
    chunks = response.iter_bytes()
    body = bytearray()
    ended = False
    try:
        async for data in chunks:
            body += data
            if limit is not None and len(body) > limit:
                break
        else:
            ended = True
    finally:
        if not ended:
            await _abandon(response, chunks)
    if not ended:
        raise _protocol_error(
            provider, f"the answer's body is larger than {limit} bytes, more than a reply "
            f"of max_reply_bytes ({request.max_reply_bytes}) can take")
    answer = _decode(provider, body.decode("utf-8", "replace"))
    reply = _Reply(model=request.model, limit=request.max_reply_bytes)
    try:
        piece = reply.add_answer(answer)
    except ValueError as exc:
        raise _protocol_error(provider, f"malformed answer: {exc}") from None
    if piece:
        await on_delta(piece)
    if not reply.parts and not reply.calls and reply.finish_reason is None:
        raise _protocol_error(provider, "the answer has no content and no finish reason")
    return _completion(provider, reply)


def _usage(obj: dict[str, Any]) -> dict[str, int] | None:
    """The token counts of a chunk's or an answer's ``usage``, if it has any."""
    usage = obj.get("usage")
    if not isinstance(usage, dict):
        return None
    return {k: usage[k] for k in USAGE_KEYS if _count(usage.get(k))} or None


def _count(value: Any) -> bool:
    """Whether ``value`` is a token count SQLite can store: a whole number (not a
    boolean), not negative, within 64 bits. A server's nonsense is left out."""
    return type(value) is int and 0 <= value < 2**63


def _completion(provider: ProviderConfig, reply: _Reply) -> Completion:
    try:
        return reply.completion()
    except ValueError as exc:
        raise _protocol_error(provider, f"malformed tool call: {exc}") from None


def _check_finished(provider: ProviderConfig, reply: _Reply, content_type: str) -> None:
    """Raise ``ProviderProtocolError`` unless the stream said it was finished."""
    if not reply.parts and not reply.calls and reply.finish_reason is None:
        got = f" (content-type {content_type!r})" if "event-stream" not in content_type else ""
        raise _protocol_error(provider, f"stream ended with no content and no finish reason{got}")
    if reply.finish_reason is None and not reply.done:
        raise _protocol_error(provider, "the stream ended before the reply was finished")


class _EventParser:
    """Server-sent events, line by line: ``feed`` returns an event's data when one completes."""

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> str | None:
        line = line.rstrip("\r\n")
        if not line:
            return self.flush()
        if line.startswith(":"):
            return None  # a comment, e.g. a keep-alive
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)
        return None  # "event", "id", "retry" do not matter for chat completions

    def flush(self) -> str | None:
        if not self._data:
            return None
        data, self._data = "\n".join(self._data), []
        return data


def _take(provider: ProviderConfig, reply: _Reply, data: str) -> str:
    """Decode one event into ``reply``; returns its text piece (may be empty)."""
    chunk = _decode(provider, data)
    try:
        return reply.add(chunk)
    except ValueError as exc:
        raise _protocol_error(provider, f"malformed chunk in stream: {exc}") from None


def _decode(provider: ProviderConfig, data: str) -> dict[str, Any]:
    """One event's JSON object; an ``{"error": ...}`` event becomes a ``ProviderError``."""
    try:
        chunk = json.loads(data)
    except ValueError:
        raise _protocol_error(provider, f"invalid JSON in stream: {data[:80]!r}") from None
    if not isinstance(chunk, dict):
        raise _protocol_error(provider, f"stream event is not an object: {data[:80]!r}")
    if "error" in chunk:
        message = _body_message(chunk["error"]) or "error event in stream"
        raise ProviderError(_clean(provider, message), provider=provider.name)
    return chunk


async def _run_out(lines: AsyncIterator[str]) -> None:
    """Read the rest of the body, or until a short deadline cancels the read.

    Either way every generator between us and the socket finishes (an exception
    raised inside them unwinds them all), so none is left for trio's garbage
    collection hook to complain about.
    """
    with anyio.CancelScope(shield=True), anyio.move_on_after(DRAIN_SECONDS):
        try:
            async for _ in lines:
                # Data already buffered never blocks; give the deadline a chance.
                await anyio.lowlevel.checkpoint()
        except Exception:
            pass  # the outcome is already decided; a broken tail changes nothing


async def _abandon(response: openai.AsyncAPIResponse[Any], lines: AsyncIterator[Any]) -> None:
    """Stop reading: close the response (its connection is dropped, not drained),
    then let the generators run into the closed stream, so that each finishes.

    Only data already buffered is left to them; the next read fails at once.
    No checkpoint of ours is in the loop, so the deadline (there in case the
    close failed) can only land inside a generator's read, which unwinds them all.
    """
    with anyio.CancelScope(shield=True), anyio.move_on_after(CLOSE_SECONDS):
        try:
            await response.close()
        except Exception:
            pass  # the reads below end on the deadline instead
        try:
            async for _ in lines:
                pass
        except Exception:
            pass  # the read that meets the closed stream


# -- errors -------------------------------------------------------------------


@contextmanager
def _translated(provider: ProviderConfig) -> Iterator[None]:
    """Turn SDK and transport exceptions raised inside the block into ``ProviderError``s."""
    name = provider.name
    try:
        yield
    except openai.APIStatusError as exc:
        raise _status_error(provider, exc) from None
    except openai.APITimeoutError:
        raise ProviderTimeout("no answer in time", provider=name) from None
    except openai.APIConnectionError as exc:
        cause = _root_cause(exc)
        if _in_chain(exc, _HTTP_BAD_URLS):
            raise _bad_url(provider, cause) from None
        where = provider.base_url or "the OpenAI API"
        message = f"cannot reach {where}: {_describe(cause)}"
        raise ProviderError(_clean(provider, message), provider=name) from None
    except openai.OpenAIError as exc:
        raise ProviderError(_clean(provider, str(exc)), provider=name) from None
    except _HTTP_BAD_URLS as exc:
        raise _bad_url(provider, exc) from None
    except _HTTP_TIMEOUTS:
        raise ProviderTimeout("no answer in time", provider=name) from None
    except _HTTP_FAILURES as exc:
        message = f"connection lost: {_describe(_root_cause(exc))}"
        raise ProviderError(_clean(provider, message), provider=name) from None


def _bad_url(provider: ProviderConfig, exc: BaseException) -> ProviderBadRequest:
    message = f"unusable base URL {provider.base_url!r}: {_describe(exc)}"
    return ProviderBadRequest(_clean(provider, message), provider=provider.name)


def _status_error(provider: ProviderConfig, exc: openai.APIStatusError) -> ProviderError:
    status = exc.status_code
    message = _clean(provider, _body_message(exc.body) or _reason(status))
    retry_after = parse_retry_after(exc.response.headers)
    cls: type[ProviderError]
    if status in (401, 403):
        cls = ProviderAuthError
    elif status == 429:
        cls = ProviderRateLimited
    elif status == 408:
        cls = ProviderTimeout
    elif 400 <= status < 500 and status not in (409, 425):
        # 400, 404 (unknown model), 422 and the rest: asking again will not help.
        cls = ProviderBadRequest
    else:
        cls = ProviderError
    return cls(message, status=status, provider=provider.name, retry_after=retry_after)


def _protocol_error(provider: ProviderConfig, message: str) -> ProviderProtocolError:
    return ProviderProtocolError(_clean(provider, message), provider=provider.name)


def _body_message(body: object) -> str | None:
    """The human text of an OpenAI-shaped error body (``{"message": ...}``), or of a text body."""
    if isinstance(body, dict):
        if isinstance(body.get("error"), dict):
            body = body["error"]
        message = body.get("message") if isinstance(body, dict) else None
        if isinstance(message, str) and message.strip():
            return message.strip()
        return None
    if isinstance(body, str) and body.strip():
        return body.strip()[:200]
    return None


def _root_cause(exc: BaseException) -> BaseException:
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def _in_chain(exc: BaseException | None, types: tuple[type[BaseException], ...]) -> bool:
    while exc is not None:
        if isinstance(exc, types):
            return True
        exc = exc.__cause__
    return False


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error"


def _clean(provider: ProviderConfig, text: str) -> str:
    return scrub_secret(text, provider.api_key)
