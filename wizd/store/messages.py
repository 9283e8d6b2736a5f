"""Queries over ``messages``.

``insert`` runs on every message sent and every reply
stored: DB-API through ``raw``, with ``:name`` params. History reads are
Core.
"""

from __future__ import annotations

import sqlite3
from typing import Any, TypedDict

from sqlalchemy import Connection, Select, func, select

from ..errors import Conflict
from ..objects import ConversationType, MessageKind
from .database import is_pg, raw
from .failures import constraint_error
from .postgres_keys import SEQ_LOCK
from .rows import every
from .schema import messages


class MessageRow(TypedDict):
    seq: int
    id: str
    source_type: ConversationType
    source_id: str
    author_id: str
    content: str
    kind: MessageKind
    reply_to: str | None
    created_at: int
    updated_at: int
    deleted_at: int | None
    truncated: int


def insert(
    conn: Connection, *, id: str, source_type: ConversationType, source_id: str,
    author_id: str, content: str, kind: MessageKind, reply_to: str | None, truncated: bool,
    now_ms: int,
) -> int:
    """Store a message inside the caller's transaction; returns its seq.

    Raises Conflict when a constraint refuses it: a second text reply by the
    same author to the same ``reply_to`` (the ``messages_one_reply`` index).
    SQLite undoes the refused statement only; the transaction goes on (on
    PostgreSQL, which would abort the transaction, the insert skips the row
    instead: ON CONFLICT DO NOTHING on that index).

    On PostgreSQL the seq is taken under a transaction-level advisory lock,
    held until the transaction ends: a transaction that stores a message
    commits before the next one can take a seq, so seq order is the order in
    which messages become visible, and a reader that saw seq N never finds
    a smaller one later (docs/architecture.md, "Engines").
    """
    if is_pg(conn):
        db = raw(conn)
        # One round trip (pipeline mode): the server takes the lock before it
        # runs the insert all the same.
        with db.conn.pipeline():
            db.execute(_SEQ_LOCK)
            inserted = db.execute(_INSERT_PG, {
                "id": id, "source_type": source_type, "source_id": source_id,
                "author_id": author_id, "content": content, "kind": kind, "reply_to": reply_to,
                "truncated": int(truncated), "now": now_ms})
        row = inserted.fetchone()
        if row is None:
            raise Conflict("this author already replied to that message")
        return int(row[0])
    try:
        cursor = raw(conn).execute(_INSERT, {
            "id": id, "source_type": source_type, "source_id": source_id,
            "author_id": author_id, "content": content, "kind": kind, "reply_to": reply_to,
            "truncated": int(truncated), "now": now_ms})
    except sqlite3.IntegrityError as exc:
        conflict = constraint_error(exc)
        assert conflict is not None
        raise conflict from exc
    return int(cursor.lastrowid)


_INSERT = ("INSERT INTO messages (id, source_type, source_id, author_id, content, kind, reply_to,"
           " truncated, created_at, updated_at) VALUES (:id, :source_type, :source_id,"
           " :author_id, :content, :kind, :reply_to, :truncated, :now, :now)")
_INSERT_PG = (_INSERT + " ON CONFLICT (reply_to, author_id)"
              " WHERE reply_to IS NOT NULL AND kind = 'text' DO NOTHING RETURNING seq")
_SEQ_LOCK = f"SELECT pg_advisory_xact_lock({SEQ_LOCK})"




def _live(conversation_id: str | None = None) -> Select[Any]:
    query = select(messages).where(messages.c.deleted_at.is_(None))
    if conversation_id is not None:
        query = query.where(messages.c.source_id == conversation_id)
    return query


def after(conn: Connection, conversation_id: str | None, after_seq: int,
          limit: int) -> list[MessageRow]:
    """Up to ``limit`` live messages with ``seq > after_seq``, in increasing seq, of
    one conversation or (None) of all."""
    return every(conn, _live(conversation_id).where(messages.c.seq > after_seq)
                 .order_by(messages.c.seq).limit(limit), MessageRow)


def newest(conn: Connection, conversation_id: str, limit: int) -> list[MessageRow]:
    """The newest ``limit`` live messages of a conversation, newest first."""
    return every(conn, _live(conversation_id).order_by(messages.c.seq.desc()).limit(limit),
                 MessageRow)


def page(conn: Connection, conversation_id: str, *, after_seq: int | None,
         before_seq: int | None, limit: int) -> list[MessageRow]:
    """Up to ``limit`` live messages of a conversation, walking messages_source
    (source_id, seq) from a cursor: after ``after_seq`` in increasing seq if
    given, else from the newest in decreasing seq; only those before
    ``before_seq`` if given."""
    query = _live(conversation_id)
    if before_seq is not None:
        query = query.where(messages.c.seq < before_seq)
    if after_seq is not None:
        query = query.where(messages.c.seq > after_seq).order_by(messages.c.seq)
    else:
        query = query.order_by(messages.c.seq.desc())
    return every(conn, query.limit(limit), MessageRow)


def max_seq(conn: Connection) -> int:
    """The greatest stored seq (0 when there is no message)."""
    return int(conn.execute(select(func.coalesce(func.max(messages.c.seq), 0))).scalar_one())
