"""The job queries over a real SQLite file: claiming, transitions, the pause."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import Connection

from wizd.errors import Conflict, InvalidInput
from wizd.store import jobs as store
from wizd.store.database import Database

pytestmark = pytest.mark.anyio


async def opened(path: Path) -> Database:
    db = Database(path)
    await db.open()
    return db


def add(conn: Connection, now: int, **options: Any) -> dict[str, Any]:
    return store.add_job(conn, name="noop", data=options.pop("data", {}), now_ms=now,
                         max_attempts=options.pop("max_attempts", 3), **options)


async def test_claim_respects_due_times_groups_and_limit(tmp_path: Path) -> None:
    db = await opened(tmp_path / "wiz.db")
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


async def test_an_older_job_waiting_for_its_retry_holds_back_its_group(tmp_path: Path) -> None:
    db = await opened(tmp_path / "wiz.db")
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


async def test_concurrent_claims_never_share_a_job(tmp_path: Path) -> None:
    db = await opened(tmp_path / "wiz.db")
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


async def test_transitions_only_move_jobs_in_the_expected_status(tmp_path: Path) -> None:
    db = await opened(tmp_path / "wiz.db")
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


async def test_requeue_gives_the_attempt_back(tmp_path: Path) -> None:
    db = await opened(tmp_path / "wiz.db")
    try:
        job_id = await db.write(lambda c: add(c, 1)["id"])
        await db.write(lambda c: store.claim(c, now_ms=2, limit=1))
        [back] = await db.write(lambda c: store.requeue(c, store.active_ids(c), 3))
        assert (back["id"], back["status"], back["attempts"]) == (job_id, "waiting", 0)
    finally:
        await db.close()


async def test_the_pause_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "wiz.db"
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


async def test_job_data_refuses_secrets(tmp_path: Path) -> None:
    db = await opened(tmp_path / "wiz.db")
    try:
        with pytest.raises(InvalidInput) as caught:
            await db.write(lambda c: add(c, 1, data={"provider": {"api_key": "sk-x"}}))
        assert caught.value.field == "data.provider.api_key"
        assert await db.read(lambda c: store.list_jobs(c)) == []
    finally:
        await db.close()


async def test_list_jobs_newest_first_and_by_status(tmp_path: Path) -> None:
    db = await opened(tmp_path / "wiz.db")
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
