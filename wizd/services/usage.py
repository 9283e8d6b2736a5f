"""Tokens the providers counted: per reply, and summed per agent and model.

A reply's llm_message keeps the model that answered and the provider's
``prompt_tokens`` and ``completion_tokens`` (migration 7; stored by
``replies.store_reply``). A provider that reports no usage leaves the counts
NULL: such replies are counted as ``unreported``, never as zero tokens. The
built-in offline provider reports words as its tokens. Replies stored before
migration 7 have no model recorded and are left out.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from ..errors import InvalidInput, NotFound
from ..objects import MessageUsage, UsageRow, UsageSummary
from ..store.database import raw
from .runtime import Runtime

__all__ = ["MAX_MESSAGES", "MessageUsage", "UsageRow", "UsageSummary", "of_messages", "summary"]

MAX_MESSAGES = 1000


async def summary(rt: Runtime, *, agent: str | None = None, since: int | None = None,
                  ) -> UsageSummary:
    """Replies and tokens per agent and model, by agent name then model; only
    ``agent``'s (id or name) if given, only replies created at or after
    ``since`` (ms) if given. Raises NotFound (agent), InvalidInput (since < 0)."""
    if since is not None and since < 0:
        raise InvalidInput("since", "must not be negative")

    def q(conn: Connection) -> UsageSummary:
        db = raw(conn)
        where, args = ["l.role = 'assistant'", "l.model IS NOT NULL"], []
        if agent is not None:
            found = db.execute(
                "SELECT id FROM agents WHERE deleted_at IS NULL AND (id = ? OR name = ?)"
                " ORDER BY id = ? DESC LIMIT 1", (agent, agent, agent)).fetchone()
            if found is None:
                raise NotFound("agent", agent)
            where.append("a.id = ?")
            args.append(found[0])
        if since is not None:
            where.append("m.created_at >= ?")
            args.append(since)
        rows = db.execute(
            "SELECT a.id, a.name, l.model, count(*), count(*) - count(l.completion_tokens),"
            " coalesce(sum(l.prompt_tokens), 0), coalesce(sum(l.completion_tokens), 0)"
            " FROM llm_messages AS l JOIN messages AS m ON m.id = l.message_id"
            " JOIN agents AS a ON a.user_id = m.author_id"
            f" WHERE {' AND '.join(where)}"
            " GROUP BY a.id, l.model ORDER BY a.name, a.id, l.model", args).fetchall()
        return {"usage": [_row(r) for r in rows]}

    return await rt.db.read(q)


def _row(r: Any) -> UsageRow:
    return {"agent_id": r[0], "agent_name": r[1], "model": r[2], "replies": r[3],
            "unreported": r[4], "prompt_tokens": r[5], "completion_tokens": r[6]}


async def of_messages(rt: Runtime, message_ids: list[str]) -> MessageUsage:
    """The model and tokens of each reply among ``message_ids`` (at most 1000)
    that has them; other ids are left out. Raises InvalidInput (too many)."""
    if len(message_ids) > MAX_MESSAGES:
        raise InvalidInput("message_ids", f"more than {MAX_MESSAGES}")
    if not message_ids:
        return {"usage": {}}

    def q(conn: Connection) -> MessageUsage:
        marks = ", ".join("?" * len(message_ids))
        rows = raw(conn).execute(
            "SELECT message_id, model, prompt_tokens, completion_tokens FROM llm_messages"
            f" WHERE model IS NOT NULL AND message_id IN ({marks})", message_ids).fetchall()
        return {"usage": {r[0]: {"model": r[1], "prompt_tokens": r[2],
                                 "completion_tokens": r[3]} for r in rows}}

    return await rt.db.read(q)
