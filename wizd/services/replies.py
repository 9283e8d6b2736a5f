"""The reply side of a conversation: what an agent needs to answer a message,
and storing its answer (or why it could not answer).

Sync functions over the caller's Connection: the reply job's processor loads
its inputs with ``load_inputs`` (a read), and its completion handler stores
the outcome with ``store_reply`` or ``store_error`` inside the transaction
that also finishes the job.

A reply job's data holds references only: ``conversation_id``,
``message_id`` (the trigger) and ``agent_id``. The provider's secret is
resolved here, when the job runs, and never leaves memory.

Every reply runs these queries, so they are plain SQL on the DB-API
connection (``raw``): SQLAlchemy's statement machinery costs ten times the
query here, and bench/concurrency_500.py is bound by the daemon's CPU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import Connection, select

from ..errors import Conflict, NotFound
from ..llm.base import ChatMessage, ChatRequest, ProviderConfig
from ..llm.context import ContextMessage, build_context
from ..objects import Message
from ..store.database import raw
from ..store.schema import agents
from . import conversations
from .messages import insert_message
from .providers import provider_config
from .runtime import new_id


@dataclass(frozen=True)
class ReplyInputs:
    """Everything one reply attempt needs, loaded when the attempt starts."""

    agent_id: str
    agent_name: str
    agent_user_id: str
    conversation: dict[str, Any]  # id, type (what insert_message needs)
    trigger_id: str
    provider: ProviderConfig  # holds the secret: never log or store this
    request: ChatRequest
    # The trigger as the model saw it, stored with the reply if the trigger has
    # no llm_message yet; None when it has one.
    trigger_llm: ChatMessage | None


@dataclass(frozen=True)
class Skip:
    """The job has nothing to do any more (the agent or the message is gone)."""

    reason: str


def load_inputs(
    conn: Connection, data: dict[str, Any], *, default_context: int, max_context_bytes: int,
    max_reply_bytes: int,
) -> ReplyInputs | Skip:
    """The agent, its provider (secret resolved now), and the context up to and
    including the trigger message, within ``max_context_bytes`` (see
    ``build_context``); the request asks for at most ``max_reply_bytes`` of reply.

    Returns Skip if the agent was deleted or deactivated, or the trigger
    deleted. Raises NotFound if the conversation or the agent's provider is gone.
    """
    db = raw(conn)
    found = db.execute(_AGENT, (data["agent_id"],)).fetchone()
    agent = None if found is None else _Agent(*found)
    if agent is None or agent.deleted_at is not None:
        return Skip("the agent was deleted")
    if agent.status == "inactive":
        return Skip("the agent is inactive")
    trigger = db.execute(_TRIGGER, (data["message_id"],)).fetchone()
    if trigger is None or trigger[2] is not None:
        return Skip("the message was deleted")
    trigger_id, trigger_seq = trigger[0], trigger[1]
    conversation = conversations.find(conn, data["conversation_id"])
    provider = provider_config(conn, agent.provider_id)
    limit = agent.context_messages or default_context
    history = _history(conn, conversation["id"], trigger_seq, limit, agent.user_id)
    context = build_context(agent_user_id=agent.user_id, system_prompt=agent.system_prompt,
                            history=history, limit=limit, max_bytes=max_context_bytes)
    request = ChatRequest(model=agent.model or provider.default_model, messages=context,
                          temperature=agent.temperature, max_tokens=agent.max_tokens,
                          max_reply_bytes=max_reply_bytes)
    last = context[-1] if len(context) > 1 else None
    trigger_llm = last if (
        last is not None and last.role == "user" and not _has_llm(conn, trigger_id)) else None
    return ReplyInputs(
        agent_id=agent.id, agent_name=agent.name, agent_user_id=agent.user_id,
        conversation={"id": conversation["id"], "type": conversation["type"]},
        trigger_id=trigger_id, provider=provider, request=request, trigger_llm=trigger_llm,
    )


class _Agent(NamedTuple):
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


_AGENT = f"SELECT {', '.join(_Agent._fields)} FROM agents WHERE id = ?"
_TRIGGER = "SELECT id, seq, deleted_at FROM messages WHERE id = ?"
_HAS_LLM = "SELECT 1 FROM llm_messages WHERE message_id = ?"


def _has_llm(conn: Connection, message_id: str) -> bool:
    return raw(conn).execute(_HAS_LLM, (message_id,)).fetchone() is not None


def _history(
    conn: Connection, conversation_id: str, upto_seq: int, limit: int, agent_user_id: str
) -> list[ContextMessage]:
    """The last ``limit`` non-error messages up to ``upto_seq``, oldest first."""
    rows = raw(conn).execute(_HISTORY, (conversation_id, upto_seq, limit)).fetchall()
    history = []
    for author_id, content, kind, author_name, llm_role, llm_content in reversed(rows):
        # A stored LLM form is written from its author's side: another agent's
        # reply is stored as "assistant", but to this agent it is a "user"
        # turn, so only this agent's own forms and "user" forms are reused.
        reuse = llm_role is not None and (author_id == agent_user_id or llm_role == "user")
        history.append(ContextMessage(
            author_id=author_id, author_name=author_name, content=content,
            kind=kind, llm_role=llm_role if reuse else None,
            llm_content=llm_content if reuse else None,
        ))
    return history


_HISTORY = (
    "SELECT m.author_id, m.content, m.kind, u.name, l.role, l.content"
    " FROM messages AS m JOIN users AS u ON u.id = m.author_id"
    " LEFT OUTER JOIN llm_messages AS l ON l.message_id = m.id"
    " WHERE m.source_id = ? AND m.seq <= ? AND m.deleted_at IS NULL AND m.kind != 'error'"
    " ORDER BY m.seq DESC LIMIT ?"
)


def existing_reply(conn: Connection, trigger_id: str, author_id: str) -> str | None:
    """The id of ``author_id``'s reply to ``trigger_id``, if it exists."""
    found = raw(conn).execute(_REPLY, (trigger_id, author_id)).fetchone()
    return None if found is None else str(found[0])


