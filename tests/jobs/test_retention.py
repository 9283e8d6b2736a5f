"""Retention of finished jobs (issue 10): pruned by age and by count, in
batches, by a periodic task; a pruned job leaves what job.get says of it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
from sqlalchemy import Connection, text
from trio.testing import MockClock

from wizd import config
from wizd.errors import InvalidInput, NotFound
from wizd.jobs import queue, retention
from wizd.store import jobs as store

from .helpers import harness

DAY = 86_400_000


def finished(conn: Connection, *, at: int, failed: bool = False) -> str:
    """A job that finished (completed, or failed) at ``at``; its id."""
    job = store.add_job(conn, name="noop", data={}, now_ms=at - 10, max_attempts=1)
    store.claim(conn, now_ms=at - 5, limit=1)
    if failed:
        store.fail(conn, job["id"], "boom: the provider said no", at)
    else:
        store.complete(conn, job["id"], {"ok": True}, at)
    return str(job["id"])


def counts(conn: Connection) -> dict[str, int]:
    row = conn.execute(text(
        "SELECT (SELECT count(*) FROM jobs WHERE status IN ('completed', 'failed')),"
        " (SELECT count(*) FROM jobs WHERE status NOT IN ('completed', 'failed')),"
        " (SELECT count(*) FROM jobs_pruned)")).one()
    return {"finished": row[0], "pending": row[1], "tombstones": row[2]}


@pytest.mark.anyio
async def test_prune_by_age_then_by_count_in_batches(tmp_path: Path) -> None:
    async with harness(tmp_path, scheduler=False) as h:
        db, now = h.rt.db, h.rt.clock.now_ms()

        def setup(conn: Connection) -> dict[str, Any]:
            old = [finished(conn, at=now - 3 * DAY + i) for i in range(4)]
            recent = [finished(conn, at=now - 1000 + i) for i in range(6)]
            pending = store.add_job(conn, name="noop", data={}, now_ms=now - 5 * DAY,
                                    max_attempts=1, delay_ms=10 * DAY)["id"]
            return {"old": old, "recent": recent, "pending": pending}

        ids = await db.write(setup)
        prune = dict(now_ms=now, keep=3, keep_ms=2 * DAY, batch=3)
        removed = [await db.write(lambda c: store.prune_finished(c, **prune)) for _ in range(5)]
        # Too old first (3, then the last 1), then beyond the newest 3 (3), then none.
        assert removed == [3, 1, 3, 0, 0]
        assert await db.read(counts) == {"finished": 3, "pending": 1, "tombstones": 7}
        kept = {j["id"] for j in await db.read(lambda c: store.list_jobs(c, limit=100))}
        assert kept == {*ids["recent"][3:], ids["pending"]}


@pytest.mark.anyio
async def test_zero_turns_a_limit_off(tmp_path: Path) -> None:
    async with harness(tmp_path, scheduler=False) as h:
        db, now = h.rt.db, h.rt.clock.now_ms()
        await db.write(lambda c: [finished(c, at=now - 30 * DAY + i) for i in range(5)])
        assert await db.write(lambda c: store.prune_finished(
            c, now_ms=now, keep=0, keep_ms=0, batch=500)) == 0
        assert await db.write(lambda c: store.prune_finished(
            c, now_ms=now, keep=2, keep_ms=0, batch=500)) == 3
        assert await db.write(lambda c: store.prune_finished(
            c, now_ms=now, keep=0, keep_ms=DAY, batch=500)) == 2


@pytest.mark.anyio
async def test_a_pruned_job_is_not_found_and_says_it_was_pruned(tmp_path: Path) -> None:
    async with harness(tmp_path, scheduler=False) as h:
        db, now = h.rt.db, h.rt.clock.now_ms()
        gone = await db.write(lambda c: finished(c, at=now - 1000, failed=True))
        await db.write(lambda c: store.prune_finished(c, now_ms=now, keep=0, keep_ms=1, batch=9))
        with pytest.raises(NotFound) as pruned:
            await queue.get(h.rt, gone)
        assert pruned.value.data == {
            "kind": "job", "ref": gone, "pruned": True, "name": "noop", "status": "failed",
            "failure_reason": "boom: the provider said no", "created_at": now - 1010,
            "finished_on": now - 1000, "pruned_at": now}
        assert "pruned" in pruned.value.message
        with pytest.raises(NotFound) as never:
            await queue.get(h.rt, "no-such-job")
        assert never.value.data == {"kind": "job", "ref": "no-such-job"}


@pytest.mark.trio
async def test_the_periodic_task_prunes_every_interval(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    settings = dict(scheduler=False, keep_finished_jobs=2, keep_finished_days=1.0,
                    prune_interval=60.0)
    async with harness(tmp_path, **settings) as h:  # type: ignore[arg-type]
        db = h.rt.db
        start = h.rt.clock.now_ms()
        await db.write(lambda c: [finished(c, at=start - 2 * DAY + i) for i in range(3)])
        await db.write(lambda c: [finished(c, at=start - 100 + i) for i in range(4)])
        t0 = trio.current_time()
        await h.tg.start(retention.run, h.rt)
        await trio.sleep(59.9)
        assert await db.read(counts) == {"finished": 7, "pending": 0, "tombstones": 0}
        await trio.sleep(0.2)  # the first round, at 60 s: 3 too old, then 2 beyond the newest 2
        assert await db.read(counts) == {"finished": 2, "pending": 0, "tombstones": 5}
        # More than a batch finishes; the next round, at 120 s, takes them in batches.
        now = h.rt.clock.now_ms()
        await db.write(lambda c: [finished(c, at=now + i) for i in range(retention.BATCH + 7)])
        await trio.sleep(120 - (trio.current_time() - t0) - 0.1)
        assert (await db.read(counts))["finished"] == retention.BATCH + 9
        await trio.sleep(0.2)
        assert await db.read(counts) == {
            "finished": 2, "pending": 0, "tombstones": 5 + retention.BATCH + 7}


def test_retention_settings_are_validated(tmp_path: Path) -> None:
    env = {"WIZ_KEEP_FINISHED_JOBS": "0", "WIZ_KEEP_FINISHED_DAYS": "0.5"}
    loaded = config.load(environ=env, config_file=None)
    assert (loaded.keep_finished_jobs, loaded.keep_finished_days) == (0, 0.5)
    assert config.Config().public()["keep_finished_jobs"] == 10_000
    for name, value in (("keep_finished_jobs", -1), ("keep_finished_days", -0.1),
                        ("prune_interval", 0)):
        with pytest.raises(InvalidInput) as info:
            config.load({name: value}, environ={})
        assert info.value.field == name
    with pytest.raises(InvalidInput):
        config.load(environ={"WIZ_KEEP_FINISHED_JOBS": "1.5"})
