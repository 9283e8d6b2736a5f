"""agent.*: agents, referred to by id or name.

The params of agent.create and agent.update are the fields of
``services.agents.AgentCreate`` and ``AgentUpdate``."""

from __future__ import annotations

from typing import Any

from ...errors import InvalidInput
from ...objects import Agent, AgentList
from ...services import agents
from ...services.agents import AgentCreate, AgentUpdate
from ..registry import registry
from ..server import Call
from .params import params_of


def _ref(id: str | None, name: str | None) -> str:
    if (id is None) == (name is None):
        raise InvalidInput("id", "give the agent's id or its name (one of the two)")
    return id if id is not None else name  # type: ignore[return-value]


@registry.method("agent.create")
@params_of(AgentCreate)
async def agent_create(call: Call, **fields: Any) -> Agent:
    """Create an active agent on a provider (id or name; the default when absent).

    ``model`` defaults to the provider's default model.
    """
    return await agents.create(call.rt, AgentCreate(**fields))


@registry.method("agent.list")
async def agent_list(call: Call, status: str | None = None) -> AgentList:
    """Every agent (with ``status`` "active", "inactive" or "busy" if given), oldest first."""
    return {"agents": await agents.list_agents(call.rt, status=status)}


@registry.method("agent.get")
async def agent_get(call: Call, id: str | None = None, name: str | None = None) -> Agent:
    """One agent by ``id`` or by ``name``."""
    return await agents.get(call.rt, _ref(id, name))


@registry.method("agent.update")
@params_of(AgentUpdate, first=("id",))
async def agent_update(call: Call, id: str, **fields: Any) -> Agent:
    """Change an agent (``id`` is its id or current name); absent fields stay as they are.

    The system prompt is rebuilt; ``model: ""`` goes back to the provider's default.
    """
    return await agents.update_agent(call.rt, id, AgentUpdate(**fields))


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
