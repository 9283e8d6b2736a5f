"""Small helpers shared by the service tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from wizd.events.hub import Event, Subscription
from wizd.services.runtime import Runtime


@contextmanager
def subscribed(rt: Runtime, conversation_id: str | None = None) -> Iterator[Subscription]:
    """A live hub subscription, detached and closed afterwards."""
    sub = rt.hub.create(conversation_id)
    rt.hub.attach(sub, 0)
    try:
        yield sub
    finally:
        rt.hub.detach(sub)


def drain(sub: Subscription) -> list[Event]:
    """Every event already buffered for ``sub``."""
    return sub.take()
