"""Queries of the reply feature (wizd.replies): who a message triggers, what a
reply needs, storing its llm_messages, and the pending replies that keep an
agent busy.

Every message and every reply job runs most of these, so they are plain SQL
on the DB-API connection (``raw``, named placeholders): SQLAlchemy's
statement machinery costs more than the query here. The few that run only
when a reply fails are Core expressions.

``pending_replies`` (migration 9) holds one row per reply job that has not
finished (waiting, delayed, paused or active), with its agent: an agent with
a row is busy. wizd.replies adds the row in the transaction that queues the
job and removes it in the one that finishes it, so the generic jobs table
needs no index on what its data says.
"""

from __future__ import annotations

from typing import NamedTuple

from sqlalchemy import Connection, select

from .database import later, raw
from .schema import agents


class TriggeredAgent(NamedTuple):
    """What triggering needs of an agent row."""

    id: str
    name: str


# Agents answer people only (an agent's message triggers no one): checked in
# the same statement as the agents.
_LIVE = ("a.deleted_at IS NULL AND a.status != 'inactive' AND a.user_id != :author_id"
         " AND EXISTS (SELECT 1 FROM users WHERE id = :author_id AND type = 'human')")
_DM_AGENTS = ("SELECT a.id, a.name FROM agents AS a JOIN dm_participants AS p"
              f" ON p.user_id = a.user_id WHERE p.conversation_id = :conversation_id AND {_LIVE}"
              " ORDER BY a.created_at, a.id")
_LIVE_AGENTS = f"SELECT a.id, a.name FROM agents AS a WHERE {_LIVE} ORDER BY a.created_at, a.id"


def dm_agents(conn: Connection, conversation_id: str, author_id: str) -> list[TriggeredAgent]:
    """The live agents (not inactive, not the author) taking part in a DM, oldest
    first, if the author is a person (none otherwise)."""
    rows = raw(conn).execute(_DM_AGENTS, {"conversation_id": conversation_id,
                                          "author_id": author_id})
    return [TriggeredAgent(*row) for row in rows]


def live_agents(conn: Connection, author_id: str) -> list[TriggeredAgent]:
    """Every live agent (not inactive, not the author), oldest first, if the
    author is a person (none otherwise)."""
    return [TriggeredAgent(*row)
            for row in raw(conn).execute(_LIVE_AGENTS, {"author_id": author_id})]


# -- pending replies: what makes an agent busy ------------------------------------------

# ON CONFLICT, not INSERT OR IGNORE: the same statement on PostgreSQL.
_ADD_PENDING = ("INSERT INTO pending_replies (job_id, agent_id)"
                " VALUES (:job_id, :agent_id) ON CONFLICT DO NOTHING")
_REMOVE_PENDING = "DELETE FROM pending_replies WHERE job_id = :job_id"
# One look-up in pending_replies_agent.
def add_pending(conn: Connection, job_id: str, agent_id: str) -> None:
    """Reply job ``job_id`` of ``agent_id`` is pending (again); a no-op if it was."""
    later(conn, _ADD_PENDING, {"job_id": job_id, "agent_id": agent_id})


def remove_pending(conn: Connection, job_id: str) -> None:
    """Reply job ``job_id`` has finished."""
    later(conn, _REMOVE_PENDING, {"job_id": job_id})


# busy iff a reply job of the agent has not finished; an inactive agent keeps
# its status. One statement (a round trip on PostgreSQL, on every triggering
# message and every reply's end); a row only when the status changed.
_BUSY_OR_ACTIVE = ("CASE WHEN EXISTS (SELECT 1 FROM pending_replies WHERE agent_id = :agent_id)"
                   " THEN 'busy' ELSE 'active' END")
_REFRESH_STATUS = (f"UPDATE agents SET status = {_BUSY_OR_ACTIVE} WHERE id = :agent_id"
                   f" AND status <> 'inactive' AND status <> {_BUSY_OR_ACTIVE} RETURNING status")


def refresh_agent_status(conn: Connection, agent_id: str) -> str | None:
    """Set the agent busy or active by its pending reply jobs; the new status
    if it changed, else None (also for an inactive or unknown agent)."""
    row = raw(conn).execute(_REFRESH_STATUS, {"agent_id": agent_id}).fetchone()
    return None if row is None else str(row[0])


# -- what a reply needs ----------------------------------------------------------------


class ReplyAgent(NamedTuple):
    """What a reply needs of an agent row (the columns of ``_AGENT``)."""

    id: str
    name: str
    user_id: str
    system_prompt: str
    provider_id: str
    model: str | None
    temperature: float | None
    max_tokens: int | None
    context_messages: int | None
    status: str
    deleted_at: int | None
    tools: str | None  # JSON list of server.tool patterns (migration 12)
    max_steps: int | None


