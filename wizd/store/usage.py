"""Queries over the tokens stored with replies (``llm_messages``: model,
prompt_tokens, completion_tokens; migration 7)."""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from ..objects import ReplyTokens, UsageRow
from .schema import agents, llm_messages, messages


def per_agent_and_model(conn: Connection, *, agent_id: str | None,
                        since: int | None) -> list[UsageRow]:
    """Replies and tokens per agent and model, by agent name then model; only
    ``agent_id``'s and replies created at or after ``since``, if given.
    Replies with no model recorded are left out; a reply whose provider
    reported no tokens counts as ``unreported``."""
    query = (
        select(agents.c.id, agents.c.name, llm_messages.c.model, func.count(),
               func.count() - func.count(llm_messages.c.completion_tokens),
               func.coalesce(func.sum(llm_messages.c.prompt_tokens), 0),
               func.coalesce(func.sum(llm_messages.c.completion_tokens), 0))
        .select_from(llm_messages
                     .join(messages, messages.c.id == llm_messages.c.message_id)
                     .join(agents, agents.c.user_id == messages.c.author_id))
        .where(llm_messages.c.role == "assistant", llm_messages.c.model.is_not(None))
        .group_by(agents.c.id, llm_messages.c.model)
        .order_by(agents.c.name, agents.c.id, llm_messages.c.model))
    if agent_id is not None:
        query = query.where(agents.c.id == agent_id)
    if since is not None:
        query = query.where(messages.c.created_at >= since)
    return [{"agent_id": r[0], "agent_name": r[1], "model": r[2], "replies": r[3],
             "unreported": r[4], "prompt_tokens": r[5], "completion_tokens": r[6]}
            for r in conn.execute(query)]


def of_messages(conn: Connection, message_ids: list[str]) -> dict[str, ReplyTokens]:
    """The model and tokens of each of ``message_ids`` that has a model recorded."""
    query = (select(llm_messages.c.message_id, llm_messages.c.model,
                    llm_messages.c.prompt_tokens, llm_messages.c.completion_tokens)
             .where(llm_messages.c.model.is_not(None),
                    llm_messages.c.message_id.in_(message_ids)))
    return {r[0]: {"model": r[1], "prompt_tokens": r[2], "completion_tokens": r[3]}
            for r in conn.execute(query)}
