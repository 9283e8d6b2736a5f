"""The job queries over a real SQLite file: claiming, transitions, the pause."""

from __future__ import annotations

import random
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import Connection, text

from tests.support.runtime import copy_migrated
from wizd.errors import Conflict, InvalidInput
from wizd.objects import Job
from wizd.store import jobs as store
from wizd.store.database import Database

pytestmark = pytest.mark.anyio


async def opened(path: Path | str) -> Database:
    if isinstance(path, Path):
        await copy_migrated(path)
    db = Database(path)
    await db.open()
    return db


def add(conn: Connection, now: int, **options: Any) -> Job:
    return store.add_job(conn, name="noop", data=options.pop("data", {}), now_ms=now,
                         max_attempts=options.pop("max_attempts", 3), **options)


async def test_claim_respects_due_times_groups_and_limit(db_at: Path | str) -> None:
    db = await opened(db_at)
    try:
        def setup(conn: Connection) -> dict[str, str]:
            return {
                "later": add(conn, 100, delay_ms=50)["id"],
                "g1": add(conn, 100, group_key="g")["id"],
                "g2": add(conn, 101, group_key="g")["id"],
                "free": add(conn, 102)["id"],
            }

        ids = await db.write(setup)
        claimed, next_due = await db.write(lambda c: store.claim(c, now_ms=120, limit=10))
        # g2 waits for g1; "later" is not due before 150.
        assert [j["id"] for j in claimed] == [ids["g1"], ids["free"]]
        assert next_due == 150
        assert {j["attempts"] for j in claimed} == {1}
        assert {j["processed_on"] for j in claimed} == {120}
        again, _ = await db.write(lambda c: store.claim(c, now_ms=160, limit=10))
        assert [j["id"] for j in again] == [ids["later"]]  # g2 still blocked: g1 is active
        await db.write(lambda c: store.complete(c, ids["g1"], None, 170))
        last, next_due = await db.write(lambda c: store.claim(c, now_ms=170, limit=10))
        assert [j["id"] for j in last] == [ids["g2"]] and next_due is None
    finally:
        await db.close()


async def test_an_older_job_waiting_for_its_retry_holds_back_its_group(db_at: Path | str) -> None:
    db = await opened(db_at)
    try:
        first, second = await db.write(lambda c: (add(c, 1, group_key="g")["id"],
                                                  add(c, 2, group_key="g")["id"]))
        await db.write(lambda c: store.claim(c, now_ms=10, limit=5))
        await db.write(lambda c: store.retry_later(c, first, "500", 1000, 20))
        claimed, next_due = await db.write(lambda c: store.claim(c, now_ms=30, limit=5))
        assert claimed == [] and next_due == 1000
        claimed, _ = await db.write(lambda c: store.claim(c, now_ms=1000, limit=5))
        assert [j["id"] for j in claimed] == [first]
        assert second  # still waiting behind it
    finally:
        await db.close()


async def test_concurrent_claims_never_share_a_job(db_at: Path | str) -> None:
    db = await opened(db_at)
    try:
        await db.write(lambda c: [add(c, i) for i in range(30)])
        got: list[str] = []

        async def claimer() -> None:
            while True:
                claimed, _ = await db.write(lambda c: store.claim(c, now_ms=1000, limit=4))
                if not claimed:
                    return
                got.extend(j["id"] for j in claimed)

        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(claimer)
        assert len(got) == 30 == len(set(got))
    finally:
        await db.close()


async def test_transitions_only_move_jobs_in_the_expected_status(db_at: Path | str) -> None:
    db = await opened(db_at)
    try:
        job_id = await db.write(lambda c: add(c, 1)["id"])
        # Not active: neither completed nor failed nor delayed by a runner.
        assert await db.write(lambda c: store.complete(c, job_id, {}, 2)) is None
        assert await db.write(lambda c: store.fail(c, job_id, "x", 2)) is None
        assert await db.write(lambda c: store.retry_later(c, job_id, "x", 5, 2)) is None
        await db.write(lambda c: store.claim(c, now_ms=3, limit=1))
        done = await db.write(lambda c: store.complete(c, job_id, {"n": 1}, 4))
        assert done is not None
        assert (done["status"], done["result"], done["progress"], done["finished_on"]) == (
            "completed", {"n": 1}, 100, 4)
        with pytest.raises(Conflict):
            await db.write(lambda c: store.retry(c, job_id, 5))
        assert await db.write(lambda c: store.requeue(c, [job_id], 6)) == [done]
    finally:
        await db.close()


