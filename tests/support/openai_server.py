"""A scripted HTTP/1.1 server that speaks the OpenAI chat-completions wire protocol.

Tests queue replies and read back what the client sent, in the manner of
simonw/llm's ``MockModel.enqueue()`` and its ``history``::

    async with openai_server() as srv:
        srv.enqueue(Reply(text="Hello there"))
        srv.enqueue(Reply(status=429, headers={"Retry-After": "3"}))
        ...  # point a client at srv.base_url ("http://127.0.0.1:PORT/v1")
        assert srv.requests[0].body["model"] == "gpt-test"
        assert srv.hangups == 0  # answers the client hung up on before their end

Endpoints: ``POST /v1/chat/completions`` (JSON, or SSE ``data: {...}`` chunks
ending in ``data: [DONE]`` when the body says ``"stream": true`` and the reply
is not ``plain``, with a final
usage chunk when ``stream_options.include_usage`` is set) and ``GET /v1/models``.
When the queue is empty the ``default`` reply answers (an echo of the last user
message unless configured).

The server is written on anyio, so it runs as a task in the test's own event loop
(trio or asyncio, and under trio's ``MockClock``: every wait is an anyio sleep or
socket wait). For tests that drive a ``wizd`` subprocess, ``openai_server_in_thread()``
runs it on a thread with its own loop; ``enqueue`` and the counters are thread-safe.

Every response carries ``Connection: close``; streamed bodies use chunked encoding.
One request per connection keeps the server simple and is what httpx expects
of a server that says ``close``.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import anyio
from anyio.abc import SocketAttribute, SocketStream, TaskStatus
from anyio.from_thread import BlockingPortal, start_blocking_portal
from anyio.streams.buffered import BufferedByteReceiveStream

__all__ = [
    "Call",
    "OpenAIServer",
    "RecordedRequest",
    "Reply",
    "ThreadedOpenAIServer",
    "echo",
    "openai_server",
    "openai_server_in_thread",
]

MAX_HEAD_BYTES = 64 * 1024

# What a truncated, unparseable SSE event looks like when ``malformed=True``.
MALFORMED_EVENT = b'data: {"id": "chatcmpl-broken", "choices": [\n\n'

_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("insufficient_permissions", None),
    404: ("invalid_request_error", "model_not_found"),
    422: ("invalid_request_error", None),
    429: ("requests", "rate_limit_exceeded"),
}

_CONNECTION_GONE = (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream)


@dataclass(frozen=True)
class Call:
    """A tool call in a scripted reply: ``name`` is the function name the
    client offered; ``arguments`` a dict (sent as JSON) or raw text."""

    name: str
    arguments: dict[str, Any] | str = field(default_factory=dict)
    id: str = ""

    def json_arguments(self) -> str:
        return self.arguments if isinstance(self.arguments, str) else json.dumps(self.arguments)


def _call_id(call: Call, index: int) -> str:
    return call.id or f"call_{index}"


@dataclass
class Reply:
    """One scripted answer.

    - ``text``: the completion; streamed as ``chunks`` (default: word pieces of ``text``).
    - ``status``/``headers``: an error status gets an OpenAI-shaped JSON error body
      whose message is ``error`` (default: the HTTP reason phrase).
    - ``body``: sent verbatim instead of whatever would be generated (dict -> JSON).
    - ``hang``: never answer; the handler waits until the client hangs up or the
      server closes.
    - ``delay``: seconds (``anyio.sleep``) before answering; ``chunk_delay``
      between streamed chunks.
    - ``held``: answer only once the test calls ``server.release()`` (each call
      lets one held reply go): a reply that takes "long" without
      a real clock.
    - ``malformed``: stream an event that is not valid JSON instead of the chunks.
    - ``model``: the model the answer names (default: the one requested).
    - ``finish_reason``: ``None`` sends no finishing chunk; ``done=False`` sends
      no ``[DONE]``; ``stall=True`` sends the chunks, then hangs like ``hang``;
      ``cut=True`` sends the chunks, then closes the connection mid-body.
    - ``repeat``: stream the chunks this many times over (a huge reply, made as
      it is sent: nothing that size is held in memory).
    - ``plain``: answer with one ``chat.completion`` JSON body even when the
      request asked for a stream (as servers that ignore ``stream`` do).
    - ``tool_calls``: the model calls these tools (``Call``s: several are
      parallel calls), after the text if any; the finish reason defaults to
      ``tool_calls``. Streamed as OpenAI does: each call's id and name first,
      then its arguments in two pieces, the calls' pieces interleaved.
    """

    text: str = "hi"
    chunks: list[str] | None = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | str | dict[str, Any] | None = None
    hang: bool = False
    delay: float = 0.0
    malformed: bool = False
    error: str | None = None
    model: str | None = None
    finish_reason: str | None = "stop"
    done: bool = True
    stall: bool = False
    cut: bool = False
    chunk_delay: float = 0.0
    repeat: int = 1
    plain: bool = False
    held: bool = False
    tool_calls: list[Call] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.tool_calls and self.finish_reason == "stop":
            self.finish_reason = "tool_calls"
        if self.tool_calls and self.text == "hi" and self.chunks is None:
            self.text = ""

    def pieces(self) -> list[str]:
        if self.chunks is not None:
            return list(self.chunks)
        return re.findall(r"\s*\S+", self.text)


@dataclass(frozen=True)
class RecordedRequest:
    """What the server received: header names are lower-cased; ``body`` is parsed JSON or None."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes

    @property
    def stream(self) -> bool | None:
        """The request's ``stream`` field as sent (None when it sent none)."""
        return self.body.get("stream") if isinstance(self.body, dict) else None


