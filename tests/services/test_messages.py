"""Messages over a real database: seq, history windows, triggers and their events."""

from __future__ import annotations

import json

import anyio
import pytest
from sqlalchemy import select

from wizd.errors import Conflict, InvalidInput, NotFound
from wizd.services import agents, conversations, messages, projects
from wizd.services.agents import AgentCreate
from wizd.services.runtime import Runtime
from wizd.store.schema import jobs

from .helpers import drain, subscribed

pytestmark = pytest.mark.anyio


async def agent(rt: Runtime, name: str) -> dict:
    return await agents.create(rt, AgentCreate(name=name, role="r", backstory="", goal=""))


async def channel(rt: Runtime) -> dict:
    await projects.create_project(rt, name="p")
    return await projects.create_channel(rt, project_id="p", name="general")


def job_rows(conn):  # type: ignore[no-untyped-def]
    return conn.execute(select(jobs).order_by(jobs.c.created_at)).all()


async def test_dm_message_triggers_each_active_agent_once(rt: Runtime) -> None:
    ada, bob = await agent(rt, "ada"), await agent(rt, "bob")
    await agent(rt, "cy")
    await agents.deactivate(rt, "cy")
    dm = await conversations.create_dm(rt, participants=["ada", "bob", "cy"])
    woken = []
    rt.wake_scheduler = lambda: woken.append(1)
    with subscribed(rt) as sub:
        sent = await messages.send(rt, conversation_id=dm["id"], content="hello all")
        events = drain(sub)
    msg = sent["message"]
    assert (msg["conversation_id"], msg["source_type"], msg["source_id"]) == (
        dm["id"], "dm", dm["id"])
    assert (msg["author_id"], msg["content"], msg["kind"], msg["reply_to"]) == (
        rt.local_user_id, "hello all", "text", None)
    rows = await rt.db.read(job_rows)
    assert [r.id for r in rows] == sent["jobs"] and len(rows) == 2
    assert sorted(json.loads(r.data)["agent_id"] for r in rows) == sorted([ada["id"], bob["id"]])
    for row in rows:
        data = json.loads(row.data)
        assert data == {"conversation_id": dm["id"], "message_id": msg["id"],
                        "agent_id": data["agent_id"]}
        assert (row.name, row.status, row.max_attempts) == ("response_generator", "waiting",
                                                            rt.config.max_attempts)
        assert row.group_key == f"{dm['id']}:{data['agent_id']}"
    statuses = {a["name"]: a["status"] for a in await agents.list_agents(rt)}
    assert statuses == {"ada": "busy", "bob": "busy", "cy": "inactive"}
    # message.created first (with its seq), then the jobs, then the status changes.
    assert [e.method for e in events] == ["message.created", "job.updated", "job.updated",
                                          "agent.status", "agent.status"]
    assert events[0].params == {"message": msg} and events[0].seq == msg["seq"]
    assert all(e.conversation_id == dm["id"] for e in events)
    assert [e.params["job"]["id"] for e in events[1:3]] == sent["jobs"]
    assert {e.params["status"] for e in events[3:]} == {"busy"}
    assert woken == [1]


async def test_second_message_to_a_busy_agent_queues_behind(rt: Runtime) -> None:
    await agent(rt, "ada")
    dm = await conversations.create_dm(rt, participants=["ada"])
    await messages.send(rt, conversation_id=dm["id"], content="one")
    with subscribed(rt) as sub:
        sent = await messages.send(rt, conversation_id=dm["id"], content="two")
        events = drain(sub)
    assert len(sent["jobs"]) == 1  # busy is not inactive: it still answers
    assert [e.method for e in events] == ["message.created", "job.updated"]  # already busy


async def test_channel_triggers_mentioned_agents_only(rt: Runtime) -> None:
    ada, adam, bob = await agent(rt, "ada"), await agent(rt, "adam"), await agent(rt, "bob")
    await agent(rt, "cy")
    await agents.deactivate(rt, "bob")
    general = await channel(rt)
    none = await messages.send(rt, conversation_id=general["id"], content="ada, bob: hi (no @)")
    assert none["jobs"] == []
    sent = await messages.send(rt, conversation_id=general["id"],
                               content="@ADA and @bob, mail me@cy.example or @adam.")
    rows = await rt.db.read(job_rows)
    assert sorted(json.loads(r.data)["agent_id"] for r in rows) == sorted([ada["id"], adam["id"]])
    assert len(sent["jobs"]) == 2
    assert (await agents.get(rt, bob["id"]))["status"] == "inactive"


def test_mentions_match_whole_names_longest_first() -> None:
    names = ["ada", "ada lovelace", "bo"]
    assert messages.mentioned("@ada lovelace, hi", names) == {"ada lovelace"}
    assert messages.mentioned("@ada, @ada lovelace", names) == {"ada", "ada lovelace"}
    assert messages.mentioned("@adam @bob x@bo @@bo", names) == set()
    assert messages.mentioned("(@bo)", names) == {"bo"}


async def test_agent_messages_trigger_no_one(rt: Runtime) -> None:
    ada = await agent(rt, "ada")
    await agent(rt, "bob")
    dm = await conversations.create_dm(rt, participants=["ada", "bob"])
    general = await channel(rt)

    def reply(conn):  # type: ignore[no-untyped-def]
        out = []
        for conv_id in (dm["id"], general["id"]):
            conv = conversations.find(conn, conv_id)
            msg = messages.insert_message(conn, conversation=conv, author_id=ada["user_id"],
                                          content="@bob over to you", now_ms=5)
            out.append((msg, messages.triggered_agents(conn, conv, ada["user_id"], msg["content"])))
        return out

    for msg, triggered in await rt.db.write(reply):
        assert triggered == [] and msg["author_id"] == ada["user_id"]


async def test_refusals(rt: Runtime) -> None:
    await agent(rt, "ada")
    dm = await conversations.create_dm(rt, participants=["ada"])
    for content, field in (("", "content"), ("  \n", "content"), ("x" * 100_001, "content")):
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
