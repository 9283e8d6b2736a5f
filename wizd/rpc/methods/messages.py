"""message.send and message.list."""

from __future__ import annotations

from ...objects import MessageList, SentMessage
from ...services import messages
from ..registry import registry
from ..server import Call


@registry.method("message.send")
async def message_send(call: Call, conversation_id: str, content: str) -> SentMessage:
    """Post a message as the local user; returns it and the ids of the reply jobs it queued."""
    return await messages.send(call.rt, conversation_id=conversation_id, content=content)


@registry.method("message.list")
async def message_list(
    call: Call,
    conversation_id: str,
    after_seq: int | None = None,
    limit: int = messages.DEFAULT_LIST,
    before_seq: int | None = None,
) -> MessageList:
    """Messages in increasing seq: the newest ``limit`` (at most 1000), or the first
    ``limit`` after ``after_seq``; only those before ``before_seq`` if given.
    ``has_more``: more lie beyond the page (older, or with after_seq newer)."""
    return await messages.list_page(call.rt, conversation_id=conversation_id,
                                    after_seq=after_seq, before_seq=before_seq, limit=limit)
