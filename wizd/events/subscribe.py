"""Subscribing a connection: the split between stored history and live events.

    subscribe(rt, conn, conversation_id, after_seq)
      ├── hub.create(scope), held by the connection (its closing ends it)
      ├── db.write(max seq, after_commit=hub.attach)    in commit order: the split m
      │       every message with seq <= m is stored; every later one enters the buffer
      ├── Feed.run started in the connection's task group, waiting on Feed.ready
      └── the caller writes the response {subscription}, then sets Feed.ready

``after_commit`` hooks run in commit order, and ``message.created`` is
published from them, so each message is either at or below the split (and
stored, for the feed's history pages) or above it (and in the buffer): no gap,
no duplicate. The feed (wizd/events/feed.py) skips live messages that its
history already covered.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

import anyio.abc
from sqlalchemy import Connection

from ..errors import Conflict, InvalidInput, NotFound
from ..services import conversations, messages
from ..services.runtime import Runtime
from .feed import Feed
from .hub import Subscription

# A connection's subscriptions, at most: each holds a bounded buffer, and this
# bounds how many one client can make.
MAX_PER_CONNECTION = 256


class Subscriber(Protocol):
    """The connection subscriptions belong to: wizd.rpc.server.ClientConnection,
    which detaches every subscription it holds when it closes."""

    closed: bool
    subscriptions: dict[str, Subscription]
    task_group: anyio.abc.TaskGroup | None

    async def send_line(self, line: bytes) -> bool: ...


def _split(conn: Connection, conversation_id: str | None) -> int:
    """The newest stored seq (checking the conversation exists). Raises NotFound."""
    if conversation_id is not None:
        conversations.find(conn, conversation_id)
    return messages.max_seq(conn)


async def subscribe(
    rt: Runtime, conn: Subscriber, conversation_id: str | None, after_seq: int | None
) -> Feed:
    """Attach a new subscription of ``conn`` and start its feed, which writes
    nothing until ``feed.ready`` is set (once the response naming it is out).

    Raises InvalidInput for a negative ``after_seq``, Conflict past
    ``MAX_PER_CONNECTION``, NotFound for an unknown conversation.
    """
    if after_seq is not None and after_seq < 0:
        raise InvalidInput("after_seq", "must be 0 or more")
    if len(conn.subscriptions) >= MAX_PER_CONNECTION:
        raise Conflict(f"at most {MAX_PER_CONNECTION} subscriptions per connection",
                       limit=MAX_PER_CONNECTION)
    assert conn.task_group is not None, "connections serve inside their task group"
    sub = rt.hub.create(conversation_id)
    # Held first, so that a connection closing meanwhile ends it too.
    conn.subscriptions[sub.id] = sub
    splits: list[int] = []
    try:
        await rt.db.write(_split, conversation_id,
                          after_commit=lambda m: splits.append(rt.hub.attach(sub, m)))
        split = splits[0]
    except BaseException:
        conn.subscriptions.pop(sub.id, None)
        rt.hub.detach(sub)
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
    return feed


def unsubscribe(rt: Runtime, conn: Subscriber, subscription: str) -> None:
    """End one of ``conn``'s subscriptions: nothing of it is written after this.
    Raises NotFound for an id ``conn`` does not hold."""
    sub = conn.subscriptions.pop(subscription, None)
    if sub is None:
        raise NotFound("subscription", subscription)
    rt.hub.detach(sub)
