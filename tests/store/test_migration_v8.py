"""Migration 8 on a real SQLite file: an existing database's jobs get the
listing and retention indexes and can be paged and pruned at once."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from wizd.store import jobs as store
from wizd.store.database import Database
from wizd.store.migrations import LATEST, migrate

pytestmark = pytest.mark.anyio


async def test_v8_pages_and_prunes_the_jobs_a_v7_database_holds(tmp_path: Path) -> None:
    path = tmp_path / "wiz.db"
    migrate(path, upto=7)
    conn = sqlite3.connect(path)
    with conn:
        for i, status in enumerate(["completed", "failed", "waiting", "completed"]):
            finished = 100 + i if status != "waiting" else None
            conn.execute(
                "INSERT INTO jobs (id, name, data, opts, status, max_attempts, created_at,"
                " updated_at, finished_on) VALUES (?, 'noop', '{}', '{}', ?, 1, ?, ?, ?)",
                (f"j{i}", status, i, i, finished))
    conn.close()
    assert migrate(path) == (7, LATEST)
    db = Database(path)
    await db.open()
    try:
        page, cursor = await db.read(lambda c: store.list_page(c, limit=2))
        assert [j["id"] for j in page] == ["j3", "j2"] and cursor is not None
        rest, end = await db.read(lambda c: store.list_page(c, limit=2, before=cursor))
        assert [j["id"] for j in rest] == ["j1", "j0"] and end is None
        assert await db.write(lambda c: store.prune_finished(
            c, now_ms=1000, keep=1, keep_ms=0, batch=500)) == 2
        left = await db.read(lambda c: store.list_jobs(c, limit=10))
        assert [j["id"] for j in left] == ["j3", "j2"]
    finally:
        await db.close()
