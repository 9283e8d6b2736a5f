"""agent.*: agents, referred to by id or name."""

from __future__ import annotations

from ...errors import InvalidInput
from ...objects import Agent, AgentList
from ...services import agents
from ..registry import registry
from ..server import Call


def _ref(id: str | None, name: str | None) -> str:
    if (id is None) == (name is None):
        raise InvalidInput("id", "give the agent's id or its name (one of the two)")
    return id if id is not None else name  # type: ignore[return-value]


@registry.method("agent.create")
async def agent_create(
    call: Call,
    name: str,
    role: str,
    backstory: str,
    goal: str,
    provider_id: str | None = None,
    model: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
) -> Agent:
    """Create an active agent on a provider (id or name; the default when absent).

    ``model`` defaults to the provider's default model.
    """
    return await agents.create(
        call.rt, name=name, role=role, backstory=backstory, goal=goal, provider_id=provider_id,
        model=model, temperature=temperature, max_tokens=max_tokens,
    )


@registry.method("agent.list")
async def agent_list(call: Call, status: str | None = None) -> AgentList:
    """Every agent (with ``status`` "active", "inactive" or "busy" if given), oldest first."""
    return {"agents": await agents.list_agents(call.rt, status=status)}


@registry.method("agent.get")
async def agent_get(call: Call, id: str | None = None, name: str | None = None) -> Agent:
    """One agent by ``id`` or by ``name``."""
    return await agents.get(call.rt, _ref(id, name))


@registry.method("agent.update")
async def agent_update(
    call: Call,
    id: str,
    name: str | None = None,
    role: str | None = None,
    backstory: str | None = None,
    goal: str | None = None,
    provider_id: str | None = None,
    model: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
) -> Agent:
    """Change an agent (``id`` is its id or current name); absent fields stay as they are.

    The system prompt is rebuilt; ``model: ""`` goes back to the provider's default.
    """
    return await agents.update_agent(
        call.rt, id, name=name, role=role, backstory=backstory, goal=goal,
        provider_id=provider_id, model=model, temperature=temperature, max_tokens=max_tokens,
    )


@registry.method("agent.activate")
async def agent_activate(
    call: Call, id: str | None = None, name: str | None = None
) -> Agent:
    """Let an agent (by ``id`` or ``name``) be triggered by messages again."""
    return await agents.activate(call.rt, _ref(id, name))


@registry.method("agent.deactivate")
async def agent_deactivate(
    call: Call, id: str | None = None, name: str | None = None
) -> Agent:
    """Stop an agent (by ``id`` or ``name``) from being triggered; status becomes inactive."""
    return await agents.deactivate(call.rt, _ref(id, name))
