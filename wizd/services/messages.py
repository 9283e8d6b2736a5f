"""Messages: storing them, reading history by ``seq``, and triggering agents.

``seq`` (an AUTOINCREMENT key) grows with every stored message across the
daemon, so it is the cursor for history and for resuming a subscription.
``message.created`` is published from the write's ``after_commit`` hook;
hooks run in commit order, so subscribers see messages in ``seq`` order.

Who answers a message from a human:
- in a DM, every agent participant that is not inactive;
- in a channel, every agent (not inactive) mentioned as ``@name``, the name
  matched whole and case-insensitively (``@bob`` is not ``@bobby``; where two
  names start at one ``@``, the longer one wins).
A message written by an agent triggers no one, so agents never loop.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection

from ..errors import Conflict, InvalidInput
from ..events.hub import Event
from ..objects import Conversation, Message, MessageKind, MessageList, SentMessage
from ..store import agents as agent_store
from ..store import jobs as job_queries
from ..store import messages as store
from ..store.agents import Triggered
from ..store.messages import MessageRow
from . import agents as agent_service
from . import conversations
from .runtime import Runtime, new_id

MAX_CONTENT = 100_000
MAX_LIST = 1000
DEFAULT_LIST = 50
JOB_NAME = "response_generator"


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


def mentioned(content: str, names: list[str]) -> set[str]:
    """The names among ``names`` that ``content`` mentions as ``@name``."""
    longest: dict[int, str] = {}  # position of "@" -> the longest name mentioned there
    for name in names:
        pattern = re.compile(r"(?<![\w@])@" + re.escape(name) + r"(?!\w)", re.IGNORECASE)
        for match in pattern.finditer(content):
            current = longest.get(match.start())
            if current is None or len(name) > len(current):
                longest[match.start()] = name
    return set(longest.values())


def triggered_agents(
    conn: Connection, conversation: Conversation, author_id: str, content: str
) -> list[Triggered]:
    """The agents (``id``, ``name``) that must answer a message by ``author_id``,
    oldest first."""
    if store.author_type(conn, author_id) != "human":
        return []
    if conversation["type"] == "dm":
        return agent_store.dm_agents(conn, conversation["id"], author_id)
    if "@" not in content:  # mentions nobody
        return []
    candidates = agent_store.live_agents(conn, author_id)
    names = mentioned(content, [agent.name for agent in candidates])
    return [agent for agent in candidates if agent.name in names]


async def send(rt: Runtime, *, conversation_id: str, content: str) -> SentMessage:
    """Store a message from the local user and queue one reply job per agent it triggers.

    All in one transaction: the message and its jobs exist together or not at
    all. Returns ``{message, jobs: [job ids]}``. Raises InvalidInput (empty or
    over 100 000 characters), NotFound (no such conversation), Conflict
    (archived).
    """
    if not content.strip():
        raise InvalidInput("content", "must not be empty")
    if len(content) > MAX_CONTENT:
        raise InvalidInput("content", f"longer than {MAX_CONTENT} characters")
    author_id = rt.local_user_id
    now = rt.clock.now_ms()

    def q(conn: Connection) -> tuple[Message, list[dict[str, Any]], list[tuple[str, str]]]:
        conversation = conversations.find(conn, conversation_id)
        if conversation["archived"]:
            raise Conflict(f"the {conversation['type']} is archived", id=conversation_id)
        message = insert_message(conn, conversation=conversation, author_id=author_id,
                                 content=content, now_ms=now)
        added: list[dict[str, Any]] = []
        changed: list[tuple[str, str]] = []
        for agent in triggered_agents(conn, conversation, author_id, content):
            added.append(job_queries.add_job(
                conn, name=JOB_NAME,
                data={"conversation_id": conversation_id, "message_id": message["id"],
                      "agent_id": agent.id},
                now_ms=now, max_attempts=rt.config.max_attempts,
                group_key=f"{conversation_id}:{agent.id}",
            ))
            status = agent_service.refresh_status(conn, agent.id)
            if status is not None:
                changed.append((agent.id, status))
        return message, added, changed

    def announce(result: tuple[Message, Any, Any]) -> None:
        # Everything from the commit's hook: a claim of these jobs committed
        # right after this one publishes "active" after our "waiting", never before.
        message, added, changed = result
        rt.hub.publish(Event("message.created", {"message": message},
                             conversation_id=conversation_id, seq=message["seq"]))
        for job in added:
            rt.publish("job.updated", {"job": job}, conversation_id=conversation_id)
        for agent_id, status in changed:
            rt.publish("agent.status", {"agent_id": agent_id, "status": status},
                       conversation_id=conversation_id)

    message, added, _changed = await rt.db.write(q, after_commit=announce)
    if added:
        rt.wake_scheduler()
    return {"message": message, "jobs": [job["id"] for job in added]}


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
