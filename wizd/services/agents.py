"""Agents: an LLM persona with a user of its own, so that it can author messages.

An agent is referred to by id or by name; names are unique among agents that
are not deleted. Its ``system_prompt`` is derived from name, role, backstory
and goal, and rebuilt whenever one of them changes.

Status: ``inactive`` is set by the user (an inactive agent is never
triggered); otherwise an agent is ``busy`` while it has a waiting, delayed or
active job and ``active`` when it has none (``refresh_status`` keeps this
true; it runs inside the transaction that adds or finishes a job).
"""

from __future__ import annotations

import json
import logging

import pydantic
from sqlalchemy import Connection

from ..errors import Conflict, InvalidInput, NotFound
from ..llm.context import system_prompt
from ..objects import Agent
from ..store import agents as store
from ..store import replies as reply_store
from ..store import users as user_store
from ..store.agents import AgentChanges, AgentRow
from . import checks, providers
from .runtime import Runtime, new_id
from .users import insert_user

log = logging.getLogger(__name__)

STATUSES = ("active", "inactive", "busy")
MAX_PROMPT_PART = 20_000
DEFAULT_MAX_STEPS = 10  # tool steps in one reply (wizd.replies.inputs reads the same)
MAX_MAX_STEPS = 100
MAX_TOOL_PATTERNS = 200



class AgentCreate(pydantic.BaseModel):
    """What ``agent.create`` takes: its RPC params and ``create``'s input.

    ``provider_id`` is a provider's id or name (the default provider when
    absent); ``model`` defaults to the provider's default model.
    """

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    name: str
    role: str
    backstory: str
    goal: str
    provider_id: str | None = None
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    tools: list[str] | None = None
    max_steps: int | None = None


