"""The reply side of a conversation: what an agent needs to answer a message,
and storing its answer (or why it could not answer).

Sync functions over the caller's Connection: the reply job's processor loads
its inputs with ``load_inputs`` (a read), and its completion handler stores
the outcome with ``store_reply`` or ``store_error`` inside the transaction
that also finishes the job.

A reply job's data holds references only: ``conversation_id``,
``message_id`` (the trigger) and ``agent_id``. The provider's secret is
resolved here, when the job runs, and never leaves memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from ..errors import NotFound
from ..llm.base import ChatMessage, ChatRequest, ProviderConfig
from ..llm.context import ContextMessage, build_context
from ..store.schema import agents, llm_messages, messages, users
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
    conn: Connection, data: dict[str, Any], *, default_context: int
) -> ReplyInputs | Skip:
    """The agent, its provider (secret resolved now), and the context up to and
    including the trigger message.

    Returns Skip if the agent was deleted or deactivated, or the trigger
    deleted. Raises NotFound if the conversation or the agent's provider is gone.
    """
    agent = conn.execute(select(agents).where(agents.c.id == data["agent_id"])).first()
    if agent is None or agent.deleted_at is not None:
        return Skip("the agent was deleted")
    if agent.status == "inactive":
        return Skip("the agent is inactive")
    trigger = conn.execute(select(messages).where(messages.c.id == data["message_id"])).first()
    if trigger is None or trigger.deleted_at is not None:
        return Skip("the message was deleted")
    conversation = conversations.find(conn, data["conversation_id"])
    provider = provider_config(conn, agent.provider_id)
    limit = agent.context_messages or default_context
    history = _history(conn, conversation["id"], trigger.seq, limit, agent.user_id)
    context = build_context(agent_user_id=agent.user_id, system_prompt=agent.system_prompt,
                            history=history, limit=limit)
    request = ChatRequest(model=agent.model or provider.default_model, messages=context,
                          temperature=agent.temperature, max_tokens=agent.max_tokens)
    has_llm = conn.execute(select(llm_messages.c.id)
                           .where(llm_messages.c.message_id == trigger.id)).first() is not None
    last = context[-1] if len(context) > 1 else None
    trigger_llm = last if (not has_llm and last is not None and last.role == "user") else None
    return ReplyInputs(
        agent_id=agent.id, agent_name=agent.name, agent_user_id=agent.user_id,
        conversation={"id": conversation["id"], "type": conversation["type"]},
        trigger_id=trigger.id, provider=provider, request=request, trigger_llm=trigger_llm,
    )


def _history(
    conn: Connection, conversation_id: str, upto_seq: int, limit: int, agent_user_id: str
) -> list[ContextMessage]:
    """The last ``limit`` non-error messages up to ``upto_seq``, oldest first."""
    rows = conn.execute(
        select(messages.c.author_id, messages.c.content, messages.c.kind,
               users.c.name.label("author_name"),
               llm_messages.c.role.label("llm_role"), llm_messages.c.content.label("llm_content"))
        .join(users, users.c.id == messages.c.author_id)
        .outerjoin(llm_messages, llm_messages.c.message_id == messages.c.id)
        .where(messages.c.source_id == conversation_id, messages.c.seq <= upto_seq,
               messages.c.deleted_at.is_(None), messages.c.kind != "error")
        .order_by(messages.c.seq.desc()).limit(limit)
    ).all()
    history = []
    for row in reversed(rows):
        # A stored LLM form is written from its author's side: another agent's
        # reply is stored as "assistant", but to this agent it is a "user"
        # turn, so only this agent's own forms and "user" forms are reused.
        reuse = row.llm_role is not None and (
            row.author_id == agent_user_id or row.llm_role == "user")
        history.append(ContextMessage(
            author_id=row.author_id, author_name=row.author_name, content=row.content,
            kind=row.kind, llm_role=row.llm_role if reuse else None,
            llm_content=row.llm_content if reuse else None,
        ))
    return history


def existing_reply(conn: Connection, trigger_id: str, author_id: str) -> str | None:
    """The id of ``author_id``'s reply to ``trigger_id``, if it exists."""
    found = conn.execute(select(messages.c.id).where(
        messages.c.reply_to == trigger_id, messages.c.author_id == author_id,
        messages.c.kind == "text")).scalar()
    return None if found is None else str(found)


def _add_llm_message(
    conn: Connection, message_id: str, role: str, content: str, now_ms: int
) -> None:
    conn.execute(llm_messages.insert().values(
        id=new_id(), message_id=message_id, role=role, content=content,
        created_at=now_ms, updated_at=now_ms))


def store_reply(
    conn: Connection,
    *,
    conversation: dict[str, Any],
    agent_user_id: str,
    trigger_id: str,
    content: str,
    trigger_llm: ChatMessage | None,
    now_ms: int,
) -> dict[str, Any] | None:
    """Store the agent's reply with its llm_message (and the trigger's, if missing).

    Returns the reply message, or None if this agent already replied to the
    trigger: a reply happens at most once per (trigger, agent), which the
    ``messages_one_reply`` unique index enforces even if this check were wrong.
    """
    if existing_reply(conn, trigger_id, agent_user_id) is not None:
        return None
    try:
        reply = insert_message(conn, conversation=conversation, author_id=agent_user_id,
                               content=content, reply_to=trigger_id, now_ms=now_ms)
    except IntegrityError:
        # SQLite undoes only the failed statement; the transaction goes on.
        return None
    _add_llm_message(conn, reply["id"], "assistant", content, now_ms)
    if trigger_llm is not None:
        has_llm = conn.execute(select(llm_messages.c.id)
                               .where(llm_messages.c.message_id == trigger_id)).first()
        if has_llm is None:
            _add_llm_message(conn, trigger_id, trigger_llm.role, trigger_llm.content, now_ms)
    return reply


def agent_name(conn: Connection, agent_id: str) -> str | None:
    return conn.execute(select(agents.c.name).where(agents.c.id == agent_id)).scalar()


def store_error(
    conn: Connection, *, conversation_id: str, agent_id: str, trigger_id: str, content: str,
    now_ms: int,
) -> dict[str, Any] | None:
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
