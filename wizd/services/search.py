"""Full-text search over messages (``message.search``).

The index is ``messages_fts`` (FTS5 over ``messages.content``, rowid = seq;
migration 7), which triggers keep in step with the messages table inside the
transaction that changes a message. A search costs what FTS5's match and
ranking cost, then a look-up of the ``limit`` hits it keeps: it never reads
history that does not match.

The user's words are searched as words: each becomes an FTS5 phrase ("...",
quotes doubled), and a message must hold every one of them, in any order, so
text such as ``"hello`` or ``AND (`` just works; a word ending in ``*`` matches
the words it begins. ``raw=True`` hands the query to
FTS5 as written (``apples NOT pears``, ``app*``, ``NEAR(a b)``); its syntax
errors are InvalidInput.

Filters: ``conversation_id``; ``agent`` (id or name): messages the agent wrote,
anywhere, and every message of the DMs it takes part in; ``since``: messages
created at or after that time (ms).
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import Connection

from ..errors import InvalidInput, NotFound
from ..objects import SearchHit, SearchResults
from ..store.database import raw as raw_connection
from . import conversations
from .runtime import Runtime

__all__ = ["MAX_LIMIT", "SearchHit", "SearchResults", "search"]

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
SNIPPET_TOKENS = 12


def fts_query(words: str) -> str:
    """``words`` as an FTS5 query matching messages that hold every word; a
    word ending in ``*`` (``kanga*``) matches the words it begins."""
    return " ".join(_phrase(word) for word in words.split())


def _phrase(word: str) -> str:
    prefix = word.endswith("*") and word.strip("*") != ""
    word = word.rstrip("*") if prefix else word
    return '"' + word.replace('"', '""') + '"' + ("*" if prefix else "")


async def search(
    rt: Runtime,
    *,
    query: str,
    conversation_id: str | None = None,
    agent: str | None = None,
    since: int | None = None,
    limit: int = DEFAULT_LIMIT,
    raw: bool = False,
) -> SearchResults:
    """The best ``limit`` live messages matching ``query``, best first.

    Raises InvalidInput (an empty query, a raw query FTS5 cannot parse,
    ``limit`` outside 1..100, a negative ``since``) and NotFound (an unknown
    conversation or agent).
    """
    if not query.strip():
        raise InvalidInput("query", "must not be empty")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput("limit", f"must be between 1 and {MAX_LIMIT}")
    if since is not None and since < 0:
        raise InvalidInput("since", "must not be negative")
    match = query if raw else fts_query(query)

    def q(conn: Connection) -> SearchResults:
        where = ["messages_fts MATCH ?", "m.deleted_at IS NULL"]
        args: list[Any] = [match]
        if conversation_id is not None:
            conversations.find(conn, conversation_id)  # NotFound
            where.append("m.source_id = ?")
            args.append(conversation_id)
        if agent is not None:
            user_id = _agent_user(conn, agent)
            where.append("(m.author_id = ? OR m.source_id IN"
                         " (SELECT conversation_id FROM dm_participants WHERE user_id = ?))")
            args += [user_id, user_id]
        if since is not None:
            where.append("m.created_at >= ?")
            args.append(since)
        db = raw_connection(conn)
        try:
            ranked = db.execute(
                "SELECT m.seq, messages_fts.rank FROM messages_fts"
                " JOIN messages AS m ON m.seq = messages_fts.rowid"
                f" WHERE {' AND '.join(where)} ORDER BY messages_fts.rank LIMIT ?",
                (*args, limit)).fetchall()
        except sqlite3.OperationalError as exc:
            # Only a raw query can be malformed; quoted words always parse.
            raise InvalidInput("query", f"not valid FTS5 syntax ({exc}); "
                               "leave out raw to search for the words as written") from None
        return {"results": _hits(db, match, ranked)}

    return await rt.db.read(q)


def _agent_user(conn: Connection, ref: str) -> str:
    found = raw_connection(conn).execute(
        "SELECT user_id FROM agents WHERE deleted_at IS NULL AND (id = ? OR name = ?)"
        " ORDER BY id = ? DESC LIMIT 1", (ref, ref, ref)).fetchone()
    if found is None:
        raise NotFound("agent", ref)
    return str(found[0])


def _hits(db: Any, match: str, ranked: list[Any]) -> list[SearchHit]:
    """The details and snippets of the hits ``ranked`` ((seq, rank), best first)."""
    if not ranked:
        return []
    marks = ", ".join("?" * len(ranked))
    rows = db.execute(
        "SELECT m.seq, m.id, m.source_type, m.source_id, m.author_id, m.content, m.kind,"
        " m.reply_to, m.created_at, u.name,"
        f" snippet(messages_fts, 0, '[', ']', '…', {SNIPPET_TOKENS})"
        " FROM messages_fts JOIN messages AS m ON m.seq = messages_fts.rowid"
        " JOIN users AS u ON u.id = m.author_id"
        f" WHERE messages_fts MATCH ? AND messages_fts.rowid IN ({marks})",
        (match, *(seq for seq, _ in ranked))).fetchall()
    by_seq = {row[0]: row for row in rows}
    names = _conversation_names(db, {(row[2], row[3]) for row in rows})
    hits: list[SearchHit] = []
    for seq, rank in ranked:
        (_, mid, source_type, source_id, author_id, content, kind, reply_to, created_at,
         author_name, snippet) = by_seq[seq]
        hits.append({
            "message": {"id": mid, "seq": seq, "conversation_id": source_id,
                        "author_id": author_id, "content": content, "kind": kind,
                        "reply_to": reply_to, "created_at": created_at},
            "conversation": {"id": source_id, "type": source_type,
                             "name": names.get(source_id, "")},
            "author_name": author_name,
            "snippet": snippet,
            "score": float(rank),
        })
    return hits


def _conversation_names(db: Any, places: set[tuple[str, str]]) -> dict[str, str]:
    """Display names of the hits' conversations (a handful: one query each)."""
    names: dict[str, str] = {}
    for kind, cid in places:
        if kind == "dm":
            row = db.execute(
                "SELECT d.name, (SELECT group_concat(name, ', ') FROM (SELECT u.name"
                "   FROM dm_participants AS p JOIN users AS u ON u.id = p.user_id"
                "   WHERE p.conversation_id = d.id AND u.type = 'agent' ORDER BY u.name))"
                " FROM dm_conversations AS d WHERE d.id = ?", (cid,)).fetchone()
        else:
            row = db.execute(
                "SELECT p.name || '#' || c.name, NULL FROM project_channels AS c"
                " JOIN projects AS p ON p.id = c.project_id WHERE c.id = ?", (cid,)).fetchone()
        if row is not None:
            names[cid] = row[0] or row[1] or ""
    return names
