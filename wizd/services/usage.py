"""Tokens the providers counted: per reply, and summed per agent and model.

A reply's llm_message keeps the model that answered and the provider's
``prompt_tokens`` and ``completion_tokens`` (migration 7; stored by
``replies.store_reply``). A provider that reports no usage leaves the counts
NULL: such replies are counted as ``unreported``, never as zero tokens. The
built-in offline provider reports words as its tokens. Replies stored before
migration 7 have no model recorded and are left out.
"""

from __future__ import annotations

from sqlalchemy import Connection

from ..errors import InvalidInput, NotFound
from ..objects import MessageUsage, UsageRow, UsageSummary
from ..store import agents as agent_store
from ..store import usage as store
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
        agent_id = None
        if agent is not None:
            found = agent_store.by_ref(conn, agent)
            if found is None:
                raise NotFound("agent", agent)
            agent_id = found["id"]
        return {"usage": store.per_agent_and_model(conn, agent_id=agent_id, since=since)}

    return await rt.db.read(q)


async def of_messages(rt: Runtime, message_ids: list[str]) -> MessageUsage:
    """The model and tokens of each reply among ``message_ids`` (at most 1000)
    that has them; other ids are left out. Raises InvalidInput (too many)."""
    if len(message_ids) > MAX_MESSAGES:
        raise InvalidInput("message_ids", f"more than {MAX_MESSAGES}")
    if not message_ids:
        return {"usage": {}}
    return {"usage": await rt.db.read(store.of_messages, message_ids)}
