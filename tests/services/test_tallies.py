"""The queue counts and the last seq kept in memory (``Runtime.tallies``) stay
equal to what the tables hold, whatever statement changed them."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import Connection, text

from wizd.config import Config
from wizd.events.hub import Hub
from wizd.services import agents, conversations, messages, providers, users
from wizd.services.agents import AgentCreate
from wizd.services.runtime import QueueClock, Runtime
from wizd.services.tallies import Tallies
from wizd.store import jobs as store
from wizd.store.database import Database

pytestmark = pytest.mark.anyio


@pytest.fixture
async def rt(tmp_path: Path, anyio_backend: str) -> AsyncIterator[Runtime]:
    config = Config(db=tmp_path / "wiz.db", socket=tmp_path / "wizd.sock", backend=anyio_backend)
    tallies = Tallies()
    db = Database(config.db, watch=tallies.watch)
    await db.open()
    runtime = Runtime(config=config, db=db, hub=Hub(), clock=QueueClock(), tallies=tallies)
    try:
        await users.ensure_local_user(runtime)
        await providers.ensure_builtin_provider(runtime)
        yield runtime
    finally:
        await db.close()


def stored(conn: Connection) -> tuple[dict[str, int], int]:
    counts = {k: v for k, v in store.count_by_status(conn).items()
              if v or k in ("waiting", "active", "delayed", "failed", "completed")}
    return counts, messages.max_seq(conn)


async def test_figures_loaded_at_start_then_kept_at_each_commit(rt: Runtime) -> None:
    rng = random.Random(10)
    now = 1_000

    def add(conn: Connection, delay: int) -> None:
        store.add_job(conn, name="noop", data={}, now_ms=now, max_attempts=2, delay_ms=delay,
                      group_key=rng.choice([None, "g"]))

    # Some history before the figures are read, as at a restart.
    for _ in range(5):
        await rt.db.write(add, 0)
    await rt.tallies.start(rt.db)
    assert (rt.tallies.queue(), rt.tallies.last_seq) == await rt.db.read(stored)

    await agents.create(rt, AgentCreate(name="ada", role="r", backstory="", goal=""))
    dm = await conversations.create_dm(rt, participants=["ada"])  # each send adds a job
    for _ in range(200):
        now += rng.randrange(0, 50)
        step = rng.randrange(9)
        if step == 0:
            await rt.db.write(add, rng.choice([0, 100]))
        elif step == 1:
            await rt.db.write(partial(store.claim, now_ms=now, limit=rng.randrange(1, 4)))
        elif step in (2, 3):
            active = await rt.db.read(store.active_ids)
            if active:
                job_id = rng.choice(active)
                move = rng.randrange(4)
                if move == 0:
                    await rt.db.write(store.complete, job_id, None, now)
                elif move == 1:
                    await rt.db.write(store.fail, job_id, "no", now)
                elif move == 2:
                    await rt.db.write(store.retry_later, job_id, "again", now + 30, now)
                else:
                    await rt.db.write(store.requeue, [job_id], now)
        elif step == 4:
            await rt.db.write(store.set_paused, rng.random() < 0.5, now)
        elif step == 5:  # pruning, as a retention policy would
            await rt.db.write(lambda c: c.execute(text(
                "DELETE FROM jobs WHERE rowid IN (SELECT rowid FROM jobs"
                " WHERE status IN ('completed', 'failed') LIMIT 2)")))
        elif step == 6:
            await messages.send(rt, conversation_id=dm["id"], content=f"hi {now}")
        elif step == 7:
            def fails(conn: Connection) -> None:
                add(conn, 0)
                raise ValueError("rolled back")

            with pytest.raises(ValueError):
                await rt.db.write(fails)
        else:
            assert (rt.tallies.queue(), rt.tallies.last_seq) == await rt.db.read(stored)
    assert (rt.tallies.queue(), rt.tallies.last_seq) == await rt.db.read(stored)
    assert rt.tallies.last_seq > 0
