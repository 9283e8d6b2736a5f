"""The forwarder of one subscription: stored history, then live events, to one client.

    events.subscribe
      ├── hub.create(scope)
      ├── db.write(max_seq, after_commit=hub.attach)   in commit order: the split m
      │       every message with seq <= m is stored; every later one enters the buffer
      ├── respond {subscription}                       then Feed.ready is set
      └── Feed.run (in the connection's task group)
            1. history: stored messages of the scope with after_seq < seq <= m, in pages
            2. live: the buffer, in order, skipping message.created it already covered
            3. lagged (the buffer overflowed): events.lagged {last_seq}, and the end

So ``message.created`` notifications of one subscription go out in strictly
increasing ``seq`` with no gap and no duplicate between history and live.

Writing to a slow socket blocks only this forwarder (the hub never waits for
it); its buffer then fills and the hub drops the subscription as lagged.

Hot path: an event is JSON-encoded once, whatever the number of subscribers
(``Event.memo``); each subscriber only splices its subscription id in, and
events that are ready together are written in one socket send.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import anyio

from .hub import Event, Hub, Subscription

log = logging.getLogger(__name__)

# Stored messages per history query (and per socket write while replaying).
HISTORY_PAGE = 500
# Live events (and bytes) written in one socket send, at most.
MAX_BATCH = 256
MAX_BATCH_BYTES = 512 * 1024
# No timer: an event goes out as soon as the previous write of its
# subscription is done, so an idle subscription's event (and each delta of a
# streamed reply) leaves at once. Coalescing comes from the load itself:
# events that arrive while a write is in flight, or while the loop is busy
# elsewhere, go out together in the next write (bench/vs_floor.py: a 5-20 ms
# timer here cost a reply ~20 ms on its way to the client).

# (after_seq, limit) -> the scope's stored messages with seq > after_seq, in
# increasing seq, at most ``limit``.
HistoryPage = Callable[[int, int], Awaitable[list[dict[str, Any]]]]


class LineSink(Protocol):
    """Where notifications go: wizd.rpc.server.ClientConnection."""

    closed: bool

    async def send_line(self, line: bytes) -> bool: ...


def _json(value: Any) -> bytes:
    # The same encoding as wizd.rpc.dispatch.encode: compact, UTF-8.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _params_tail(params: dict[str, Any]) -> bytes:
    """What follows the subscription id in a notification line with ``params``."""
    if not params:
        return b"}}\n"
    return b"," + _json(params)[1:] + b"}\n"


def _head(method: str, subscription: str) -> bytes:
    return (b'{"jsonrpc":"2.0","method":' + _json(method)
            + b',"params":{"subscription":' + _json(subscription))


def _event_tail(event: Event) -> bytes:
    # Computed by the first subscriber that sends the event, reused by the others.
    tail = event.memo.get("tail")
    if tail is None:
        tail = event.memo["tail"] = _params_tail(event.params)
    return tail  # type: ignore[no-any-return]


def notification_line(event: Event, subscription: str) -> bytes:
    """The framed JSON-RPC notification of ``event`` for one subscription.

    Equal, as JSON, to encoding ``{"jsonrpc", "method", "params": {"subscription",
    **event.params}}``; the params are encoded once per event, not per subscriber.
    """
    return _head(event.method, subscription) + _event_tail(event)


class Feed:
    """Forwards one subscription to its connection; see the module docstring.

    ``split`` is the max seq read when the subscription was attached; ``after_seq``
    the client's cursor (None: live events only).
    """

    def __init__(
        self,
        sink: LineSink,
        hub: Hub,
        sub: Subscription,
        *,
        split: int,
        after_seq: int | None,
        history: HistoryPage,
    ) -> None:
        self.sink = sink
        self.hub = hub
        self.sub = sub
        self.split = split
        self.after_seq = after_seq
        self.history = history
        # Set once the response to events.subscribe has been written.
        self.ready = anyio.Event()
        # The last seq delivered, or known to be covered: the resume cursor.
        sub.last_seq = after_seq if after_seq is not None else split
        # Live message.created at or below this were covered before going live.
        self._live_from = max(split, after_seq or 0)
        # Per-method line heads with this subscription's id already in.
        self._heads: dict[str, bytes] = {}

    async def run(self, on_end: Callable[[], None] | None = None) -> None:
        """Forward until the subscription is detached or the client goes away.

        Always detaches the subscription and closes its buffer on the way out,
        then calls ``on_end``.
        """
        sub = self.sub
        try:
            with sub.receive:
                await self.ready.wait()
                if self.after_seq is not None:
                    await self._replay()
                if not sub.closed:
                    await self._forward()
                if sub.lagged and not self.sink.closed:
                    await self.sink.send_line(_json({
                        "jsonrpc": "2.0",
                        "method": "events.lagged",
                        "params": {"subscription": sub.id, "last_seq": sub.last_seq},
                    }) + b"\n")
        finally:
            self.hub.detach(sub)
            if on_end is not None:
                on_end()

    async def _send(self, data: bytes) -> bool:
        # No await between this check and the send queueing on the connection's
        # lock: once unsubscribe has detached us, nothing more is written.
        if self.sub.closed:
            return False
        return await self.sink.send_line(data)

    async def _replay(self) -> None:
        """Stored messages with after_seq < seq <= split, in pages."""
        sub = self.sub
        after = sub.last_seq
        while after < self.split and not sub.closed:
            page = [m for m in await self.history(after, HISTORY_PAGE) if m["seq"] <= self.split]
            if not page:
                break
            lines = b"".join(self._line("message.created", {"message": m}) for m in page)
            if not await self._send(lines):
                return
            after = sub.last_seq = page[-1]["seq"]
        if not sub.closed:
            # Every message of the scope up to the split has been delivered.
            sub.last_seq = max(sub.last_seq, self.split)

    def _head(self, method: str) -> bytes:
        head = self._heads.get(method)
        if head is None:
            head = self._heads[method] = _head(method, self.sub.id)
        return head

    def _line(self, method: str, params: dict[str, Any]) -> bytes:
        return self._head(method) + _params_tail(params)

    async def _forward(self) -> None:
        """Live events, in order, several per socket write when they queue up."""
        sub = self.sub
        receive = sub.receive
        covered = sub.last_seq
        while True:
            try:
                event = await receive.receive()
            except (anyio.EndOfStream, anyio.ClosedResourceError):
                return
            lines: list[bytes] = []
            size = 0
            top = covered
            ended = False
            while True:
                line = None
                if event.seq is None:
                    line = self._head(event.method) + _event_tail(event)
                elif event.seq > top:
                    top = event.seq
                    line = self._head(event.method) + _event_tail(event)
                elif event.seq > self._live_from:
                    # Published out of commit order: a publisher bug, not ours to hide.
                    log.error("%s: message seq %d arrived after seq %d; not sent",
                              sub.id, event.seq, top)
                if line is not None:
                    lines.append(line)
                    size += len(line)
                    if len(lines) >= MAX_BATCH or size >= MAX_BATCH_BYTES:
                        break
                try:
                    event = receive.receive_nowait()
                except anyio.WouldBlock:
                    break
                except (anyio.EndOfStream, anyio.ClosedResourceError):
                    ended = True
                    break
            if lines and not await self._send(b"".join(lines)):
                return
            covered = sub.last_seq = top
            if ended:
                return
