"""events.subscribe and events.unsubscribe: live notifications on this connection.

The subscription itself (the split between history and live, the feed) lives
in wizd/events/.
"""

from __future__ import annotations

from ...events import subscribe as subscriptions
from ...objects import Done, Subscribed
from ..registry import registry
from ..server import Call


@registry.method("events.subscribe")
async def events_subscribe(
    call: Call, conversation_id: str | None = None, after_seq: int | None = None
) -> Subscribed:
    """Receive events as JSON-RPC notifications on this connection.

    With ``conversation_id``, only that conversation's events; without, every
    event. With ``after_seq``, first every stored message of the scope with a
    greater seq (as ``message.created``), then live events: no gap, no
    duplicate. The response comes before the subscription's first
    notification. A subscriber whose buffer overflows gets ``events.lagged``
    with its last delivered seq and is dropped. Raises NotFound for an unknown
    conversation.
    """
    feed = await subscriptions.subscribe(call.rt, call.conn, conversation_id, after_seq)
    call.after_response.append(feed.ready.set)
    return {"subscription": feed.sub.id}


@registry.method("events.unsubscribe")
async def events_unsubscribe(call: Call, subscription: str) -> Done:
    """End one of this connection's subscriptions; no notification of it follows
    the response. Raises NotFound for an id this connection does not hold."""
    subscriptions.unsubscribe(call.rt, call.conn, subscription)
    return {"ok": True}
