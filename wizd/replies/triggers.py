"""Who answers a message, and queueing their reply jobs.

Who answers a message from a human:
- in a DM, every agent participant that is not inactive;
- in a channel, every agent (not inactive) mentioned as ``@name``, the name
  matched whole and case-insensitively (``@bob`` is not ``@bobby``; where two
  names start at one ``@``, the longer one wins).
A message written by an agent triggers no one, so agents never loop.

``queue_replies`` runs inside the transaction that stores the message
(``services.messages.send``): the message and its jobs exist together or not
at all. Jobs of one conversation and agent share a group, so an agent
answers one conversation's messages one at a time, in order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from sqlalchemy import Connection

from ..events.hub import Event
from ..objects import Conversation, Job, Message
from ..services import agents
from ..store import jobs as job_store
from ..store import replies as store
from ..store.replies import TriggeredAgent
from .job import NAME, ReplyJobData


def mentioned(content: str, names: list[str]) -> set[str]:
    """The names among ``names`` that ``content`` mentions as ``@name``."""
    longest: dict[int, str] = {}  # position of "@" -> the longest name mentioned there
    for name in names:
        pattern = re.compile(r"(?<![\w@])@" + re.escape(name) + r"(?!\w)", re.IGNORECASE)
        for match in pattern.finditer(content):
            current = longest.get(match.start())
            if current is None or len(name) > len(current):
                longest[match.start()] = name
    return set(longest.values())


def triggered_agents(
    conn: Connection, conversation: Conversation, author_id: str, content: str
) -> list[TriggeredAgent]:
    """The agents (``id``, ``name``) that must answer a message by ``author_id``
    (a person's: an agent's triggers no one), oldest first."""
    if conversation["type"] == "dm":
        return store.dm_agents(conn, conversation["id"], author_id)
    if "@" not in content:  # mentions nobody
        return []
    candidates = store.live_agents(conn, author_id)
    names = mentioned(content, [agent.name for agent in candidates])
    return [agent for agent in candidates if agent.name in names]


@dataclass
class Queued:
    """The reply jobs a message queued, and the agents it made busy."""

    conversation_id: str
    jobs: list[Job] = field(default_factory=list)
    statuses: list[tuple[str, str]] = field(default_factory=list)  # (agent_id, status)

    def events(self) -> list[Event]:
        """``job.updated`` for each job, then ``agent.status`` for each change."""
        cid = self.conversation_id
        return [*(Event("job.updated", {"job": job}, conversation_id=cid) for job in self.jobs),
                *(Event("agent.status", {"agent_id": agent_id, "status": status},
                        conversation_id=cid) for agent_id, status in self.statuses)]


def queue_replies(
    conn: Connection, *, conversation: Conversation, message: Message, max_attempts: int,
    now_ms: int,
) -> Queued:
    """Queue one reply job per agent ``message`` triggers, inside the caller's
    transaction, and mark those agents busy. The caller publishes
    ``Queued.events()`` after the commit and wakes the scheduler if it queued any."""
    queued = Queued(conversation["id"])
    for agent in triggered_agents(conn, conversation, message["author_id"], message["content"]):
        data: ReplyJobData = {"conversation_id": conversation["id"],
                              "message_id": message["id"], "agent_id": agent.id}
        job = job_store.add_job(conn, name=NAME, data=data, now_ms=now_ms,
                                max_attempts=max_attempts,
                                group_key=f"{conversation['id']}:{agent.id}")
        store.add_pending(conn, job["id"], agent.id)
        queued.jobs.append(job)
        status = agents.refresh_status(conn, agent.id)
        if status is not None:
            queued.statuses.append((agent.id, status))
    return queued
