"""The reply job: its name (the one place it is spelled) and its data.

A reply job's data holds references only: the conversation, the message
that triggered the reply and the agent that answers. The provider's secret
is resolved when the job runs and never enters job data.
"""

from __future__ import annotations

from typing import TypedDict

from ..objects import Job

NAME = "response_generator"


class ReplyJobData(TypedDict):
    conversation_id: str
    message_id: str  # the trigger
    agent_id: str


def data_of(job: Job) -> ReplyJobData:
    """A reply job's data, typed: the one place the package reads it from the
    generic job (a JSON object to the queue). Raises ValueError if it does not
    hold the three ids ``queue_replies`` wrote (a row changed behind wizd's back)."""
    data = job["data"]
    conversation_id = data.get("conversation_id")
    message_id = data.get("message_id")
    agent_id = data.get("agent_id")
    if not (isinstance(conversation_id, str) and isinstance(message_id, str)
            and isinstance(agent_id, str)):
        raise ValueError(f"job {job['id']}: its data is not a reply job's")
    return {"conversation_id": conversation_id, "message_id": message_id, "agent_id": agent_id}