class AgentUpdate(pydantic.BaseModel):
    """What ``agent.update`` changes (besides the ``id`` it names): its RPC params
    and ``update_agent``'s input. None leaves a field as it is; ``model=""``
    goes back to the provider's default model; ``tools=[]`` takes every tool away."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    role: str | None = None
    backstory: str | None = None
    goal: str | None = None
    provider_id: str | None = None
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    tools: list[str] | None = None
    max_steps: int | None = None


def public(row: AgentRow) -> Agent:
    return {
        "id": row["id"],
        "user_id": row["user_id"],
        "name": row["name"],
        "role": row["role"],
        "backstory": row["backstory"],
        "goal": row["goal"],
        "system_prompt": row["system_prompt"],
        "provider_id": row["provider_id"],
        "model": row["model"],
        "temperature": row["temperature"],
        "max_tokens": row["max_tokens"],
        "tools": json.loads(row["tools"]) if row["tools"] else [],
        "max_steps": row["max_steps"] or DEFAULT_MAX_STEPS,
        "status": row["status"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def resolve(conn: Connection, ref: str) -> AgentRow:
    """The live agent whose id or name is ``ref``. Raises NotFound."""
    row = store.by_ref(conn, ref)
    if row is None:
        raise NotFound("agent", ref)
    return row


def by_user(conn: Connection, user_id: str) -> AgentRow | None:
    """The live agent behind user ``user_id``, or None (a human, or a deleted agent)."""
    return store.by_user(conn, user_id)


def get_row(conn: Connection, agent_id: str) -> AgentRow:
    row = store.get(conn, agent_id)
    if row is None:
        raise NotFound("agent", agent_id)
    return row


def refresh_status(conn: Connection, agent_id: str) -> str | None:
    """Recompute the agent's busy/active status inside the caller's transaction.

    Busy iff the agent is not inactive and has a reply job in waiting,
    delayed, paused or active (``store.replies``). Returns the new status if it
    changed, else None (also for an inactive or unknown agent).
    """
    return reply_store.refresh_agent_status(conn, agent_id)


async def refresh(rt: Runtime, agent_id: str) -> str | None:
    """``refresh_status`` in its own transaction, publishing ``agent.status`` on a change."""
    status = await rt.db.write(refresh_status, agent_id)
    if status is not None:
        rt.publish("agent.status", {"agent_id": agent_id, "status": status})
    return status


def _check_name_free(conn: Connection, name: str, *, except_id: str | None = None) -> None:
    found = store.id_named(conn, name)
    if found is not None and found != except_id:
        raise Conflict(f"an agent named {name!r} already exists", name=name)


def _check_tuning(temperature: float | None, max_tokens: int | None) -> None:
    if temperature is not None:
        checks.number_range("temperature", temperature, 0, 2)
    if max_tokens is not None and max_tokens < 1:
        raise InvalidInput("max_tokens", "must be at least 1")


def _tools(patterns: list[str]) -> str | None:
    """The allow-list as stored: a JSON list of ``server.tool`` patterns, None for none."""
    if len(patterns) > MAX_TOOL_PATTERNS:
        raise InvalidInput("tools", f"more than {MAX_TOOL_PATTERNS} patterns")
    cleaned = []
    for pattern in patterns:
        pattern = pattern.strip()
        if not pattern or len(pattern) > 200 or "\x00" in pattern:
            raise InvalidInput("tools", "a pattern is empty, longer than 200 characters or "
                               "holds a NUL character")
        if "." not in pattern and pattern != "*":
            raise InvalidInput("tools", f"{pattern!r}: give server.tool patterns, such as "
                               "'fs.read_file' or 'git.*'")
        if pattern not in cleaned:
            cleaned.append(pattern)
    return json.dumps(cleaned) if cleaned else None


def _max_steps(value: int) -> int:
    if not 1 <= value <= MAX_MAX_STEPS:
        raise InvalidInput("max_steps", f"must be from 1 to {MAX_MAX_STEPS}")
    return value


def _provider_id(conn: Connection, ref: str | None) -> str:
    if ref is not None:
        return providers.resolve(conn, ref)["id"]
    found = providers.default_id(conn)
    if found is None:
        raise Conflict("there is no default provider: create one, or give provider_id")
    return found


async def create(rt: Runtime, spec: AgentCreate) -> Agent:
    """Create an active agent and its user, on ``spec.provider_id`` (id or name)
    or the default.

    Raises InvalidInput, NotFound (no such provider) and Conflict (the name is
    taken, or there is no default provider).
    """
    name = checks.name("name", spec.name)
    role = checks.name("role", spec.role, max_len=MAX_PROMPT_PART)
    backstory = checks.text("backstory", spec.backstory, max_len=MAX_PROMPT_PART)
    goal = checks.text("goal", spec.goal, max_len=MAX_PROMPT_PART)
    model = checks.name("model", spec.model, max_len=200) if spec.model is not None else None
    _check_tuning(spec.temperature, spec.max_tokens)
    tools = _tools(spec.tools or [])
    max_steps = None if spec.max_steps is None else _max_steps(spec.max_steps)
    prompt = system_prompt(name, role, backstory, goal)
    now = rt.clock.now_ms()

    def q(conn: Connection) -> Agent:
        _check_name_free(conn, name)
        pid = _provider_id(conn, spec.provider_id)
        user_id = insert_user(conn, name=name, type="agent", now_ms=now)
        agent_id = new_id()
        store.insert(conn, id=agent_id, user_id=user_id, name=name, role=role,
                     backstory=backstory, goal=goal, system_prompt=prompt, provider_id=pid,
                     model=model, temperature=spec.temperature, max_tokens=spec.max_tokens,
                     now_ms=now, tools=tools, max_steps=max_steps)
        return public(get_row(conn, agent_id))

    agent = await rt.db.write(q)
    log.info("agent %s created", name)
    return agent


async def list_agents(rt: Runtime, *, status: str | None = None) -> list[Agent]:
    """Every live agent (of ``status`` if given), oldest first."""
    if status is not None and status not in STATUSES:
        raise InvalidInput("status", f"must be one of {', '.join(STATUSES)}")
    return [public(r) for r in await rt.db.read(store.list_live, status)]


async def get(rt: Runtime, ref: str) -> Agent:
    """One live agent by id or name. Raises NotFound."""
    return await rt.db.read(lambda conn: public(resolve(conn, ref)))


async def update_agent(rt: Runtime, ref: str, spec: AgentUpdate) -> Agent:
    """Change the fields ``spec`` gives (None leaves one as it is; ``model=""`` goes
    back to the provider's default model) and rebuild the system prompt.

    Raises NotFound, InvalidInput, Conflict (the new name is taken).
    """
    changes: AgentChanges = {}
    if spec.name is not None:
        changes["name"] = checks.name("name", spec.name)
    if spec.role is not None:
        changes["role"] = checks.name("role", spec.role, max_len=MAX_PROMPT_PART)
    if spec.backstory is not None:
        changes["backstory"] = checks.text("backstory", spec.backstory,
                                           max_len=MAX_PROMPT_PART)
    if spec.goal is not None:
        changes["goal"] = checks.text("goal", spec.goal, max_len=MAX_PROMPT_PART)
    if spec.model is not None:
        changes["model"] = (checks.name("model", spec.model, max_len=200)
                            if spec.model.strip() else None)
    _check_tuning(spec.temperature, spec.max_tokens)
    if spec.temperature is not None:
        changes["temperature"] = spec.temperature
    if spec.max_tokens is not None:
        changes["max_tokens"] = spec.max_tokens
    if spec.tools is not None:
        changes["tools"] = _tools(spec.tools)
    if spec.max_steps is not None:
        changes["max_steps"] = _max_steps(spec.max_steps)
    now = rt.clock.now_ms()

    def q(conn: Connection) -> tuple[Agent, list[str]]:
        row = resolve(conn, ref)
        values = AgentChanges(**changes)
        if "name" in values:
            _check_name_free(conn, values["name"], except_id=row["id"])
            user_store.rename(conn, row["user_id"], values["name"], now)
        if spec.provider_id is not None:
            values["provider_id"] = _provider_id(conn, spec.provider_id)
        # What the log names: the fields whose value differs, whoever asked for them.
        changed = sorted(k for k, v in values.items() if row.get(k) != v)
        values["system_prompt"] = system_prompt(
            values.get("name", row["name"]), values.get("role", row["role"]),
            values.get("backstory", row["backstory"]), values.get("goal", row["goal"]))
        store.update_fields(conn, row["id"], values, now)
        return public(get_row(conn, row["id"])), changed

    agent, changed = await rt.db.write(q)
    log.info("agent %s updated (%s)", agent["name"], ", ".join(changed) or "no change")
    return agent


async def activate(rt: Runtime, ref: str) -> Agent:
    """Let the agent be triggered again; it is busy at once if jobs are pending for it.

    Activating an active or busy agent changes nothing. Raises NotFound.
    """
    return await _set_active(rt, ref, active=True)


async def deactivate(rt: Runtime, ref: str) -> Agent:
    """Mark the agent inactive: no new message triggers it. Jobs already queued
    for it are left to the queue. Raises NotFound."""
    return await _set_active(rt, ref, active=False)


async def _set_active(rt: Runtime, ref: str, *, active: bool) -> Agent:
    now = rt.clock.now_ms()

    def q(conn: Connection) -> tuple[Agent, bool]:
        row = resolve(conn, ref)
        if active and row["status"] == "inactive":
            # Provisionally active; refresh_status makes it busy if it has work.
            store.update_fields(conn, row["id"], {"status": "active"}, now)
            refresh_status(conn, row["id"])
        elif not active and row["status"] != "inactive":
            store.update_fields(conn, row["id"], {"status": "inactive"}, now)
        after = get_row(conn, row["id"])
        return public(after), after["status"] != row["status"]

    agent, changed = await rt.db.write(q)
    if changed:
        log.info("agent %s is now %s", agent["name"], agent["status"])
        rt.publish("agent.status", {"agent_id": agent["id"], "status": agent["status"]})
    return agent
