"""events.subscribe and events.unsubscribe: live notifications on this connection.

How a subscription is split between stored history and live events without a
gap or a duplicate is told in wizd/events/feed.py.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Connection

from ...errors import Conflict, InvalidInput, NotFound
from ...events.feed import Feed
from ...objects import Done, Subscribed
from ...services import conversations, messages
from ..registry import registry
from ..server import Call

# A connection's subscriptions, at most: each holds a bounded buffer, and this
# bounds how many one client can make.
MAX_PER_CONNECTION = 256


def _split(conn: Connection, conversation_id: str | None) -> int:
    """The newest stored seq (checking the conversation exists). Raises NotFound."""
    if conversation_id is not None:
        conversations.find(conn, conversation_id)
    return messages.max_seq(conn)


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
    rt, conn = call.rt, call.conn
    if after_seq is not None and after_seq < 0:
        raise InvalidInput("after_seq", "must be 0 or more")
    if len(conn.subscriptions) >= MAX_PER_CONNECTION:
        raise Conflict(f"at most {MAX_PER_CONNECTION} subscriptions per connection",
                       limit=MAX_PER_CONNECTION)
    assert conn.task_group is not None, "connections serve inside their task group"
    sub = rt.hub.create(conversation_id)
    # Registered first, so that a connection closing meanwhile ends it too.
    conn.subscriptions[sub.id] = sub
    try:
        # Hooks run in commit order: every message up to the split was published
        # before the attach (and is stored), every later one reaches the buffer.
        split = await rt.db.write(_split, conversation_id,
                                  after_commit=lambda m: rt.hub.attach(sub, m))
    except BaseException:
        conn.subscriptions.pop(sub.id, None)
        rt.hub.detach(sub)
        sub.receive.close()
        raise

    async def history(after: int, limit: int) -> list[dict[str, Any]]:
        # The feed takes plain dicts (it reads seq only): the Messages are ones.
        return cast("list[dict[str, Any]]", await rt.db.read(
            messages.history_after, conversation_id, after, limit))

    def forget() -> None:
        if conn.subscriptions.get(sub.id) is sub:
            del conn.subscriptions[sub.id]

    feed = Feed(conn, rt.hub, sub, split=split, after_seq=after_seq, history=history)
    conn.task_group.start_soon(feed.run, forget, name=f"feed {sub.id}")
    call.after_response.append(feed.ready.set)
    return {"subscription": sub.id}


@registry.method("events.unsubscribe")
async def events_unsubscribe(call: Call, subscription: str) -> Done:
    """End one of this connection's subscriptions; no notification of it follows
    the response. Raises NotFound for an id this connection does not hold."""
    sub = call.conn.subscriptions.pop(subscription, None)
    if sub is None:
        raise NotFound("subscription", subscription)
    call.rt.hub.detach(sub)
    return {"ok": True}
