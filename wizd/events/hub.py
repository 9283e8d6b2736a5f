"""The publish/subscribe hub.

Services publish after their transaction commits. ``message.created`` events
are published from the database's ``after_commit`` hooks, which run in
commit order, so they enter every buffer in ``seq`` order. Publishing never
blocks: each subscription has a bounded buffer, and a subscription whose
buffer is full is ended as *lagged* (its reader then tells
its client ``events.lagged`` with the last seq it delivered). A slow client
therefore costs the publisher nothing and memory stays bounded.

Scope: a subscription with a ``conversation_id`` gets only the events published
with that conversation id; one without gets every event.

The subscription's reader (``wizd.events.feed.Feed``) takes events out of
its buffer and stops as soon as the subscription is detached, for whatever
reason. The hub also tells readers when they are under load: many
subscriptions had events waiting after the last publish (one message to 50
subscribers of a conversation), where a lone subscription's burst (a reply
streamed to the person who asked) is not; and it keeps the one timer that
paused readers share (``pause``).
"""

from __future__ import annotations

import itertools
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import anyio

log = logging.getLogger(__name__)

# Subscriptions with events waiting from which the readers count as loaded.
# A reply streamed to the few people following one conversation never
# reaches it (its deltas must not wait for a pause: reply latency), while one
# message to a channel's many followers does (its writes should share a
# pause: fan-out). 8 sits between the two: more than the handful of clients
# a person runs (tail, chat, a script), fewer than a channel's audience.
BUSY = 8
# Under load, the pause after a write that carried events (the floor's).
COALESCE = 0.005


@dataclass(frozen=True)
class Event:
    method: str  # the notification's method, e.g. "message.created"
    params: dict[str, Any]  # its params, without "subscription"
    conversation_id: str | None = None
    seq: int | None = None  # set for message.created
    # Work that readers share, done once per event rather than once per
    # subscriber (the feed keeps the encoded notification here).
    memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(eq=False)
class Subscription:
    id: str
    conversation_id: str | None
    hub: Hub = field(repr=False)
    # Events published and not yet taken by the reader, oldest first; at most
    # ``hub.buffer``. A plain deque: publishing appends without a task switch.
    buffer: deque[Event] = field(default_factory=deque, repr=False)
    # The last message seq delivered (or known to be covered) to the client.
    last_seq: int = 0
    lagged: bool = False
    # The hub has a live buffer for this subscription: events enter it.
    attached: bool = False
    # Detached (unsubscribed, lagged, or its connection closed): it never
    # receives again, and attaching it is a no-op.
    closed: bool = False
    # Set when the buffer gets an event or the subscription closes, while the
    # reader waits for that.
    _wakeup: anyio.Event | None = field(default=None, repr=False)

    def matches(self, event: Event) -> bool:
        return self.conversation_id is None or event.conversation_id == self.conversation_id

    async def wait(self) -> None:
        """Return once the buffer holds an event or the subscription is closed."""
        while not self.buffer and not self.closed:
            self._wakeup = anyio.Event()
            await self._wakeup.wait()

    def take(self, limit: int | None = None) -> list[Event]:
        """The buffered events (up to ``limit``), oldest first; none once closed."""
        buffer = self.buffer
        if self.closed or not buffer:
            return []
        count = len(buffer) if limit is None else min(limit, len(buffer))
        taken = [buffer.popleft() for _ in range(count)]
        if not buffer:
            self.hub.pending -= 1
        return taken

    def _wake(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()
            self._wakeup = None


class Hub:
    """In-memory fan-out of events to subscriptions. All methods are synchronous."""

    def __init__(self, buffer: int = 1024) -> None:
        self.buffer = buffer
        self._subs: dict[str, Subscription] = {}
        self._ids = itertools.count(1)
        # Subscriptions whose buffer holds events not yet taken by their reader.
        self.pending = 0
        # ``pending`` as the last publish left it: how loaded the readers are.
        self.load = 0
        # The tick that paused readers wait for (see ``pause``).
        self._tick: anyio.Event | None = None

    def __len__(self) -> int:
        return len(self._subs)

    @property
    def busy(self) -> bool:
        """Many subscriptions had events waiting after the last publish."""
        return self.load >= BUSY

    async def pause(self) -> None:
        """Wait up to ``COALESCE``: until the end of the pause that the first
        reader to pause started. One timer for all paused readers, which then
        write together: a timer each would cost every reader a deadline and a
        cancel scope per pause, more than the write it delays."""
        tick = self._tick
        if tick is not None:
            await tick.wait()
            return
        tick = self._tick = anyio.Event()
        try:
            await anyio.sleep(COALESCE)
        finally:
            self._tick = None
            tick.set()

    def create(self, conversation_id: str | None) -> Subscription:
        """A new subscription, not yet receiving: ``attach`` starts the live feed."""
        return Subscription(f"sub-{next(self._ids)}", conversation_id, self)

    def attach(self, sub: Subscription, last_seq: int) -> int:
        """Start feeding ``sub``; call it where no publish can interleave (from an
        ``after_commit`` hook) so that ``last_seq`` splits history from live
        exactly. Returns the split: ``last_seq`` (a cluster's hub may move it
        up, wizd.cluster.bus).

        A subscription already detached (its connection closed while it was being
        set up) stays out of the hub.
        """
        if sub.closed:
            return last_seq
        sub.last_seq = last_seq
        sub.attached = True
        self._subs[sub.id] = sub
        return last_seq

    def detach(self, sub: Subscription) -> None:
        """End a subscription: its reader stops, what it had not taken is dropped.
        Idempotent."""
        self._subs.pop(sub.id, None)
        sub.attached = False
        if sub.closed:
            return
        sub.closed = True
        if sub.buffer:
            sub.buffer.clear()
            self.pending -= 1
        sub._wake()

    def publish(self, event: Event) -> None:
        overflowed: list[Subscription] = []
        for sub in self._subs.values():
            if sub.conversation_id is not None and event.conversation_id != sub.conversation_id:
                continue
            buffer = sub.buffer
            if not buffer:
                self.pending += 1
                buffer.append(event)
                sub._wake()
            elif len(buffer) < self.buffer:
                buffer.append(event)
            else:
                overflowed.append(sub)
        self.load = self.pending
        for sub in overflowed:
            sub.lagged = True
            log.warning("subscriber %s fell behind (buffer %d full); dropped",
                        sub.id, self.buffer)
            self.detach(sub)
