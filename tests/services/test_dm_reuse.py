"""``dm.create`` with ``reuse``: the open DM with exactly these participants is
returned instead of a second one (issue 11: ``wizctl dm new ada`` twice made two)."""

from __future__ import annotations

import pytest

from wizd.services import agents, conversations
from wizd.services.agents import AgentCreate
from wizd.services.runtime import Runtime

pytestmark = pytest.mark.anyio


async def agent(rt: Runtime, name: str) -> dict:
    return await agents.create(rt, AgentCreate(name=name, role="r", backstory="", goal=""))


async def test_reuse_returns_the_oldest_open_dm_with_exactly_these_people(rt: Runtime) -> None:
    ada, bob = await agent(rt, "ada"), await agent(rt, "bob")
    first, existed = await conversations.open_dm(rt, participants=["ada"], reuse=True)
    assert existed is False and first["participants"] == [rt.local_user_id, ada["user_id"]]
    # By name, id or user id, in any order, with me named too: the same people.
    again, existed = await conversations.open_dm(
        rt, participants=[ada["user_id"], rt.local_user_id], reuse=True)
    assert (again, existed) == (first, True)
    # Without reuse a new one is made, as dm.create always did.
    second, existed = await conversations.open_dm(rt, participants=["ada"])
    assert existed is False and second["id"] != first["id"]
    assert (await conversations.open_dm(rt, participants=["ada"], reuse=True))[0] == first

    pair, existed = await conversations.open_dm(rt, participants=["ada", "bob"], reuse=True)
    assert existed is False and pair["id"] not in (first["id"], second["id"])
    assert (await conversations.open_dm(rt, participants=[bob["id"], "ada"], reuse=True))[0] == pair


async def test_reuse_skips_archived_dms_and_other_names(rt: Runtime) -> None:
    await agent(rt, "ada")
    old = await conversations.create_dm(rt, participants=["ada"])
    await conversations.archive_dm(rt, old["id"])
    fresh, existed = await conversations.open_dm(rt, participants=["ada"], reuse=True)
    assert existed is False and fresh["id"] != old["id"]

    # A name given must match too; without one, any name will do.
    work, existed = await conversations.open_dm(rt, participants=["ada"], name="work",
                                                reuse=True)
    assert existed is False and work["name"] == "work"
    assert (await conversations.open_dm(rt, participants=["ada"], name="work",
                                        reuse=True)) == (work, True)
    assert (await conversations.open_dm(rt, participants=["ada"], reuse=True)) == (fresh, True)