async def test_requeue_gives_the_attempt_back(db_at: Path | str) -> None:
    db = await opened(db_at)
    try:
        job_id = await db.write(lambda c: add(c, 1)["id"])
        await db.write(lambda c: store.claim(c, now_ms=2, limit=1))
        [back] = await db.write(lambda c: store.requeue(c, store.active_ids(c), 3))
        assert (back["id"], back["status"], back["attempts"]) == (job_id, "waiting", 0)
    finally:
        await db.close()


async def test_a_job_made_active_behind_the_store_s_back_runs_once_requeued(
    db_at: Path | str,
) -> None:
    """What recover() does at start for a job a bug or a crash left active."""
    db = await opened(db_at)
    try:
        job_id = await db.write(lambda c: add(c, 1, group_key="g")["id"])
        await db.write(lambda c: store.claim(c, now_ms=2, limit=1))
        await db.write(lambda c: store.complete(c, job_id, None, 3))
        await db.write(lambda c: c.execute(
            text("UPDATE jobs SET status = 'active' WHERE id = :id"), {"id": job_id}))
        await db.write(lambda c: store.requeue(c, store.active_ids(c), 4))
        claimed, _ = await db.write(lambda c: store.claim(c, now_ms=5, limit=1))
        assert [j["id"] for j in claimed] == [job_id]
    finally:
        await db.close()


async def test_the_pause_survives_a_restart(db_at: Path | str) -> None:
    path = db_at
    db = await opened(path)
    try:
        waiting = await db.write(lambda c: add(c, 1)["id"])
        await db.write(lambda c: store.set_paused(c, True, 2))
        assert (await db.read(store.require, waiting))["status"] == "paused"
    finally:
        await db.close()
    db = await opened(path)
    try:
        assert await db.read(store.is_paused) is True
        assert await db.write(lambda c: store.claim(c, now_ms=5, limit=9)) == ([], None)
        added = await db.write(lambda c: add(c, 6))
        assert added["status"] == "paused"
        await db.write(lambda c: store.set_paused(c, False, 7))
        assert {j["status"] for j in await db.read(lambda c: store.list_jobs(c))} == {"waiting"}
        claimed, _ = await db.write(lambda c: store.claim(c, now_ms=8, limit=9))
        assert len(claimed) == 2
    finally:
        await db.close()


async def test_job_data_refuses_secrets(db_at: Path | str) -> None:
    db = await opened(db_at)
    try:
        with pytest.raises(InvalidInput) as caught:
            await db.write(lambda c: add(c, 1, data={"provider": {"api_key": "sk-x"}}))
        assert caught.value.field == "data.provider.api_key"
        assert await db.read(lambda c: store.list_jobs(c)) == []
    finally:
        await db.close()


async def test_list_jobs_newest_first_and_by_status(db_at: Path | str) -> None:
    db = await opened(db_at)
    try:
        ids = await db.write(lambda c: [add(c, i)["id"] for i in range(5)])
        await db.write(lambda c: store.claim(c, now_ms=10, limit=2))
        listed = await db.read(lambda c: store.list_jobs(c, limit=3))
        assert [j["id"] for j in listed] == ids[::-1][:3]
        active = await db.read(lambda c: store.list_jobs(c, status="active"))
        assert sorted(j["id"] for j in active) == sorted(ids[:2])
        with pytest.raises(InvalidInput):
            await db.read(lambda c: store.list_jobs(c, status="bogus"))
        counts = await db.read(store.count_by_status)
        assert (counts["active"], counts["waiting"]) == (2, 3)
    finally:
        await db.close()


# -- a group's backlog -------------------------------------------------------------


async def drain(db: Database, now: int, limit: int = 10) -> list[list[str]]:
    """Claim and complete until nothing is claimable: the ids claimed, round by round."""
    rounds: list[list[str]] = []
    while True:
        claimed, _ = await db.write(partial(store.claim, now_ms=now, limit=limit))
        if not claimed:
            return rounds
        rounds.append([j["id"] for j in claimed])
        for job in claimed:
            await db.write(store.complete, job["id"], None, now)


