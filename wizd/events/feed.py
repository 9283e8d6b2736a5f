"""The forwarder of one subscription: stored history, then live events, to one client.

    Feed.run (in the connection's task group, once the response naming the
    subscription is written)
      1. history: stored messages of the scope with after_seq < seq <= split, in pages
      2. live: the buffer, in order, skipping message.created that history covered
      3. lagged (the buffer overflowed): events.lagged {last_seq}, and the end

How the split is taken so that history and live neither overlap nor leave a
gap is told in wizd/events/subscribe.py. ``message.created`` notifications of
one subscription go out in strictly increasing ``seq``.

Writing to a slow socket blocks only this forwarder (the hub never waits for
it); its buffer then fills and the hub drops the subscription as lagged.

When to write: an event goes out as soon as the subscription's previous
write is done (after one pass of the scheduler, in which its publisher may
add more), so an idle subscription's event (and each delta of a streamed
reply) leaves at once, and what queued meanwhile goes out in one write. Under
load, that is while at least ``hub.BUSY`` subscriptions have events waiting
(one message to 50 subscribers of a conversation), a write that carried
events is followed by a pause of at most ``hub.COALESCE`` (the floor of issue
10 pauses as long): the next few messages then share one write, and one
wake-up of the client, instead of costing one each. A lone subscription (a
person waiting for a reply) never pauses: a pause there would hold the
reply's ``message.created`` back behind the deltas and job events written
just before it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import anyio
import anyio.lowlevel

from .hub import Hub, Subscription
from .notifications import event_tail, head, lagged_line, params_tail

log = logging.getLogger(__name__)

# Stored messages per history query (and per socket write while replaying).
HISTORY_PAGE = 500
# Live events taken from the buffer at once, and bytes written in one send, at most.
MAX_BATCH = 256
MAX_BATCH_BYTES = 512 * 1024

# (after_seq, limit) -> the scope's stored messages with seq > after_seq, in
# increasing seq, at most ``limit``.
HistoryPage = Callable[[int, int], Awaitable[list[dict[str, Any]]]]


class LineSink(Protocol):
    """Where notifications go: wizd.rpc.server.ClientConnection."""

    closed: bool

    async def send_line(self, line: bytes) -> bool: ...


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

        Always detaches the subscription on the way out, then calls ``on_end``.
        """
        sub = self.sub
        try:
            await self.ready.wait()
            if self.after_seq is not None:
                await self._replay()
            if not sub.closed:
                await self._forward()
            if sub.lagged and not self.sink.closed:
                await self.sink.send_line(lagged_line(sub.id, sub.last_seq))
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
        line_head = self._heads.get(method)
        if line_head is None:
            line_head = self._heads[method] = head(method, self.sub.id)
        return line_head

    def _line(self, method: str, params: dict[str, Any]) -> bytes:
        return self._head(method) + params_tail(params)

    async def _forward(self) -> None:
        """Live events, in order, all that queued up in one write."""
        sub = self.sub
        while True:
            await sub.wait()
            # One pass of the scheduler before taking: the task that published
            # (a reply streaming its pieces) may publish more right away, and
            # those go out in the same write, one wake-up of the client fewer.
            await anyio.lowlevel.checkpoint()
            busy = self.hub.busy
            events = sub.take(MAX_BATCH)
            if not events:
                return  # closed
            lines: list[bytes] = []
            size = 0
            top = sub.last_seq
            for event in events:
                if event.seq is not None:
                    if event.seq <= top:
                        if event.seq > self._live_from:
                            # Published out of commit order: a publisher bug, not ours to hide.
                            log.error("%s: message seq %d arrived after seq %d; not sent",
                                      sub.id, event.seq, top)
                        continue
                    top = event.seq
                line = self._head(event.method) + event_tail(event)
                lines.append(line)
                size += len(line)
                if size >= MAX_BATCH_BYTES:
                    if not await self._send(b"".join(lines)):
                        return
                    sub.last_seq = top
                    lines.clear()
                    size = 0
            if lines and not await self._send(b"".join(lines)):
                return
            sub.last_seq = top
            if busy:
                await self.hub.pause()
