"""Messages: storing them, reading history by ``seq``.

``seq`` (an AUTOINCREMENT key) grows with every stored message across the
daemon, so it is the cursor for history and for resuming a subscription.
``message.created`` is published from the write's ``after_commit`` hook;
hooks run in commit order, so subscribers see messages in ``seq`` order.

Which agents a message triggers, and their reply jobs: ``wizd.replies.triggers``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from ..errors import Conflict, InvalidInput
from ..events.hub import Event
from ..objects import Message, MessageKind, MessageList, SentMessage
from ..replies import triggers
from ..store import messages as store
from ..store.messages import MessageRow
from . import checks, conversations
from .runtime import Runtime, new_id

MAX_CONTENT = 100_000
MAX_LIST = 1000
DEFAULT_LIST = 50


def public(row: MessageRow) -> Message:
    """A message row as the protocol shows it."""
    return {
        "id": row["id"],
        "seq": row["seq"],
        "conversation_id": row["source_id"],
        "source_type": row["source_type"],
        "source_id": row["source_id"],
        "author_id": row["author_id"],
        "content": row["content"],
        "kind": row["kind"],
        "reply_to": row["reply_to"],
        "truncated": bool(row["truncated"]),
        "created_at": row["created_at"],
    }


def insert_message(
    conn: Connection,
    *,
    conversation: Mapping[str, Any],
    author_id: str,
    content: str,
    kind: MessageKind = "text",
    reply_to: str | None = None,
    truncated: bool = False,
    now_ms: int,
) -> Message:
    """Store a message in ``conversation`` (a conversation dict: ``id``, ``type``)
    inside the caller's transaction; returns its public dict, ``seq`` included.
    ``truncated`` marks a reply cut off at ``max_reply_bytes``.

    A second reply by the same author to the same ``reply_to`` violates the
    ``messages_one_reply`` unique index (Conflict): replies happen once.
    """
    message_id = new_id()
    seq = store.insert(conn, id=message_id, source_type=conversation["type"],
                       source_id=conversation["id"], author_id=author_id, content=content,
                       kind=kind, reply_to=reply_to, truncated=truncated, now_ms=now_ms)
    return {
        "id": message_id,
        "seq": seq,
        "conversation_id": conversation["id"],
        "source_type": conversation["type"],
        "source_id": conversation["id"],
        "author_id": author_id,
        "content": content,
        "kind": kind,
        "reply_to": reply_to,
        "truncated": truncated,
        "created_at": now_ms,
    }


def history_after(
    conn: Connection, conversation_id: str | None, after_seq: int, limit: int
) -> list[Message]:
    """Up to ``limit`` messages with ``seq > after_seq``, in increasing seq, of one
    conversation or (``conversation_id=None``) of all."""
    return [public(r) for r in store.after(conn, conversation_id, after_seq, limit)]


def newest(conn: Connection, conversation_id: str, limit: int) -> list[Message]:
    """The newest ``limit`` messages of a conversation, in increasing seq."""
    return [public(r) for r in reversed(store.newest(conn, conversation_id, limit))]


def max_seq(conn: Connection) -> int:
    """The greatest stored seq (0 when there is no message)."""
    return store.max_seq(conn)


async def send(rt: Runtime, *, conversation_id: str, content: str) -> SentMessage:
    """Store a message from the local user and queue one reply job per agent it triggers.

    All in one transaction: the message and its jobs exist together or not at
    all. Returns ``{message, jobs: [job ids]}``. Raises InvalidInput (empty or
    over 100 000 characters), NotFound (no such conversation), Conflict
    (archived).
    """
    if not content.strip():
        raise InvalidInput("content", "must not be empty")
    content = checks.text("content", content, max_len=MAX_CONTENT)
    author_id = rt.local_user_id
    now = rt.clock.now_ms()

    def q(conn: Connection) -> tuple[Message, triggers.Queued]:
        conversation = conversations.find(conn, conversation_id)
        if conversation["archived"]:
            raise Conflict(f"the {conversation['type']} is archived", id=conversation_id)
        message = insert_message(conn, conversation=conversation, author_id=author_id,
                                 content=content, now_ms=now)
        return message, triggers.queue_replies(
            conn, conversation=conversation, message=message,
            max_attempts=rt.config.max_attempts, now_ms=now)

    def announce(result: tuple[Message, triggers.Queued]) -> None:
        # Everything from the commit's hook: a claim of these jobs committed
        # right after this one publishes "active" after our "waiting", never before.
        message, queued = result
        rt.hub.publish(Event("message.created", {"message": message},
                             conversation_id=conversation_id, seq=message["seq"]))
        for event in queued.events():
            rt.hub.publish(event)

    message, queued = await rt.db.write(q, after_commit=announce)
    if queued.jobs:
        rt.scheduler.wake()
    return {"message": message, "jobs": [job["id"] for job in queued.jobs]}


def page(
    conn: Connection, conversation_id: str, *, after_seq: int | None, before_seq: int | None,
    limit: int,
) -> MessageList:
    """A page of one conversation's messages in increasing seq: with ``after_seq``
    the first ``limit`` after it, else the newest ``limit``; either way only
    those before ``before_seq`` if given. Walks messages_source (source_id,
    seq) from the cursor, so its cost does not grow with the history."""
    rows = store.page(conn, conversation_id, after_seq=after_seq, before_seq=before_seq,
                      limit=limit + 1)
    found = [public(r) for r in rows[:limit]]
    return {"messages": found if after_seq is not None else found[::-1],
            "has_more": len(rows) > limit}


async def list_page(
    rt: Runtime, *, conversation_id: str, after_seq: int | None = None,
    before_seq: int | None = None, limit: int = DEFAULT_LIST,
) -> MessageList:
    """``page`` (message.list), once the conversation is found.

    Raises InvalidInput (limit outside 1..1000, a negative seq), NotFound.
    """
    if not 1 <= limit <= MAX_LIST:
        raise InvalidInput("limit", f"must be between 1 and {MAX_LIST}")
    for name, seq in (("after_seq", after_seq), ("before_seq", before_seq)):
        if seq is not None and seq < 0:
            raise InvalidInput(name, "must not be negative")

    def q(conn: Connection) -> MessageList:
        conversations.find(conn, conversation_id)
        return page(conn, conversation_id, after_seq=after_seq, before_seq=before_seq,
                    limit=limit)

    return await rt.db.read(q)


async def list_messages(
    rt: Runtime, *, conversation_id: str, after_seq: int | None = None, limit: int = DEFAULT_LIST
) -> list[Message]:
    """The messages of ``list_page``. Raises InvalidInput, NotFound."""
    found = await list_page(rt, conversation_id=conversation_id, after_seq=after_seq,
                            limit=limit)
    return found["messages"]