def echo(request: RecordedRequest) -> Reply:
    """The default reply: ``echo: <content of the last user message>``."""
    messages = (request.body or {}).get("messages") or []
    users = [m.get("content", "") for m in messages if m.get("role") == "user"]
    return Reply(text=f"echo: {users[-1] if users else ''}")


class OpenAIServer:
    """The server's state and request handling; start it with ``openai_server()``."""

    def __init__(
        self,
        *,
        default: Reply | Callable[[RecordedRequest], Reply] = echo,
        models: tuple[str, ...] = ("gpt-test",),
    ) -> None:
        self.default = default
        self.models = models
        self.port: int | None = None
        self.in_flight = 0
        self.max_concurrent = 0
        # Answers the client hung up on before the server had sent all of them.
        self.hangups = 0
        # Guards the queue and the records: enqueue may come from another thread.
        self._lock = threading.Lock()
        self._queue: deque[Reply] = deque()
        self._requests: list[RecordedRequest] = []
        self._changed: anyio.Event | None = None
        # release() calls not yet taken by a held reply.
        self._releases = 0

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("the server is not running")
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def enqueue(self, *replies: Reply) -> None:
        """Queue replies for the next chat-completion requests, in order."""
        with self._lock:
            self._queue.extend(replies)

    @property
    def pending(self) -> int:
        """How many queued replies have not been used yet."""
        with self._lock:
            return len(self._queue)

    async def wait_for_requests(self, count: int = 1) -> list[RecordedRequest]:
        """Wait until at least ``count`` requests have arrived; returns them all."""
        await self._wait_until(lambda: len(self._requests) >= count)
        return self.requests

    def release(self) -> None:
        """Let one held reply (``Reply(held=True)``) answer; call on the server's loop."""
        self._releases += 1
        self._notify()

    async def wait_idle(self) -> None:
        """Wait until no request is being answered (e.g. a hanging one was given up)."""
        await self._wait_until(lambda: self.in_flight == 0)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Listen on 127.0.0.1 (ephemeral port) and serve until cancelled."""
        self._changed = anyio.Event()
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
        async with listener:
            self.port = listener.extra(SocketAttribute.local_port)
            task_status.started()
            await listener.serve(self._handle)

    # -- internals -------------------------------------------------------------

    async def _wait_until(self, predicate: Callable[[], bool]) -> None:
        while not predicate():
            assert self._changed is not None, "the server is not running"
            await self._changed.wait()

    def _notify(self) -> None:
        # Called from the server's loop only; wakes every _wait_until.
        if self._changed is not None:
            self._changed.set()
            self._changed = anyio.Event()

    async def _handle(self, stream: SocketStream) -> None:
        async with stream:
            receiver = BufferedByteReceiveStream(stream)
            try:
                request = await _read_request(receiver)
            except (*_CONNECTION_GONE, anyio.IncompleteRead, anyio.DelimiterNotFound, ValueError):
                return
            with self._lock:
                self._requests.append(request)
                self.in_flight += 1
                self.max_concurrent = max(self.max_concurrent, self.in_flight)
            self._notify()
            try:
                await self._answer(stream, receiver, request)
            except _CONNECTION_GONE:
                with self._lock:  # the client hung up; that is its right
                    self.hangups += 1
            finally:
                with self._lock:
                    self.in_flight -= 1
                self._notify()

    def _next_reply(self, request: RecordedRequest) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        return self.default(request) if callable(self.default) else self.default

    async def _answer(
        self, stream: SocketStream, receiver: BufferedByteReceiveStream, request: RecordedRequest
    ) -> None:
        if request.method == "GET" and request.path.rstrip("/") == "/v1/models":
            data = [_model_object(m) for m in self.models]
            await _send_json(stream, 200, {"object": "list", "data": data})
            return
        if request.method != "POST" or request.path.rstrip("/") != "/v1/chat/completions":
            message = f"no route for {request.method} {request.path}"
            await _send_json(stream, 404, _error_body(404, message))
            return

        reply = self._next_reply(request)
        if reply.hang:
            await _wait_for_hangup(receiver)
            return
        if reply.held:
            await self._wait_until(lambda: self._releases > 0)
            self._releases -= 1
        if reply.delay:
            await anyio.sleep(reply.delay)
        body = request.body if isinstance(request.body, dict) else {}
        if reply.body is not None or reply.status >= 400:
            payload = reply.body
            if payload is None:
                payload = _error_body(reply.status, reply.error)
            await _send_json(stream, reply.status, payload, reply.headers)
        elif body.get("stream") and not reply.plain:
            await self._stream(stream, receiver, reply, body)
        else:
            await _send_json(stream, reply.status, _completion(reply, body), reply.headers)

    async def _stream(
        self,
        stream: SocketStream,
        receiver: BufferedByteReceiveStream,
        reply: Reply,
        body: dict[str, Any],
    ) -> None:
        headers = {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"}
        await stream.send(_head(reply.status, {**headers, **reply.headers}))
        model = reply.model or body.get("model", "gpt-test")

        async def event(data: dict[str, Any] | str) -> None:
            text = data if isinstance(data, str) else json.dumps(data)
            await stream.send(_chunk(f"data: {text}\n\n".encode()))

        if reply.malformed:
            await stream.send(_chunk(MALFORMED_EVENT))
        else:
            pieces = reply.pieces()
            stream_pieces = (piece for _ in range(reply.repeat) for piece in pieces)
            for index, piece in enumerate(stream_pieces):
                if index and reply.chunk_delay:
                    await anyio.sleep(reply.chunk_delay)
                delta = {"content": piece} if index else {"role": "assistant", "content": piece}
                choice = {"index": 0, "delta": delta, "finish_reason": None}
                await event(_chunk_object(model, [choice]))
            for delta in _call_deltas(reply.tool_calls):
                await event(_chunk_object(model, [{"index": 0, "delta": delta,
                                                   "finish_reason": None}]))
            if reply.stall:
                await _wait_for_hangup(receiver)
                return
            if reply.cut:
                return  # no finishing chunk, no end of the chunked body
            if reply.finish_reason is not None:
                choice = {"index": 0, "delta": {}, "finish_reason": reply.finish_reason}
                await event(_chunk_object(model, [choice]))
            if (body.get("stream_options") or {}).get("include_usage"):
                usage = _usage(body, len(pieces) * reply.repeat)
                await event({**_chunk_object(model, []), "usage": usage})
        if reply.done:
            await event("[DONE]")
        await stream.send(b"0\r\n\r\n")


@asynccontextmanager
async def openai_server(
    *,
    default: Reply | Callable[[RecordedRequest], Reply] = echo,
    models: tuple[str, ...] = ("gpt-test",),
) -> AsyncIterator[OpenAIServer]:
    """Run a server as a task of the current event loop; it stops when the block exits."""
    server = OpenAIServer(default=default, models=models)
    async with anyio.create_task_group() as tg:
        await tg.start(server.run)
        try:
            yield server
        finally:
            tg.cancel_scope.cancel()


class ThreadedOpenAIServer:
    """A server running on its own thread; usable from synchronous test code."""

    def __init__(self, server: OpenAIServer, portal: BlockingPortal) -> None:
        self.server = server
        self._portal = portal

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.server.requests

    @property
    def in_flight(self) -> int:
        return self.server.in_flight

    @property
    def max_concurrent(self) -> int:
        return self.server.max_concurrent

    @property
    def pending(self) -> int:
        return self.server.pending

    @property
    def hangups(self) -> int:
        return self.server.hangups

    def enqueue(self, *replies: Reply) -> None:
        self.server.enqueue(*replies)

    def release(self) -> None:
        """Let one held reply answer (see ``Reply.held``)."""
        self._portal.call(self.server.release)

    def wait_for_requests(self, count: int = 1, timeout: float = 10.0) -> list[RecordedRequest]:
        """Block until ``count`` requests arrived; TimeoutError after ``timeout`` seconds."""
        return self._portal.call(_within, timeout, self.server.wait_for_requests, count)

    def wait_idle(self, timeout: float = 10.0) -> None:
        self._portal.call(_within, timeout, self.server.wait_idle)


@contextmanager
def openai_server_in_thread(
    *,
    default: Reply | Callable[[RecordedRequest], Reply] = echo,
    models: tuple[str, ...] = ("gpt-test",),
    backend: str = "asyncio",
) -> Iterator[ThreadedOpenAIServer]:
    """Run a server on a background thread with its own ``backend`` event loop."""
    with start_blocking_portal(backend) as portal:
        manager = openai_server(default=default, models=models)
        with portal.wrap_async_context_manager(manager) as server:
            yield ThreadedOpenAIServer(server, portal)


async def _within(seconds: float, func: Callable[..., Any], *args: Any) -> Any:
    with anyio.fail_after(seconds):
        return await func(*args)


# -- HTTP and wire format, as pure helpers -------------------------------------


async def _read_request(receiver: BufferedByteReceiveStream) -> RecordedRequest:
    head = await receiver.receive_until(b"\r\n\r\n", MAX_HEAD_BYTES)
    request_line, *header_lines = head.decode("latin-1").split("\r\n")
    method, target, _version = request_line.split(" ", 2)
    headers: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    raw = await receiver.receive_exactly(length) if length else b""
    try:
        body = json.loads(raw) if raw else None
    except ValueError:
        body = None
    return RecordedRequest(method, target.split("?", 1)[0], headers, body, raw)


async def _wait_for_hangup(receiver: BufferedByteReceiveStream) -> None:
    """Read and discard until the client closes the connection."""
    try:
        while True:
            await receiver.receive()
    except _CONNECTION_GONE:
        return


def _head(status: int, headers: dict[str, str]) -> bytes:
    reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Unknown"
    lines = [f"HTTP/1.1 {status} {reason}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def _send_json(
    stream: SocketStream, status: int, payload: Any, headers: dict[str, str] | None = None
) -> None:
    if isinstance(payload, bytes):
        data = payload
    elif isinstance(payload, str):
        data = payload.encode()
    else:
        data = json.dumps(payload).encode()
    base = {"Content-Type": "application/json", "Content-Length": str(len(data))}
    await stream.send(_head(status, {**base, **(headers or {})}) + data)


def _error_body(status: int, message: str | None) -> dict[str, Any]:
    kind, code = _ERROR_TYPES.get(status, ("server_error" if status >= 500 else "error", None))
    if message is None:
        message = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "error"
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _model_object(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": 0, "owned_by": "tests"}


def _chunk_object(model: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": choices,
    }


def _call_deltas(calls: list[Call]) -> list[dict[str, Any]]:
    """The stream's deltas for ``calls``: every call's head (id, name), then
    the first half of each one's arguments, then the second halves."""
    if not calls:
        return []
    heads = [{"index": i, "id": _call_id(c, i), "type": "function",
              "function": {"name": c.name, "arguments": ""}} for i, c in enumerate(calls)]
    deltas: list[dict[str, Any]] = [{"role": "assistant", "tool_calls": heads}]
    for half in (0, 1):
        for i, call in enumerate(calls):
            text = call.json_arguments()
            cut = len(text) // 2
            piece = text[:cut] if half == 0 else text[cut:]
            deltas.append({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
    return deltas


def _answer_message(reply: Reply, content: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": content or None}
    if reply.tool_calls:
        message["tool_calls"] = [
            {"id": _call_id(c, i), "type": "function",
             "function": {"name": c.name, "arguments": c.json_arguments()}}
            for i, c in enumerate(reply.tool_calls)]
    elif not content:
        message["content"] = ""
    return message


def _usage(body: dict[str, Any], completion_tokens: int) -> dict[str, int]:
    prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages") or [])
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
    }


def _completion(reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
    pieces = reply.pieces() * reply.repeat
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": reply.model or body.get("model", "gpt-test"),
        "choices": [
            {
                "index": 0,
                "message": _answer_message(reply, "".join(pieces)),
                "finish_reason": reply.finish_reason,
            }
        ],
        "usage": _usage(body, len(pieces)),
    }
