"""Queries over ``agents``.

``dm_agents`` and ``live_agents`` run on every message a human sends (who
must answer it): DB-API through ``raw``, as the other statements of the
message.send path.
"""

from __future__ import annotations

from typing import TypedDict

from sqlalchemy import Connection, select, update

from ..objects import AgentStatus
from .rows import every, first
from .schema import agents

_live = agents.c.deleted_at.is_(None)


class AgentRow(TypedDict):
    id: str
    user_id: str
    name: str
    role: str
    backstory: str
    goal: str
    system_prompt: str
    provider_id: str
    model: str | None
    temperature: float | None
    max_tokens: int | None
    context_messages: int | None
    status: AgentStatus
    tools: str | None  # a JSON list of server.tool patterns (migration 12)
    max_steps: int | None
    created_at: int
    updated_at: int
    deleted_at: int | None


class AgentChanges(TypedDict, total=False):
    """The columns an update may set."""

    name: str
    role: str
    backstory: str
    goal: str
    system_prompt: str
    provider_id: str
    model: str | None
    temperature: float
    max_tokens: int
    status: AgentStatus
    tools: str | None
    max_steps: int | None


def by_ref(conn: Connection, ref: str) -> AgentRow | None:
    """The live agent whose id, or else name, is ``ref``."""
    for column in (agents.c.id, agents.c.name):
        row = first(conn, select(agents).where(_live, column == ref), AgentRow)
        if row is not None:
            return row
    return None


def by_user(conn: Connection, user_id: str) -> AgentRow | None:
    """The live agent behind user ``user_id``."""
    return first(conn, select(agents).where(_live, agents.c.user_id == user_id), AgentRow)


def get(conn: Connection, agent_id: str) -> AgentRow | None:
    """The agent, deleted or not."""
    return first(conn, select(agents).where(agents.c.id == agent_id), AgentRow)


def id_named(conn: Connection, name: str) -> str | None:
    """The id of the live agent named ``name``, if any."""
    found = conn.execute(select(agents.c.id).where(_live, agents.c.name == name)).scalar()
    return None if found is None else str(found)


def list_live(conn: Connection, status: str | None = None) -> list[AgentRow]:
    """Live agents (of ``status`` if given), oldest first."""
    query = select(agents).where(_live).order_by(agents.c.created_at, agents.c.id)
    if status is not None:
        query = query.where(agents.c.status == status)
    return every(conn, query, AgentRow)


def insert(
    conn: Connection, *, id: str, user_id: str, name: str, role: str, backstory: str,
    goal: str, system_prompt: str, provider_id: str, model: str | None,
    temperature: float | None, max_tokens: int | None, now_ms: int,
    tools: str | None = None, max_steps: int | None = None,
) -> None:
    """An active agent."""
    conn.execute(agents.insert().values(
        id=id, user_id=user_id, name=name, role=role, backstory=backstory, goal=goal,
        system_prompt=system_prompt, provider_id=provider_id, model=model,
        temperature=temperature, max_tokens=max_tokens, status="active", created_at=now_ms,
        updated_at=now_ms, tools=tools, max_steps=max_steps,
    ))


def update_fields(conn: Connection, agent_id: str, changes: AgentChanges, now_ms: int) -> None:
    conn.execute(update(agents).where(agents.c.id == agent_id)
                 .values(**changes, updated_at=now_ms))
