"""Storing an agent's reply with its llm_messages, or the error message that
says why it could not answer. Sync functions over the caller's Connection:
the outcome handler calls them inside the transaction that finishes the job.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Connection

from ..errors import Conflict, NotFound
from ..llm.base import ChatMessage, storable
from ..objects import Message
from ..services import conversations
from ..services.messages import insert_message
from ..services.runtime import new_id
from ..store import replies as store


def store_reply(
    conn: Connection,
    *,
    conversation: Mapping[str, object],
    agent_user_id: str,
    trigger_id: str,
    content: str,
    trigger_llm: ChatMessage | None,
    now_ms: int,
    truncated: bool = False,
    model: str | None = None,
    usage: Mapping[str, int] | None = None,
) -> Message | None:
    """Store the agent's reply with its llm_message (and the trigger's, if missing);
    ``truncated`` marks a reply cut off at ``max_reply_bytes``. The reply's
    llm_message keeps the ``model`` that answered and the tokens the provider
    counted (``usage``: prompt_tokens, completion_tokens; None if it said nothing).

    Returns the reply message, or None if this agent already replied to the
    trigger: a reply happens at most once per (trigger, agent), which the
    ``messages_one_reply`` unique index enforces (the insert is refused).
    """
    content = storable(content)
    try:
        reply = insert_message(conn, conversation=conversation, author_id=agent_user_id,
                               content=content, reply_to=trigger_id, truncated=truncated,
                               now_ms=now_ms)
    except Conflict:  # the messages_one_reply index refused it
        # SQLite undoes only the failed statement; the transaction goes on.
        return None
    usage = usage or {}
    store.add_llm_message(conn, llm_id=new_id(), message_id=reply["id"], role="assistant",
                          content=content, now_ms=now_ms, model=model,
                          prompt_tokens=usage.get("prompt_tokens"),
                          completion_tokens=usage.get("completion_tokens"))
    if trigger_llm is not None:
        store.add_llm_message(conn, llm_id=new_id(), message_id=trigger_id,
                              role=trigger_llm.role, content=trigger_llm.content, now_ms=now_ms,
                              unless_there=True)
    return reply


def store_error(
    conn: Connection, *, conversation_id: str, agent_id: str, trigger_id: str, content: str,
    now_ms: int,
) -> Message | None:
    """Store an error message (``kind: "error"``, ``reply_to`` = the trigger) from the
    agent; None if the agent or the conversation no longer exists.

    The one-reply index covers text replies only, so a retried job can still
    store the real reply after this.
    """
    author_id = store.agent_user_id(conn, agent_id)
    if author_id is None:
        return None
    try:
        conversation = conversations.find(conn, conversation_id)
    except NotFound:
        return None
    return insert_message(conn, conversation=conversation, author_id=author_id,
                          content=content, kind="error", reply_to=trigger_id, now_ms=now_ms)
