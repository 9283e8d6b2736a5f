"""DMs, projects and channels over a real database."""

from __future__ import annotations

import pytest

from wizd.errors import Conflict, InvalidInput, NotFound
from wizd.services import agents, conversations, projects, users
from wizd.services.agents import AgentCreate
from wizd.services.runtime import Runtime

pytestmark = pytest.mark.anyio


async def agent(rt: Runtime, name: str) -> dict:
    return await agents.create(rt, AgentCreate(name=name, role="r", backstory="", goal=""))


async def test_dm_participants_by_agent_id_name_or_user_id(rt: Runtime) -> None:
    ada, bob, cy = await agent(rt, "ada"), await agent(rt, "bob"), await agent(rt, "cy")
    dm = await conversations.create_dm(
        rt, participants=[ada["id"], "bob", cy["user_id"], "ada", rt.local_user_id], name=" team ")
    assert dm["type"] == "dm" and dm["name"] == "team" and dm["archived"] is False
    # The local user first, then each once, in the order given.
    assert dm["participants"] == [rt.local_user_id, ada["user_id"], bob["user_id"], cy["user_id"]]
    assert await conversations.get_dm(rt, dm["id"]) == dm
    assert [c["id"] for c in await conversations.list_dms(rt)] == [dm["id"]]


async def test_dm_refuses_unknown_or_missing_participants(rt: Runtime) -> None:
    with pytest.raises(NotFound) as info:
        await conversations.create_dm(rt, participants=["nobody"])
    assert info.value.kind == "participant"
    with pytest.raises(InvalidInput) as bad:
        await conversations.create_dm(rt, participants=[rt.local_user_id])
    assert bad.value.field == "participants"
    assert await conversations.list_dms(rt) == []


async def test_add_remove_participants_and_archive(rt: Runtime) -> None:
    ada, bob = await agent(rt, "ada"), await agent(rt, "bob")
    dm = await conversations.create_dm(rt, participants=["ada"])
    dm = await conversations.add_participant(rt, dm["id"], "bob")
    assert dm["participants"] == [rt.local_user_id, ada["user_id"], bob["user_id"]]
    with pytest.raises(Conflict):
        await conversations.add_participant(rt, dm["id"], bob["id"])
    dm = await conversations.remove_participant(rt, dm["id"], "ada")
    assert dm["participants"] == [rt.local_user_id, bob["user_id"]]
    with pytest.raises(Conflict):
        await conversations.remove_participant(rt, dm["id"], "ada")
    with pytest.raises(Conflict):
        await conversations.remove_participant(rt, dm["id"], rt.local_user_id)
    with pytest.raises(NotFound):
        await conversations.add_participant(rt, "no-such-dm", "ada")

    archived = await conversations.archive_dm(rt, dm["id"])
    assert archived["archived"] is True and archived["archived_at"] is not None
    assert (await conversations.archive_dm(rt, dm["id"]))["archived_at"] == archived["archived_at"]
    with pytest.raises(Conflict):
        await conversations.add_participant(rt, dm["id"], "ada")
    assert await conversations.list_dms(rt) == []
    assert [c["id"] for c in await conversations.list_dms(rt, include_archived=True)] == [dm["id"]]
    with pytest.raises(NotFound):
        await conversations.archive_dm(rt, "no-such-dm")


async def test_a_human_user_can_be_a_participant(rt: Runtime) -> None:
    me = await users.me(rt)
    assert me["type"] == "human"
    ada = await agent(rt, "ada")
    dm = await conversations.create_dm(rt, participants=[ada["user_id"]])
    assert await rt.db.read(conversations.find, dm["id"]) == dm


async def test_projects_and_channels(rt: Runtime) -> None:
    project = await projects.create_project(rt, name="apollo", description="to the moon")
    assert (project["name"], project["description"]) == ("apollo", "to the moon")
    with pytest.raises(Conflict):
        await projects.create_project(rt, name="apollo")
    general = await projects.create_channel(rt, project_id=project["id"], name="general")
    assert general["type"] == "channel" and general["project_id"] == project["id"]
    assert general["participants"] == []
    with pytest.raises(Conflict):
        await projects.create_channel(rt, project_id="apollo", name="general")
    other = await projects.create_project(rt, name="gemini")
    # Channel names are unique per project only.
    await projects.create_channel(rt, project_id="gemini", name="general")
    ops = await projects.create_channel(rt, project_id="apollo", name="ops")
    listed = await projects.list_channels(rt, project_id="apollo")
    assert [c["name"] for c in listed] == ["general", "ops"]
    assert [c["project_id"] for c in await projects.list_channels(rt, project_id=other["id"])] == [
        other["id"]]
    assert await projects.get_channel(rt, ops["id"]) == ops
    assert await rt.db.read(conversations.find, ops["id"]) == ops
    assert [p["name"] for p in await projects.list_projects(rt)] == ["apollo", "gemini"]
    with pytest.raises(NotFound):
        await projects.create_channel(rt, project_id="nope", name="x")
    with pytest.raises(NotFound):
        await projects.list_channels(rt, project_id="nope")
    with pytest.raises(NotFound):
        await rt.db.read(conversations.find, "nope")
    with pytest.raises(InvalidInput):
        await projects.create_channel(rt, project_id="apollo", name="")
