"""The database runner on a file system that really runs out of space (a small
tmpfs, filled): writes fail with StorageUnavailable and succeed again once
space is freed, on the same connections; the WAL checkpoint, which needs room
in the database file, fails quietly and catches up later. Root only (mounts)."""

from __future__ import annotations

import logging
from pathlib import Path

import anyio
import pytest
from sqlalchemy import Connection, text

from tests.support.tmpfs import fill, tmpfs
from wizd.errors import StorageUnavailable
from wizd.store.database import WAL_LIMIT, Database

from .test_database import add_user, names

pytestmark = pytest.mark.anyio


def make_blobs(conn: Connection) -> None:
    conn.execute(text("CREATE TABLE blobs (data BLOB NOT NULL)"))


def add_blob(conn: Connection, size: int) -> None:
    conn.execute(text("INSERT INTO blobs VALUES (zeroblob(:size))"), {"size": size})


def blob_count(conn: Connection) -> int:
    return int(conn.execute(text("SELECT count(*) FROM blobs")).scalar_one())


def traced(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]


async def test_writes_fail_on_a_full_disk_and_work_once_space_is_freed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with tmpfs(tmp_path / "disk", "4m") as disk:
        db = Database(disk / "wiz.db")
        await db.open()
        try:
            await db.write(add_user, "before")
            filler = fill(disk)
            for uid in ("full-1", "full-2"):
                with pytest.raises(StorageUnavailable) as caught:
                    await db.write(add_user, uid)
                assert caught.value.message == "storage unavailable: disk full"
            assert await db.read(names) == ["before"]  # reads go on
            filler.unlink()
            await db.write(add_user, "after")
            assert await db.read(names) == ["after", "before"]
        finally:
            await db.close()
    assert not traced(caplog)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]  # not one per write
    assert "disk full" in warnings[0].getMessage() and str(disk) in warnings[0].getMessage()


async def test_a_wal_checkpoint_on_a_full_disk_is_retried_quietly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The checkpoint copies the WAL into the database file, which must grow:
    on a full disk it fails after a commit that still fitted in the WAL. One
    warning (no traceback) however often it fails; once there is room it
    succeeds and the WAL is cut back."""
    caplog.set_level(logging.DEBUG)
    wal_path = None
    with tmpfs(tmp_path / "disk", "16m") as disk:
        db = Database(disk / "wiz.db")
        await db.open()
        wal_path = Path(f"{db.path}-wal")
        try:
            await db.write(make_blobs)
            while wal_path.stat().st_size < WAL_LIMIT - 600 * 1024:
                await db.write(add_blob, 256 * 1024)
            filler = fill(disk)
            # Room for the next commit in the WAL, not for the checkpoint after it.
            with filler.open("r+b") as f:
                f.truncate(filler.stat().st_size - 1024 * 1024)
            await db.write(add_blob, 700 * 1024)
            assert wal_path.stat().st_size > WAL_LIMIT
            for _ in range(3):  # as run_checkpoints would after each write
                await db.checkpoint()
            checkpoint_warnings = [r for r in caplog.records if r.levelno >= logging.WARNING
                                   and "WAL checkpoint" in r.getMessage()]
            assert len(checkpoint_warnings) == 1, [r.getMessage() for r in caplog.records]
            assert "disk full" in checkpoint_warnings[0].getMessage()
            filler.unlink()
            before = await db.read(blob_count)
            await db.checkpoint()
            await db.write(add_blob, 1024)  # the WAL, all copied, starts over
            assert wal_path.stat().st_size <= WAL_LIMIT
            assert await db.read(blob_count) == before + 1
        finally:
            with anyio.CancelScope(shield=True):
                await db.close()
    assert not traced(caplog)
