"""usage.summary and usage.messages: the tokens providers counted for replies
(see wizd.services.usage)."""

from __future__ import annotations

from ...objects import MessageUsage, UsageSummary
from ...services import usage
from ..registry import registry
from ..server import Call


@registry.method("usage.summary")
async def usage_summary(call: Call, agent: str | None = None,
                        since: int | None = None) -> UsageSummary:
    """Replies and their tokens summed per agent and model; only ``agent``'s (id or
    name), only those created at or after ``since`` (ms), if given."""
    return await usage.summary(call.rt, agent=agent, since=since)


@registry.method("usage.messages")
async def usage_messages(call: Call, message_ids: list[str]) -> MessageUsage:
    """The model and tokens of each reply among ``message_ids`` (at most 1000), by
    message id; messages without them are left out."""
    return await usage.of_messages(call.rt, message_ids)