async def test_a_group_backlog_runs_one_at_a_time_in_the_order_added(db_at: Path | str) -> None:
    db = await opened(db_at)
    try:
        def setup(conn: Connection) -> dict[str, list[str]]:
            ids: dict[str, list[str]] = {"g": [], "h": [], "free": []}
            for i in range(60):
                # Three jobs a millisecond: ties on created_at go by the order added.
                ids["g"].append(add(conn, i // 3, group_key="g")["id"])
                if i % 4 == 0:
                    ids["h"].append(add(conn, i // 3, group_key="h")["id"])
                if i % 20 == 0:
                    ids["free"].append(add(conn, i // 3)["id"])
            return ids

        ids = await db.write(setup)
        rounds = await drain(db, now=1000)
        assert all(len(r) == len(set(r)) for r in rounds)
        group_of = {job: key for key, jobs in ids.items() for job in jobs}
        for r in rounds:  # at most one job of a group at a time
            grouped = [group_of[job] for job in r if group_of[job] != "free"]
            assert len(grouped) == len(set(grouped))
        order = [job for r in rounds for job in r]
        for key, jobs in ids.items():
            assert [job for job in order if group_of[job] == key] == jobs
        assert len(rounds) == 60
        assert set(rounds[0]) == {ids["g"][0], ids["h"][0], *ids["free"]}
    finally:
        await db.close()


async def test_a_delayed_head_holds_back_its_backlog(db_at: Path | str) -> None:
    db = await opened(db_at)
    try:
        def setup(conn: Connection) -> list[str]:
            head = add(conn, 1, group_key="g", delay_ms=499)["id"]
            return [head, *(add(conn, 2 + i, group_key="g")["id"] for i in range(50))]

        ids = await db.write(setup)
        claimed, next_due = await db.write(lambda c: store.claim(c, now_ms=100, limit=5))
        assert claimed == [] and next_due == 500
        rounds = await drain(db, now=500)
        assert [r for r in rounds] == [[job] for job in ids]
    finally:
        await db.close()


async def test_an_active_job_holds_back_its_group_even_behind_a_retried_older_one(
    db_at: Path | str,
) -> None:
    db = await opened(db_at)
    try:
        first, second, third = await db.write(
            lambda c: [add(c, i, group_key="g")["id"] for i in range(3)])
        claimed, _ = await db.write(lambda c: store.claim(c, now_ms=10, limit=5))
        assert [j["id"] for j in claimed] == [first]
        await db.write(lambda c: store.fail(c, first, "boom", 11))
        claimed, _ = await db.write(lambda c: store.claim(c, now_ms=12, limit=5))
        assert [j["id"] for j in claimed] == [second]
        # Retried, the first is again the oldest pending job of its group; the
        # active second still runs alone.
        await db.write(lambda c: store.retry(c, first, 13))
        assert await db.write(lambda c: store.claim(c, now_ms=14, limit=5)) == ([], None)
        await db.write(lambda c: store.complete(c, second, None, 15))
        assert await drain(db, now=16) == [[first], [third]]
    finally:
        await db.close()


async def test_a_failed_job_retried_runs_again_in_its_group(db_at: Path | str) -> None:
    db = await opened(db_at)
    try:
        job_id = await db.write(lambda c: add(c, 1, group_key="g")["id"])
        await db.write(lambda c: store.claim(c, now_ms=2, limit=1))
        await db.write(lambda c: store.fail(c, job_id, "boom", 3))
        assert await db.write(lambda c: store.claim(c, now_ms=4, limit=1)) == ([], None)
        await db.write(lambda c: store.retry(c, job_id, 5))
        assert await drain(db, now=6) == [[job_id]]
    finally:
        await db.close()


async def test_a_job_added_with_an_older_time_runs_first_in_its_group(db_at: Path | str) -> None:
    """The order is the jobs' created_at (then the order added), even if the
    clock went back: a failed job retried behind two such older jobs waits."""
    db = await opened(db_at)
    try:
        first = await db.write(lambda c: add(c, 50, group_key="g")["id"])
        await db.write(lambda c: store.claim(c, now_ms=55, limit=5))
        await db.write(lambda c: store.fail(c, first, "boom", 56))
        older, oldest = await db.write(lambda c: [add(c, t, group_key="g")["id"] for t in (40, 30)])
        await db.write(lambda c: store.retry(c, first, 60))
        assert await drain(db, now=100) == [[oldest], [older], [first]]
    finally:
        await db.close()


async def test_priority_orders_group_heads_and_free_jobs(db_at: Path | str) -> None:
    db = await opened(db_at)
    try:
        def setup(conn: Connection) -> dict[str, str]:
            return {
                "g_low": add(conn, 1, group_key="g")["id"],
                # Urgent, but behind its group's head.
                "g_urgent": add(conn, 2, group_key="g", priority=9)["id"],
                "free_mid": add(conn, 3, priority=5)["id"],
                "h_high": add(conn, 4, group_key="h", priority=7)["id"],
                "free_old": add(conn, 0)["id"],
                "free_late": add(conn, 5, priority=8, delay_ms=100)["id"],
            }

        ids = await db.write(setup)
        claimed, next_due = await db.write(lambda c: store.claim(c, now_ms=50, limit=3))
        assert [j["id"] for j in claimed] == [ids["h_high"], ids["free_mid"], ids["free_old"]]
        assert next_due is None  # the limit is reached: no look at what comes next
        claimed, next_due = await db.write(lambda c: store.claim(c, now_ms=50, limit=3))
        assert [j["id"] for j in claimed] == [ids["g_low"]] and next_due == 105
        await db.write(lambda c: store.complete(c, ids["g_low"], None, 60))
        assert await drain(db, now=200) == [[ids["g_urgent"], ids["free_late"]]]
    finally:
        await db.close()


def expected_claim(jobs: list[Job], order: dict[str, int], now: int, limit: int,
                   paused: bool) -> tuple[list[str], int | None]:
    """What a claim must take, from the rules themselves (``order``: the order
    the jobs were added, which breaks ties of created_at)."""
    def key(j: Job) -> tuple[int, int]:
        return j["created_at"], order[j["id"]]

    def blocked(j: Job) -> bool:
        return j["group_key"] is not None and any(
            o["group_key"] == j["group_key"] and o["id"] != j["id"] and (
                o["status"] == "active"
                or (o["status"] in store.QUEUED and key(o) < key(j)))
            for o in jobs)

    if paused:
        return [], None
    due = [j for j in jobs if j["status"] in ("waiting", "delayed") and j["run_at"] <= now
           and not blocked(j)]
    due.sort(key=lambda j: (-j["priority"], j["run_at"], *key(j)))
    taken = [j["id"] for j in due[:limit]]
    if len(taken) == limit:
        return taken, None
    later = [j["run_at"] for j in jobs
             if j["status"] in ("waiting", "delayed") and j["run_at"] > now]
    return taken, min(later, default=None)


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_claims_follow_the_rules_through_every_transition(
    db_at: Path | str, seed: int,
) -> None:
    """Random adds, claims, completions, failures, retries, requeues and pauses
    over a few groups: every claim takes exactly what the rules say."""
    rng = random.Random(seed)
    db = await opened(db_at)
    try:
        order: dict[str, int] = {}
        now, paused = 1000, False
        for _ in range(400):
            now += rng.choice((0, 0, 1, 7, 40))
            jobs = await db.read(partial(store.list_jobs, limit=store.MAX_LIST))
            by_status: dict[str, list[str]] = {}
            for j in jobs:
                by_status.setdefault(j["status"], []).append(j["id"])
            active, failed = by_status.get("active"), by_status.get("failed")
            queued = [i for s in store.QUEUED for i in by_status.get(s, [])]
            op = rng.random()
            if op < 0.35:
                # Now and then a clock that went back: a job older than its group's head.
                added = await db.write(partial(
                    add, now=now - rng.choice((0, 0, 0, 0, 0, 30)),
                    group_key=rng.choice((None, "a", "b", "b", "c")),
                    priority=rng.choice((0, 0, 0, 1, 5)), delay_ms=rng.choice((0, 0, 0, 60))))
                order[added["id"]] = len(order)
            elif op < 0.65:
                limit = rng.randint(1, 4)
                expected = expected_claim(jobs, order, now, limit, paused)
                claimed, next_due = await db.write(partial(store.claim, now_ms=now, limit=limit))
                assert ([j["id"] for j in claimed], next_due) == expected
            elif op < 0.75 and active:
                await db.write(store.complete, rng.choice(active), None, now)
            elif op < 0.8 and active:
                await db.write(store.fail, rng.choice(active), "boom", now)
            elif op < 0.85 and active:
                run_at = now + rng.choice((1, 30, 200))
                await db.write(store.retry_later, rng.choice(active), "500", run_at, now)
            elif op < 0.88 and active:
                await db.write(store.requeue, [rng.choice(active)], now)
            elif op < 0.92 and queued:  # a cancel
                await db.write(partial(store.fail, job_id=rng.choice(queued), reason="cancelled",
                                       now_ms=now, from_statuses=store.QUEUED))
            elif op < 0.97 and failed:
                await db.write(store.retry, rng.choice(failed), now)
            elif op >= 0.97:
                paused = not paused
                await db.write(store.set_paused, paused, now)
        counts = await db.read(store.count_by_status)
        assert counts["completed"] > 20 and counts["failed"] > 5, counts
    finally:
        await db.close()


@pytest.mark.sqlite_only("upgrades a SQLite file from v5 (on PostgreSQL: tests/store)")
async def test_an_upgraded_database_runs_the_groups_it_had_queued(tmp_path: Path) -> None:
    """Jobs queued before migration 6 (which marks each group's head) are claimed
    as before, in their order."""
    import sqlite3

    from wizd.store.migrations import migrate

    path = tmp_path / "wiz.db"
    migrate(path, upto=5)
    conn = sqlite3.connect(path)
    with conn:
        for n, (status, key) in enumerate([("completed", "g"), ("waiting", "g"), ("waiting", "g"),
                                           ("active", "h"), ("waiting", "h"), ("delayed", "k"),
                                           ("waiting", "k"), ("waiting", None)]):
            conn.execute(
                "INSERT INTO jobs (id, name, data, opts, status, max_attempts, created_at,"
                " updated_at, run_at, group_key) VALUES (?, 'noop', '{}', '{}', ?, 3, ?, ?, ?, ?)",
                (f"j{n}", status, n, n, 5000 if status == "delayed" else n, key))
    conn.close()
    db = await opened(path)
    try:
        claimed, next_due = await db.write(lambda c: store.claim(c, now_ms=100, limit=9))
        assert [j["id"] for j in claimed] == ["j1", "j7"] and next_due == 5000
        await db.write(lambda c: store.complete(c, "j3", None, 101))
        claimed, _ = await db.write(lambda c: store.claim(c, now_ms=5000, limit=9))
        assert [j["id"] for j in claimed] == ["j4", "j5"]
    finally:
        await db.close()


def claim_steps(path: Path, backlog: int) -> int:
    """SQLite VM instructions that one claim (and its next-due look) runs, with
    ``backlog`` jobs in each of: a group whose head is claimable, a group held
    back by an active job, a group held back by a delayed head, and free jobs
    not due yet. A count of work, not a time: it does not depend on the machine."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    from wizd.store.database import raw
    from wizd.store.migrations import migrate

    migrate(path)
    engine = create_engine(f"sqlite:///{path}", poolclass=NullPool)
    try:
        with engine.begin() as conn:
            done = add(conn, 0, group_key="g")["id"]
            add(conn, 0, group_key="busy")
            add(conn, 0, group_key="later", delay_ms=10_000)
            for i in range(backlog):
                for key in ("g", "busy", "later"):
                    add(conn, 1 + i, group_key=key)
                add(conn, 1 + i, delay_ms=10_000)
            claimed, _ = store.claim(conn, now_ms=5000, limit=5)
            assert len(claimed) == 2  # the heads of "g" and "busy"
            store.complete(conn, done, None, 5000)
        with engine.begin() as conn:
            steps = [0]

            def count() -> int:
                steps[0] += 1
                return 0  # go on

            db = raw(conn)
            db.set_progress_handler(count, 1)
            claimed, next_due = store.claim(conn, now_ms=5000, limit=5)
            db.set_progress_handler(None, 1)
            assert len(claimed) == 1 and next_due == 10_000
        return steps[0]
    finally:
        engine.dispose()


@pytest.mark.sqlite_only("counts SQLite's VM steps")
def test_a_claim_does_not_read_the_backlogs(tmp_path: Path) -> None:
    """Each claim looks at each group's head and at the free jobs due first,
    never at the jobs waiting behind them: draining a backlog of n jobs costs
    n claims of the same size (the old claim read the whole backlog each time,
    so a drain took time quadratic in n)."""
    small = claim_steps(tmp_path / "small.db", 100)
    large = claim_steps(tmp_path / "large.db", 1000)
    assert large <= small * 1.05, (small, large)
