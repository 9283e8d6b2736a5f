"""job.list pages (issue 10): a cursor walks every job once, newest first, and
each page is read from an index in its order, whatever the table holds."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import Connection

from wizd.errors import InvalidInput
from wizd.store import jobs as store
from wizd.store.database import Database, raw

pytestmark = pytest.mark.anyio


async def test_pages_cover_every_job_once_newest_first(db_at: Path | str) -> None:
    db = Database(db_at)
    await db.open()
    try:
        # Several jobs share a created_at: the cursor must still not skip or repeat.
        ids = await db.write(lambda c: [
            store.add_job(c, name="noop", data={}, now_ms=100 + i // 3, max_attempts=1)["id"]
            for i in range(10)])
        await db.write(lambda c: store.claim(c, now_ms=200, limit=4))  # the 4 oldest
        seen: list[str] = []
        cursor = None
        pages = 0
        while True:
            page, cursor = await db.read(partial(store.list_page, limit=3, before=cursor))
            seen += [j["id"] for j in page]
            pages += 1
            if cursor is None:
                break
        assert seen == ids[::-1] and pages == 4
        active, cursor = await db.read(partial(store.list_page, status="active", limit=3))
        assert [j["id"] for j in active] == ids[3::-1][:3] and cursor is not None
        rest, end = await db.read(partial(store.list_page, status="active", limit=3,
                                          before=cursor))
        assert [j["id"] for j in rest] == [ids[0]] and end is None
        exact, end = await db.read(partial(store.list_page, limit=10))
        assert len(exact) == 10 and end is None
        for bad in ("", "12", "a.b", "1.-2"):
            with pytest.raises(InvalidInput) as err:
                await db.read(partial(store.list_page, before=bad))
            assert err.value.data is not None
            assert err.value.data == {"field": "before", "problem": err.value.data["problem"]}
    finally:
        await db.close()


def plan(conn: Connection, sql: str, params: dict[str, object]) -> str:
    rows = raw(conn).execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    return " | ".join(str(row[-1]) for row in rows)


@pytest.mark.sqlite_only("reads SQLite's query plan")
async def test_each_list_reads_an_index_in_its_order(tmp_path: Path) -> None:
    """No page sorts the table: each walks an index from its cursor."""
    db = Database(tmp_path / "wiz.db")
    await db.open()
    try:
        params = {"created": 1, "rowid": 1, "limit": 1, "status": "completed",
                  "cutoff": 1, "batch": 1, "keep": 1}
        for sql, expected in (
            (store._LIST, "SEARCH jobs USING INDEX jobs_created (created_at<?)"),
            (store._LIST_STATUS,
             "SEARCH jobs USING INDEX jobs_status_created (status=? AND created_at<?)"),
            (store._TOO_OLD, "SEARCH jobs USING INDEX jobs_finished (finished_on<?)"),
            # From the newest, past the kept ones: bounded by keep_finished_jobs.
            (store._TOO_MANY, "SCAN jobs USING INDEX jobs_finished"),
        ):
            assert await db.read(lambda c, sql=sql: plan(c, sql, params)) == expected
    finally:
        await db.close()
