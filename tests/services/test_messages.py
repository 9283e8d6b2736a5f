"""Messages over a real database: seq, history windows and their events (who a
message triggers: tests/replies/test_triggers.py)."""

from __future__ import annotations

import anyio
import pytest

from wizd.errors import Conflict, InvalidInput, NotFound
from wizd.services import agents, conversations, messages, projects
from wizd.services.agents import AgentCreate
from wizd.services.runtime import Runtime

from .helpers import drain, subscribed

pytestmark = pytest.mark.anyio


async def agent(rt: Runtime, name: str) -> dict:
    return await agents.create(rt, AgentCreate(name=name, role="r", backstory="", goal=""))


async def channel(rt: Runtime) -> dict:
    await projects.create_project(rt, name="p")
    return await projects.create_channel(rt, project_id="p", name="general")


async def test_refusals(rt: Runtime) -> None:
    await agent(rt, "ada")
    dm = await conversations.create_dm(rt, participants=["ada"])
    for content, field in (("", "content"), ("  \n", "content"), ("x" * 100_001, "content"),
                           ("a\x00b", "content")):  # NUL: no PostgreSQL text takes it
        with pytest.raises(InvalidInput) as info:
            await messages.send(rt, conversation_id=dm["id"], content=content)
        assert info.value.field == field
    assert len((await messages.send(rt, conversation_id=dm["id"], content="x" * 100_000))[
        "message"]["content"]) == 100_000
    with pytest.raises(NotFound):
        await messages.send(rt, conversation_id="nope", content="hi")
    await conversations.archive_dm(rt, dm["id"])
    with pytest.raises(Conflict):
        await messages.send(rt, conversation_id=dm["id"], content="late")
    # Nothing of the refused ones was stored; the archive stays readable.
    assert len(await messages.list_messages(rt, conversation_id=dm["id"])) == 1
    with pytest.raises(NotFound):
        await messages.list_messages(rt, conversation_id="nope")
    for kwargs, field in (({"limit": 0}, "limit"), ({"limit": 1001}, "limit"),
                          ({"after_seq": -1}, "after_seq")):
        with pytest.raises(InvalidInput) as info:
            await messages.list_messages(rt, conversation_id=dm["id"], **kwargs)
        assert info.value.field == field


async def test_history_windows_and_seq(rt: Runtime) -> None:
    general = await channel(rt)
    other = await projects.create_channel(rt, project_id="p", name="other")
    sent = []
    for i in range(7):
        sent.append((await messages.send(rt, conversation_id=general["id"], content=f"m{i}"))[
            "message"])
        await messages.send(rt, conversation_id=other["id"], content=f"o{i}")
    seqs = [m["seq"] for m in sent]
    assert seqs == sorted(seqs) and len(set(seqs)) == 7

    def contents(found: list[dict]) -> list[str]:
        return [m["content"] for m in found]

    cid = general["id"]
    assert contents(await messages.list_messages(rt, conversation_id=cid)) == [
        f"m{i}" for i in range(7)]
    assert contents(await messages.list_messages(rt, conversation_id=cid, limit=3)) == [
        "m4", "m5", "m6"]
    assert contents(await messages.list_messages(rt, conversation_id=cid, after_seq=seqs[1],
                                                 limit=2)) == ["m2", "m3"]
    assert contents(await messages.list_messages(rt, conversation_id=cid, after_seq=0,
                                                 limit=2)) == ["m0", "m1"]
    assert await messages.list_messages(rt, conversation_id=cid, after_seq=seqs[-1]) == []
    # The helpers the event layer uses.
    everything = await rt.db.read(messages.history_after, None, 0, 100)
    assert [m["seq"] for m in everything] == list(range(1, 15))
    assert await rt.db.read(messages.max_seq) == 14
    after = await rt.db.read(messages.history_after, other["id"], seqs[5], 10)
    assert contents(after) == ["o5", "o6"]


async def test_concurrent_sends_are_announced_in_seq_order(rt: Runtime) -> None:
    general = await channel(rt)
    assert await rt.db.read(messages.max_seq) == 0
    with subscribed(rt, general["id"]) as sub:
        async with anyio.create_task_group() as tg:
            for i in range(30):
                tg.start_soon(lambda i=i: messages.send(rt, conversation_id=general["id"],
                                                        content=f"c{i}"))
        seqs = [e.seq for e in drain(sub) if e.method == "message.created"]
    assert seqs == list(range(1, 31))