_REPLY = "SELECT id FROM messages WHERE reply_to = ? AND author_id = ? AND kind = 'text'"


def _add_llm_message(
    conn: Connection, message_id: str, role: str, content: str, now_ms: int,
    *, model: str | None = None, usage: dict[str, int] | None = None,
) -> None:
    usage = usage or {}
    raw(conn).execute(_INSERT_LLM, (
        new_id(), message_id, role, content, now_ms, now_ms, model,
        usage.get("prompt_tokens"), usage.get("completion_tokens")))


_INSERT_LLM = ("INSERT INTO llm_messages (id, message_id, role, content, created_at, updated_at,"
               " model, prompt_tokens, completion_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")


def store_reply(
    conn: Connection,
    *,
    conversation: dict[str, Any],
    agent_user_id: str,
    trigger_id: str,
    content: str,
    trigger_llm: ChatMessage | None,
    now_ms: int,
    truncated: bool = False,
    model: str | None = None,
    usage: dict[str, int] | None = None,
) -> Message | None:
    """Store the agent's reply with its llm_message (and the trigger's, if missing);
    ``truncated`` marks a reply cut off at ``max_reply_bytes``. The reply's
    llm_message keeps the ``model`` that answered and the tokens the provider
    counted (``usage``: prompt_tokens, completion_tokens; None if it said nothing).

    Returns the reply message, or None if this agent already replied to the
    trigger: a reply happens at most once per (trigger, agent), which the
    ``messages_one_reply`` unique index enforces even if this check were wrong.
    """
    if existing_reply(conn, trigger_id, agent_user_id) is not None:
        return None
    try:
        reply = insert_message(conn, conversation=conversation, author_id=agent_user_id,
                               content=content, reply_to=trigger_id, truncated=truncated,
                               now_ms=now_ms)
    except Conflict:  # the messages_one_reply index refused it
        # SQLite undoes only the failed statement; the transaction goes on.
        return None
    _add_llm_message(conn, reply["id"], "assistant", content, now_ms, model=model, usage=usage)
    if trigger_llm is not None and not _has_llm(conn, trigger_id):
        _add_llm_message(conn, trigger_id, trigger_llm.role, trigger_llm.content, now_ms)
    return reply


def agent_name(conn: Connection, agent_id: str) -> str | None:
    return conn.execute(select(agents.c.name).where(agents.c.id == agent_id)).scalar()


def store_error(
    conn: Connection, *, conversation_id: str, agent_id: str, trigger_id: str, content: str,
    now_ms: int,
) -> Message | None:
    """Store an error message (``kind: "error"``, ``reply_to`` = the trigger) from the
    agent; None if the agent or the conversation no longer exists.

    The one-reply index covers text replies only, so a retried job can still
    store the real reply after this.
    """
    agent = conn.execute(select(agents.c.user_id).where(agents.c.id == agent_id)).first()
    if agent is None:
        return None
    try:
        conversation = conversations.find(conn, conversation_id)
    except NotFound:
        return None
    return insert_message(conn, conversation=conversation, author_id=agent.user_id,
                          content=content, kind="error", reply_to=trigger_id, now_ms=now_ms)
