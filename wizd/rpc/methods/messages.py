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
) -> MessageList:
    """Messages in increasing seq: the newest ``limit`` (at most 1000), or the first
    ``limit`` after ``after_seq``."""
    return {"messages": await messages.list_messages(
        call.rt, conversation_id=conversation_id, after_seq=after_seq, limit=limit)}
