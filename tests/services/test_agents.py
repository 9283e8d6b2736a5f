"""Agents over a real database: refs by id or name, prompts, status and busy-ness."""

from __future__ import annotations

import pytest

from wizd.errors import Conflict, InvalidInput, NotFound
from wizd.llm.context import system_prompt
from wizd.replies import job as reply_job
from wizd.services import agents, providers, users
from wizd.services.agents import AgentCreate, AgentUpdate
from wizd.services.providers import ProviderCreate
from wizd.services.runtime import Runtime
from wizd.store import jobs as job_queries
from wizd.store import replies as reply_queries

from .helpers import drain, subscribed

pytestmark = pytest.mark.anyio


async def make(rt: Runtime, name: str = "ada", **kwargs: object) -> dict:
    args = {"role": "analyst", "backstory": "Counts things.", "goal": "Be exact."} | kwargs
    return await agents.create(rt, AgentCreate(name=name, **args))  # type: ignore[arg-type]


def add_job(conn, agent_id: str) -> str:  # type: ignore[no-untyped-def]
    """A pending reply job of the agent, as wizd.replies.triggers queues one."""
    job_id = job_queries.add_job(conn, name=reply_job.NAME, data={"agent_id": agent_id},
                                 now_ms=1000, max_attempts=3)["id"]
    reply_queries.add_pending(conn, job_id, agent_id)
    return job_id


async def test_create_on_the_default_provider_with_its_own_user(rt: Runtime) -> None:
    agent = await make(rt)
    default = [p for p in await providers.list_providers(rt) if p["is_default"]][0]
    assert agent["provider_id"] == default["id"]
    assert agent["status"] == "active" and agent["model"] is None
    assert agent["system_prompt"] == system_prompt("ada", "analyst", "Counts things.", "Be exact.")
    user = await users.get(rt, agent["user_id"])
    assert (user["name"], user["type"]) == ("ada", "agent")
    assert [u["type"] for u in await users.list_users(rt)] == ["human", "agent"]


async def test_create_on_a_named_provider_with_tuning(rt: Runtime) -> None:
    p = await providers.create(rt, ProviderCreate(name="oa", type="openai", default_model="gpt"))
    agent = await make(rt, provider_id="oa", model="gpt-4o", temperature=0.3, max_tokens=50)
    assert (agent["provider_id"], agent["model"], agent["temperature"], agent["max_tokens"]) == (
        p["id"], "gpt-4o", 0.3, 50)
    with pytest.raises(NotFound):
        await make(rt, name="x", provider_id="missing")


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"name": " "}, "name"),
    ({"role": ""}, "role"),
    ({"temperature": 2.5}, "temperature"),
    ({"max_tokens": 0}, "max_tokens"),
])
async def test_create_refuses_bad_input(rt: Runtime, kwargs: dict, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        await make(rt, **kwargs)
    assert info.value.field == field


async def test_names_are_unique_and_refs_take_id_or_name(rt: Runtime) -> None:
    agent = await make(rt)
    with pytest.raises(Conflict):
        await make(rt)
    assert await agents.get(rt, "ada") == agent
    assert await agents.get(rt, agent["id"]) == agent
    with pytest.raises(NotFound):
        await agents.get(rt, "bob")


async def test_no_default_provider_is_a_conflict(rt: Runtime) -> None:
    await providers.delete(rt, "offline")
    with pytest.raises(Conflict, match="no default provider"):
        await make(rt)


async def test_update_rebuilds_the_prompt_and_renames_the_user(rt: Runtime) -> None:
    agent = await make(rt, model="m1")
    other = await providers.create(rt, ProviderCreate(
            name="second", type="offline", default_model="m"))
    updated = await agents.update_agent(rt, "ada", AgentUpdate(name="ada2", goal="New goal.",
                                                    provider_id="second", model=""))
    assert updated["system_prompt"] == system_prompt("ada2", "analyst", "Counts things.",
                                                     "New goal.")
    assert (updated["provider_id"], updated["model"]) == (other["id"], None)
    assert (await users.get(rt, agent["user_id"]))["name"] == "ada2"
    await make(rt, name="ada")  # the old name is free again
    with pytest.raises(Conflict):
        await agents.update_agent(rt, "ada2", AgentUpdate(name="ada"))
    # Renaming to its own name is no conflict.
    assert (await agents.update_agent(rt, agent["id"], AgentUpdate(name="ada2")))["name"] == "ada2"


async def test_activate_and_deactivate_publish_status(rt: Runtime) -> None:
    agent = await make(rt)
    with subscribed(rt) as sub:
        assert (await agents.deactivate(rt, "ada"))["status"] == "inactive"
        assert (await agents.deactivate(rt, "ada"))["status"] == "inactive"  # no event
        assert (await agents.activate(rt, agent["id"]))["status"] == "active"
        events = drain(sub)
    assert [(e.method, e.params) for e in events] == [
        ("agent.status", {"agent_id": agent["id"], "status": "inactive"}),
        ("agent.status", {"agent_id": agent["id"], "status": "active"}),
    ]
    assert [a["name"] for a in await agents.list_agents(rt, status="active")] == ["ada"]
    assert await agents.list_agents(rt, status="inactive") == []


async def test_inactive_agent_is_never_made_busy(rt: Runtime) -> None:
    agent = await make(rt)
    await agents.deactivate(rt, "ada")
    await rt.db.write(add_job, agent["id"])
    assert await rt.db.write(agents.refresh_status, agent["id"]) is None
    assert (await agents.get(rt, "ada"))["status"] == "inactive"
    # Reactivated while work is pending: busy at once.
    assert (await agents.activate(rt, "ada"))["status"] == "busy"
    assert await rt.db.write(agents.refresh_status, "unknown") is None