class Trigger(NamedTuple):
    """The message a reply answers."""

    id: str
    seq: int
    deleted_at: int | None
    has_llm_message: bool  # its LLM form is stored (add_llm_message)


class HistoryRow(NamedTuple):
    """A message of the context, with its author's name and stored LLM form."""

    reply_to: str | None
    author_id: str
    content: str
    kind: str
    author_name: str
    llm_role: str | None
    llm_content: str | None


_AGENT = f"SELECT {', '.join(ReplyAgent._fields)} FROM agents WHERE id = :agent_id"
_TRIGGER = ("SELECT id, seq, deleted_at,"
            " EXISTS (SELECT 1 FROM llm_messages WHERE message_id = messages.id)"
            " FROM messages WHERE id = :message_id")
_HISTORY = (
    "SELECT m.reply_to, m.author_id, m.content, m.kind, u.name, l.role, l.content"
    " FROM messages AS m JOIN users AS u ON u.id = m.author_id"
    " LEFT OUTER JOIN llm_messages AS l ON l.message_id = m.id"
    " WHERE m.source_id = :conversation_id AND m.seq <= :upto_seq AND m.deleted_at IS NULL"
    " AND m.kind != 'error' ORDER BY m.seq DESC LIMIT :limit"
)


def reply_agent(conn: Connection, agent_id: str) -> ReplyAgent | None:
    found = raw(conn).execute(_AGENT, {"agent_id": agent_id}).fetchone()
    return None if found is None else ReplyAgent(*found)


def trigger(conn: Connection, message_id: str) -> Trigger | None:
    found = raw(conn).execute(_TRIGGER, {"message_id": message_id}).fetchone()
    return None if found is None else Trigger(found[0], found[1], found[2], bool(found[3]))


def newest_history(
    conn: Connection, conversation_id: str, upto_seq: int, limit: int
) -> list[HistoryRow]:
    """The last ``limit`` non-error messages up to ``upto_seq``, newest first."""
    rows = raw(conn).execute(_HISTORY, {"conversation_id": conversation_id,
                                        "upto_seq": upto_seq, "limit": limit})
    return [HistoryRow(*row) for row in rows]


# -- storing a reply ---------------------------------------------------------------------

_REPLY = ("SELECT id FROM messages"
          " WHERE reply_to = :trigger_id AND author_id = :author_id AND kind = 'text'")
_INSERT_LLM = ("INSERT INTO llm_messages (id, message_id, role, content, created_at, updated_at,"
               " model, prompt_tokens, completion_tokens) VALUES (:id, :message_id, :role,"
               " :content, :now, :now, :model, :prompt_tokens, :completion_tokens)")


def existing_reply(conn: Connection, trigger_id: str, author_id: str) -> str | None:
    """The id of ``author_id``'s reply to ``trigger_id``, if it exists."""
    found = raw(conn).execute(_REPLY, {"trigger_id": trigger_id,
                                       "author_id": author_id}).fetchone()
    return None if found is None else str(found[0])


# The same, unless the message has one already (one statement: a round trip
# on PostgreSQL).
_INSERT_LLM_ONCE = ("INSERT INTO llm_messages (id, message_id, role, content, created_at,"
                    " updated_at, model, prompt_tokens, completion_tokens) SELECT :id,"
                    " :message_id, :role, :content, :now, :now, :model, :prompt_tokens,"
                    " :completion_tokens WHERE NOT EXISTS"
                    " (SELECT 1 FROM llm_messages WHERE message_id = :message_id)")


def add_llm_message(
    conn: Connection, *, llm_id: str, message_id: str, role: str, content: str, now_ms: int,
    model: str | None = None, prompt_tokens: int | None = None,
    completion_tokens: int | None = None, unless_there: bool = False,
) -> None:
    """The LLM's view of a message (``unless_there``: only if it has none yet)."""
    later(conn, _INSERT_LLM_ONCE if unless_there else _INSERT_LLM, {
        "id": llm_id, "message_id": message_id, "role": role, "content": content,
        "now": now_ms, "model": model, "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens})


def agent_name(conn: Connection, agent_id: str) -> str | None:
    return conn.execute(select(agents.c.name).where(agents.c.id == agent_id)).scalar()


def agent_user_id(conn: Connection, agent_id: str) -> str | None:
    return conn.execute(select(agents.c.user_id).where(agents.c.id == agent_id)).scalar()
