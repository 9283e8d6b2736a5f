"""An agent is busy while a reply job of it has not finished: kept on the
reply side (store.replies' pending_replies), through the real transitions of
the queue and the reply's outcome handler, over a real database."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection, select

from wizd.jobs import queue
from wizd.replies.inputs import Skip
from wizd.services import agents, conversations, messages
from wizd.services.agents import AgentCreate
from wizd.services.runtime import Runtime
from wizd.store import replies as store
from wizd.store.database import raw
from wizd.store.schema import pending_replies

pytestmark = pytest.mark.anyio


async def statuses(rt: Runtime) -> dict[str, str]:
    return {a["name"]: a["status"] for a in await agents.list_agents(rt)}


async def pending(rt: Runtime) -> set[tuple[str, str]]:
    def q(conn: Connection) -> set[tuple[str, str]]:
        return {(r.job_id, r.agent_id) for r in conn.execute(select(pending_replies))}
    return await rt.db.read(q)


async def test_busy_follows_the_reply_jobs_through_every_transition(rt: Runtime) -> None:
    ada = await agents.create(rt, AgentCreate(name="ada", role="r", backstory="", goal=""))
    bob = await agents.create(rt, AgentCreate(name="bob", role="r", backstory="", goal=""))
    dm = await conversations.create_dm(rt, participants=["ada", "bob"])
    sent = await messages.send(rt, conversation_id=dm["id"], content="hello")
    jobs = {(await queue.get(rt, j))["data"]["agent_id"]: j for j in sent["jobs"]}
    assert await pending(rt) == {(jobs[ada["id"]], ada["id"]), (jobs[bob["id"]], bob["id"])}
    assert await statuses(rt) == {"ada": "busy", "bob": "busy"}

    # Cancelled while queued: finished, so ada is free; bob is not.
    await queue.cancel(rt, jobs[ada["id"]])
    assert await statuses(rt) == {"ada": "active", "bob": "busy"}
    assert await pending(rt) == {(jobs[bob["id"]], bob["id"])}
    error = (await messages.list_messages(rt, conversation_id=dm["id"]))[-1]
    assert error["content"] == "Agent ada did not reply: the reply was cancelled."

    # Retried: pending again.
    await queue.retry(rt, jobs[ada["id"]])
    assert await statuses(rt) == {"ada": "busy", "bob": "busy"}

    # Claimed, delayed for a retry (still pending), claimed and finished.
    now = rt.clock.now_ms()
    claimed, _ = await queue.claim(rt, limit=10, now_ms=now)
    by_id = {job["id"]: job for job in claimed}
    assert set(by_id) == set(jobs.values())
    await queue.retry_later(rt, by_id[jobs[bob["id"]]], "try again", 0.001)
    assert await statuses(rt) == {"ada": "busy", "bob": "busy"}
    await queue.succeed(rt, by_id[jobs[ada["id"]]], Skip("the message was deleted"))
    assert await statuses(rt) == {"ada": "active", "bob": "busy"}
    # Due 1 ms after retry_later's own now (later than ``now`` by what the
    # writes in between took).
    [again], _ = await queue.claim(rt, limit=10, now_ms=rt.clock.now_ms() + 10)
    await queue.succeed(rt, again, Skip("the message was deleted"))
    assert await statuses(rt) == {"ada": "active", "bob": "active"}
    assert await pending(rt) == set()


@pytest.mark.sqlite_only("reads SQLite's query plan")
async def test_the_busy_check_is_one_index_look_up(rt: Runtime) -> None:
    """refresh_status runs for every triggering message and every job's end:
    its check must be one look-up in pending_replies_agent, whatever the
    history holds."""
    plan = await rt.db.read(lambda conn: raw(conn).execute(
        "EXPLAIN QUERY PLAN " + store._REFRESH_STATUS, {"agent_id": "x"}).fetchall())
    details = " | ".join(str(row[-1]) for row in plan)
    assert "INDEX pending_replies_agent (agent_id=?)" in details, details
    assert "SCAN" not in details, details
