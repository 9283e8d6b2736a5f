"""The reply job: its name (the one place it is spelled) and its data.

A reply job's data holds references only: the conversation, the message
that triggered the reply and the agent that answers. The provider's secret
is resolved when the job runs and never enters job data.
"""

from __future__ import annotations

from typing import Any, TypedDict, cast

NAME = "response_generator"


class ReplyJobData(TypedDict):
    conversation_id: str
    message_id: str  # the trigger
    agent_id: str


def data_of(job: dict[str, Any]) -> ReplyJobData:
    """A reply job's data, typed (the triggers wrote it in this shape)."""
    return cast(ReplyJobData, job["data"])
