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

The subscription's reader (``wizd.events.feed.Feed``) owns the receive end and
stops as soon as the subscription is detached, for whatever reason.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

log = logging.getLogger(__name__)


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
    receive: MemoryObjectReceiveStream[Event]
    _send: MemoryObjectSendStream[Event] = field(repr=False)
    # The last message seq delivered (or known to be covered) to the client.
    last_seq: int = 0
    lagged: bool = False
    # The hub has a live buffer for this subscription: events enter it.
    attached: bool = False
    # Detached (unsubscribed, lagged, or its connection closed): it never
    # receives again, and attaching it is a no-op.
    closed: bool = False

    def matches(self, event: Event) -> bool:
        return self.conversation_id is None or event.conversation_id == self.conversation_id


class Hub:
    """In-memory fan-out of events to subscriptions. All methods are synchronous."""

    def __init__(self, buffer: int = 1024) -> None:
        self.buffer = buffer
        self._subs: dict[str, Subscription] = {}
        self._ids = itertools.count(1)

    def __len__(self) -> int:
        return len(self._subs)

    def create(self, conversation_id: str | None) -> Subscription:
        """A new subscription, not yet receiving: ``attach`` starts the live feed."""
        send, receive = anyio.create_memory_object_stream[Event](self.buffer)
        return Subscription(f"sub-{next(self._ids)}", conversation_id, receive, send)

    def attach(self, sub: Subscription, last_seq: int) -> None:
        """Start feeding ``sub``; call it where no publish can interleave (from an
        ``after_commit`` hook) so that ``last_seq`` splits history from live exactly.

        A subscription already detached (its connection closed while it was being
        set up) stays out of the hub.
        """
        if sub.closed:
            return
        sub.last_seq = last_seq
        sub.attached = True
        self._subs[sub.id] = sub

    def detach(self, sub: Subscription) -> None:
        """End a subscription: its reader sees the end of its stream. Idempotent."""
        self._subs.pop(sub.id, None)
        sub.closed = True
        sub.attached = False
        sub._send.close()

    def publish(self, event: Event) -> None:
        for sub in list(self._subs.values()):
            if not sub.matches(event):
                continue
            try:
                sub._send.send_nowait(event)
            except anyio.WouldBlock:
                sub.lagged = True
                log.warning("subscriber %s fell behind (buffer %d full); dropped",
                            sub.id, self.buffer)
                self.detach(sub)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                self.detach(sub)
