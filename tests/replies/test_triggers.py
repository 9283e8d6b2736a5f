"""Which agents a message triggers, and their reply jobs queued with it
(message.send), over a real database."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import literal_column, select

from tests.services.helpers import drain, subscribed
from wizd.objects import Agent, Channel
from wizd.replies import triggers
from wizd.services import agents, conversations, messages, projects
from wizd.services.agents import AgentCreate
from wizd.services.runtime import NoScheduler, Runtime
from wizd.store.schema import jobs

pytestmark = pytest.mark.anyio


class WakeCounter(NoScheduler):
    """A scheduler that only counts how often it is woken."""

    def __init__(self) -> None:
        self.count = 0

    def wake(self) -> None:
        self.count += 1


async def agent(rt: Runtime, name: str) -> Agent:
    return await agents.create(rt, AgentCreate(name=name, role="r", backstory="", goal=""))


async def channel(rt: Runtime) -> Channel:
    await projects.create_project(rt, name="p")
    return await projects.create_channel(rt, project_id="p", name="general")


def job_rows(conn):  # type: ignore[no-untyped-def]
    # Ties in the order added: the rowid (SQLite's own; a column on PostgreSQL).
    return conn.execute(select(jobs).order_by(jobs.c.created_at,
                                              literal_column("rowid"))).all()


async def test_dm_message_triggers_each_active_agent_once(rt: Runtime) -> None:
    ada, bob = await agent(rt, "ada"), await agent(rt, "bob")
    await agent(rt, "cy")
    await agents.deactivate(rt, "cy")
    dm = await conversations.create_dm(rt, participants=["ada", "bob", "cy"])
    rt.scheduler = woken = WakeCounter()
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
    assert woken.count == 1


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
    assert triggers.mentioned("@ada lovelace, hi", names) == {"ada lovelace"}
    assert triggers.mentioned("@ada, @ada lovelace", names) == {"ada", "ada lovelace"}
    assert triggers.mentioned("@adam @bob x@bo @@bo", names) == set()
    assert triggers.mentioned("(@bo)", names) == {"bo"}


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
            out.append((msg, triggers.triggered_agents(conn, conv, ada["user_id"], msg["content"])))
        return out

    for msg, triggered in await rt.db.write(reply):
        assert triggered == [] and msg["author_id"] == ada["user_id"]
