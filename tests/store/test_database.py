"""The database runner on both anyio backends, against a real SQLite file (and,
where a test takes ``db_at``, a real PostgreSQL database too)."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import Connection, select, text
from trio.testing import MockClock

from wizd.errors import Conflict, StorageUnavailable
from wizd.services.tallies import Tallies
from wizd.store import jobs
from wizd.store.database import (
    BUSY_TIMEOUT_MS,
    WAL_HARD_LIMIT,
    WAL_LIMIT,
    Database,
    Watch,
    later,
    raw,
)
from wizd.store.schema import users

pytestmark = pytest.mark.anyio


def add_user(conn: Connection, uid: str) -> str:
    conn.execute(users.insert().values(id=uid, name=uid, type="human", created_at=1, updated_at=1))
    return uid


def names(conn: Connection) -> list[str]:
    return list(conn.execute(select(users.c.name).order_by(users.c.name)).scalars())


async def opened(path: Path | str, synchronous: str = "NORMAL") -> Database:
    db = Database(path, synchronous=synchronous)
    await db.open()
    return db


async def test_write_then_read_and_pragmas(tmp_path: Path) -> None:
    db = await opened(tmp_path / "d" / "wiz.db", synchronous="FULL")
    try:
        assert await db.write(add_user, "ada") == "ada"
        assert await db.read(names) == ["ada"]
        assert await db.read(lambda c: c.execute(text("PRAGMA journal_mode")).scalar()) == "wal"
        # 2 == FULL; every connection gets the configured durability.
        assert await db.read(lambda c: c.execute(text("PRAGMA synchronous")).scalar()) == 2
        assert await db.read(lambda c: c.execute(text("PRAGMA foreign_keys")).scalar()) == 1
    finally:
        await db.close()


async def test_file_and_folder_are_private(tmp_path: Path) -> None:
    path = tmp_path / "private" / "wiz.db"
    db = await opened(path)
    await db.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


async def test_failed_write_rolls_back(db_at: Path | str) -> None:
    db = await opened(db_at)

    def half_then_fail(conn: Connection) -> None:
        add_user(conn, "half")
        raise RuntimeError("boom")

    try:
        with pytest.raises(RuntimeError, match="boom"):
            await db.write(half_then_fail)
        assert await db.read(names) == []
    finally:
        await db.close()


async def test_after_commit_runs_in_commit_order(db_at: Path | str) -> None:
    """Concurrent writers: after_commit sees results in the order rows were committed."""
    db = await opened(db_at)
    seen: list[int] = []

    def insert(conn: Connection, uid: str) -> int:
        add_user(conn, uid)
        return int(conn.execute(text("SELECT count(*) FROM users")).scalar_one())

    try:
        async with anyio.create_task_group() as tg:
            for i in range(40):
                tg.start_soon(lambda i=i: db.write(insert, f"u{i:02}", after_commit=seen.append))
        # Each writer saw the count including its own row: 1, 2, ... in order.
        assert seen == list(range(1, 41))
    finally:
        await db.close()


async def test_cancelled_caller_does_not_lose_a_started_write_in_a_thread(
    tmp_path: Path,
) -> None:
    """A write that has begun commits even if its caller is cancelled meanwhile:
    here one that runs in a worker thread (synchronous=FULL, an fsync per
    commit), held open in its transaction until the caller is cancelled."""
    db = await opened(tmp_path / "wiz.db", synchronous="FULL")
    in_transaction = threading.Event()
    may_finish = threading.Event()

    def slow_insert(conn: Connection) -> str:
        add_user(conn, "kept")
        in_transaction.set()
        may_finish.wait(10)  # set by the test as soon as the caller is cancelled
        return "kept"

    try:
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(db.write, slow_insert)
                await anyio.to_thread.run_sync(in_transaction.wait, 10)
                scope.cancel()
                may_finish.set()
        assert await db.read(names) == ["kept"]
        await db.write(add_user, "after")
        assert await db.read(names) == ["after", "kept"]
    finally:
        may_finish.set()
        await db.close()


async def test_cancelled_caller_does_not_lose_a_write_waiting_for_a_lock(
    tmp_path: Path,
) -> None:
    """A write on the loop (synchronous=NORMAL) that meets another process's
    lock keeps trying after its caller is cancelled, and commits once the lock
    is released."""
    import sqlite3

    db = await opened(tmp_path / "wiz.db")
    other = sqlite3.connect(tmp_path / "wiz.db", isolation_level=None, check_same_thread=False)
    try:
        other.execute("BEGIN IMMEDIATE")
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(db.write, add_user, "kept")
                await anyio.wait_all_tasks_blocked()  # the write met the lock; it waits
                scope.cancel()
                other.execute("COMMIT")
        assert await db.read(names) == ["kept"]
    finally:
        other.close()
        await db.close()


async def test_a_failing_writer_loses_only_its_own_work(db_at: Path | str) -> None:
    """Many writers at once; one failing rolls back only itself."""
    db = await opened(db_at)
    outcomes: dict[int, object] = {}
    committed: list[str] = []

    def insert(conn: Connection, i: int) -> str:
        add_user(conn, f"u{i:02}")
        if i == 7:
            raise ValueError("writer 7 fails after its insert")
        return f"u{i:02}"

    async def writer(i: int) -> None:
        try:
            outcomes[i] = await db.write(insert, i, after_commit=committed.append)
        except ValueError as exc:
            outcomes[i] = exc

    try:
        async with anyio.create_task_group() as tg:
            for i in range(30):
                tg.start_soon(writer, i)
        assert isinstance(outcomes.pop(7), ValueError)
        assert outcomes == {i: f"u{i:02}" for i in range(30) if i != 7}
        stored = await db.read(names)
        assert stored == sorted(f"u{i:02}" for i in range(30) if i != 7)
        # after_commit saw exactly the committed writes, each once.
        assert sorted(committed) == stored
    finally:
        await db.close()


async def test_failing_writers_among_many_lose_only_their_own_work(db_at: Path | str) -> None:
    """Failing writers among many lose only their own work. On SQLite they
    never make the others run again; on PostgreSQL, the writes committed
    together with a failing one (group commit) run again, alone, as
    ``Database.write`` allows, and what they store is stored once."""
    db = await opened(db_at)
    runs: dict[int, int] = {}

    def insert(conn: Connection, i: int) -> str:
        runs[i] = runs.get(i, 0) + 1
        add_user(conn, f"u{i:02}")
        if i % 2:
            raise ValueError(f"writer {i} fails")
        return f"u{i:02}"

    async def writer(i: int) -> None:
        try:
            await db.write(insert, i)
        except ValueError:
            pass

    try:
        async with anyio.create_task_group() as tg:
            for i in range(40):
                tg.start_soon(writer, i)
        if isinstance(db_at, Path):
            assert runs == dict.fromkeys(range(40), 1)
        else:
            assert sorted(runs) == list(range(40))
            assert sum(runs.values()) > 40  # the first write ran alone; the rest in groups
        assert await db.read(names) == [f"u{i:02}" for i in range(0, 40, 2)]
    finally:
        await db.close()


async def test_a_writer_that_ends_the_transaction_is_reported_as_the_cause(
    tmp_path: Path,
) -> None:
    """A statement that rolls back the whole transaction (INSERT OR ROLLBACK here;
    in life a full disk or an I/O error) fails its own write with that cause,
    and the writes around it go on."""
    db = await opened(tmp_path / "wiz.db")
    await db.write(add_user, "dup")
    errors: list[BaseException] = []

    def insert(conn: Connection, i: int) -> str:
        if i == 7:
            conn.exec_driver_sql("INSERT OR ROLLBACK INTO users (id, name, type, created_at,"
                                 " updated_at) VALUES ('dup', 'dup', 'human', 1, 1)")
        add_user(conn, f"u{i:02}")
        if i == 3:
            raise ValueError("writer 3 fails")
        return f"u{i:02}"

    async def writer(i: int) -> None:
        try:
            await db.write(insert, i)
        except Exception as exc:
            errors.append(exc)

    try:
        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(writer, i)
        assert errors
        assert not [e for e in errors if "savepoint" in str(e)], errors
        stored = await db.read(names)
        assert "u03" not in stored and "u07" not in stored
        assert len(stored) == 1 + 20 - len(errors)  # dup, and every writer that was told so
    finally:
        await db.close()


async def test_writes_take_the_write_lock_at_begin(tmp_path: Path) -> None:
    """Another connection holding SQLite's write lock makes our write wait, then succeed."""
    import sqlite3

    db = await opened(tmp_path / "wiz.db")
    other = sqlite3.connect(tmp_path / "wiz.db", isolation_level=None, check_same_thread=False)
    try:
        other.execute("BEGIN IMMEDIATE")
        async with anyio.create_task_group() as tg:
            tg.start_soon(db.write, add_user, "waited")
            await anyio.wait_all_tasks_blocked()  # the write met the lock; it waits
            assert await db.read(names) == []
            other.execute("COMMIT")
        assert await db.read(names) == ["waited"]
    finally:
        other.close()
        await db.close()


async def test_a_database_error_does_not_carry_the_statements_values(db_at: Path | str) -> None:
    """Errors get logged; the values of the failed statement (an API key, say) must
    not be in their text."""
    db = await opened(db_at)
    secret = "sk-never-in-an-error-5521"

    def duplicate(conn: Connection) -> None:
        for _ in range(2):
            conn.execute(users.insert().values(id="same", name=secret, type="human",
                                               created_at=1, updated_at=1))

    try:
        with pytest.raises(Exception) as caught:
            await db.write(duplicate)
        assert "unique" in str(caught.value).lower()
        assert secret not in str(caught.value)
    finally:
        await db.close()


# -- storage failures ---------------------------------------------------------------
#
# ``PRAGMA max_page_count`` on the write connection makes SQLite itself answer
# SQLITE_FULL ("database or disk is full") as soon as a write needs one more
# page: a full disk, deterministic and without root. It is set through an
# ordinary write, which runs on the write connection.


def no_more_pages(conn: Connection) -> None:
    conn.exec_driver_sql("PRAGMA max_page_count = 1")  # clamped to the current size


def pages_again(conn: Connection) -> None:
    conn.exec_driver_sql("PRAGMA max_page_count = 1073741823")


def user_ids(conn: Connection) -> list[str]:
    return list(conn.execute(select(users.c.id).order_by(users.c.id)).scalars())


def add_big_user(conn: Connection, uid: str) -> str:
    # 64 KiB of name: overflow pages, so the insert needs new pages for sure.
    conn.execute(users.insert().values(id=uid, name=uid * 16384, type="human",
                                       created_at=1, updated_at=1))
    return uid


async def test_a_full_disk_is_a_storage_error_until_space_is_back(tmp_path: Path) -> None:
    """Every writer of a batch that hits a full disk gets StorageUnavailable
    ("disk full"), not the driver's error; the connection goes on and the
    writes succeed once there is room."""
    db = await opened(tmp_path / "wiz.db")
    try:
        await db.write(add_user, "before")
        await db.write(no_more_pages)
        results: list[object] = []

        async def writer(i: int) -> None:
            try:
                results.append(await db.write(add_big_user, f"u{i}"))
            except Exception as exc:
                results.append(exc)

        async with anyio.create_task_group() as tg:
            for i in range(8):
                tg.start_soon(writer, i)
        assert len(results) == 8
        for exc in results:
            assert isinstance(exc, StorageUnavailable), repr(exc)
            assert (exc.message, exc.cause) == ("storage unavailable: disk full", "disk full")
        # Still full: the same write fails the same way.
        with pytest.raises(StorageUnavailable):
            await db.write(add_big_user, "again")
        await db.write(pages_again)
        assert await db.write(add_big_user, "after") == "after"
        assert await db.read(user_ids) == ["after", "before"]
    finally:
        await db.close()


async def test_a_watch_sees_the_changes_of_committed_writes_only(tmp_path: Path) -> None:
    """Rows reported by the watch's triggers reach ``apply`` once per committed
    write, right before its hook; a failing writer of a shared commit, or a
    commit that fails, reports nothing."""
    seen: list[object] = []
    watch = Watch(
        ("CREATE TEMP TRIGGER IF NOT EXISTS seen AFTER INSERT ON main.users"
         " BEGIN SELECT wiz_changed('user', new.name); END",),
        lambda changes: seen.append(sorted(changes)),
    )
    db = Database(tmp_path / "wiz.db", watch=watch)
    await db.open()

    def insert(conn: Connection, i: int) -> str:
        add_user(conn, f"u{i:02}")
        if i % 7 == 3:
            raise ValueError("fails after its insert")
        return f"u{i:02}"

    async def writer(i: int) -> None:
        try:
            await db.write(insert, i, after_commit=lambda name: seen.append(name))
        except ValueError:
            pass

    try:
        async with anyio.create_task_group() as tg:
            for i in range(30):
                tg.start_soon(writer, i)
        stored = await db.read(names)
        assert stored == [f"u{i:02}" for i in range(30) if i % 7 != 3]
        # Each committed write: its changes, then its hook, and nothing else.
        pairs = [tuple(seen[k:k + 2]) for k in range(0, len(seen), 2)]
        assert sorted(pairs) == [([("user", name)], name) for name in stored]
    finally:
        await db.close()


# The anyio plugin runs the test, so pytest-trio's autojump_clock fixture would
# not reach trio.run: the clock goes in the backend's options.
@pytest.mark.parametrize("anyio_backend", [
    pytest.param(("trio", {"clock": MockClock(autojump_threshold=0)}), id="trio-autojump")])
async def test_a_lock_held_by_another_process_never_blocks_the_loop(tmp_path: Path) -> None:
    """A write that meets another process's write lock waits with the loop free
    (other tasks run meanwhile), goes through once the lock is released, and
    fails with StorageUnavailable (nothing stored) if it is held for longer
    than BUSY_TIMEOUT_MS (of virtual time)."""
    import sqlite3

    import trio

    db = await opened(tmp_path / "wiz.db")
    other = sqlite3.connect(tmp_path / "wiz.db", isolation_level=None, check_same_thread=False)
    try:
        other.execute("BEGIN IMMEDIATE")
        ticks = 0
        async with trio.open_nursery() as nursery:
            nursery.start_soon(db.write, add_user, "waited")
            for _ in range(100):
                await trio.sleep(0.01)
                ticks += 1
            other.execute("COMMIT")
        assert ticks == 100
        assert await db.read(names) == ["waited"]
        other.execute("BEGIN IMMEDIATE")
        started = trio.current_time()
        with pytest.raises(StorageUnavailable, match="locked by another process"):
            await db.write(add_user, "never")
        assert trio.current_time() - started >= BUSY_TIMEOUT_MS / 1000
        other.execute("COMMIT")
        assert await db.read(names) == ["waited"]
    finally:
        other.close()
        await db.close()


def make_blobs(conn: Connection) -> None:
    conn.execute(text("CREATE TABLE IF NOT EXISTS blobs (b BLOB)"))


def add_blob(conn: Connection, size: int) -> None:
    conn.execute(text("INSERT INTO blobs VALUES (zeroblob(:n))"), {"n": size})


def wal_bytes(db: Database) -> int:
    return os.path.getsize(f"{db.path}-wal")


async def test_the_wal_is_checkpointed_by_its_own_task_not_by_writes(tmp_path: Path) -> None:
    """Writes never checkpoint (one that takes the WAL past WAL_LIMIT returns as
    any other); run_checkpoints does, after such a write, and the next write
    then starts the WAL over, cut back to WAL_LIMIT."""
    db = await opened(tmp_path / "wiz.db")
    try:
        await db.write(make_blobs)
        for _ in range(6):  # 1.5 x WAL_LIMIT, with no checkpoint task
            await db.write(add_blob, WAL_LIMIT // 4)
        grown = wal_bytes(db)
        assert grown > 1.4 * WAL_LIMIT
        async with anyio.create_task_group() as tg:
            tg.start_soon(db.run_checkpoints)
            with anyio.fail_after(30):
                # Each write past the limit asks for a checkpoint; once one has
                # copied the WAL, a write starts it over.
                while wal_bytes(db) > WAL_LIMIT:
                    await db.write(add_blob, 1024)
                    await anyio.sleep(0.01)
            tg.cancel_scope.cancel()
        assert await db.read(lambda c: c.execute(text("SELECT count(*) FROM blobs")).scalar()) > 6
    finally:
        await db.close()


async def test_past_the_hard_limit_a_write_waits_for_a_checkpoint(tmp_path: Path) -> None:
    """Writes outpacing checkpoints (here: no checkpoint task at all) must not
    grow the WAL without bound: past WAL_HARD_LIMIT a write checkpoints before
    it returns, and the next one starts the WAL over."""
    db = await opened(tmp_path / "wiz.db")
    try:
        await db.write(make_blobs)
        while wal_bytes(db) <= WAL_HARD_LIMIT:
            await db.write(add_blob, WAL_LIMIT // 4)
        await db.write(add_blob, 1024)
        assert wal_bytes(db) <= WAL_LIMIT
    finally:
        await db.close()


_ADD_USER = ("INSERT INTO users (id, name, type, created_at, updated_at)"
             " VALUES (:id, :id, 'human', 1, 1)")


async def test_a_deferred_statement_runs_in_its_place_and_fails_its_transaction(
    db_at: Path | str
) -> None:
    """``later``: statements nobody reads run before whatever the transaction
    does next (SQLAlchemy's statements, ``raw``'s, the COMMIT); one that
    fails fails its whole transaction, and nothing of it reaches the next."""
    db = await opened(db_at)

    def deferred_then_read(conn: Connection) -> tuple[list[str], list[str]]:
        later(conn, _ADD_USER, {"id": "ada"})
        seen_by_core = names(conn)
        later(conn, _ADD_USER, {"id": "bob"})
        seen_by_raw = [row[0] for row in raw(conn).execute("SELECT name FROM users ORDER BY name")]
        later(conn, _ADD_USER, {"id": "cy"})  # only the COMMIT after it
        return seen_by_core, seen_by_raw

    def deferred_twice(conn: Connection) -> None:
        later(conn, _ADD_USER, {"id": "dee"})
        later(conn, _ADD_USER, {"id": "dee"})  # the primary key refuses it

    try:
        assert await db.write(deferred_then_read) == (["ada"], ["ada", "bob"])
        assert await db.read(names) == ["ada", "bob", "cy"]
        with pytest.raises(Conflict):
            await db.write(deferred_twice)
        # Nothing of the failed one: not its first statement, and nothing
        # left queued for the next transaction.
        assert await db.write(lambda conn: names(conn)) == ["ada", "bob", "cy"]
        assert await db.read(names) == ["ada", "bob", "cy"]
        await db.write(lambda conn: later(conn, _ADD_USER, {"id": "eve"}))
        assert await db.read(names) == ["ada", "bob", "cy", "eve"]
    finally:
        await db.close()


async def _grouped(db: Database, calls: list[tuple[str, Callable[[Connection], Any]]],
                   outcomes: dict[str, object], hooks: list[str]) -> None:
    """Write ``calls`` while a first write holds the write connection, so that
    they wait for it together; each one's result (or its exception's type)
    goes to ``outcomes``, its name to ``hooks`` from its after_commit."""
    started, release = threading.Event(), threading.Event()

    def holds(conn: Connection) -> int:
        started.set()
        release.wait(10)
        return 0

    async def write(name: str, fn: Callable[[Connection], Any]) -> None:
        try:
            outcomes[name] = await db.write(fn, after_commit=lambda _: hooks.append(name))
        except BaseException as exc:  # what a write raises, whatever it is
            outcomes[name] = type(exc).__name__

    async with anyio.create_task_group() as tg:
        tg.start_soon(write, "holds", holds)
        await anyio.to_thread.run_sync(started.wait)
        for name, fn in calls:
            tg.start_soon(write, name, fn)
            await anyio.sleep(0.01)  # called in this order
        release.set()


@pytest.mark.parametrize("engine", ["postgresql"])
async def test_writes_waiting_together_commit_together_each_losing_only_its_own_work(
    db_at: Path | str
) -> None:
    """PostgreSQL: writes that wait for the write connection at the same time
    commit in one transaction (group commit), in the order they were called,
    hooks in that order after the commit. Where one of them raises (a Python
    error after its statements, a refused statement, a deferred statement
    refused), each still gets its own outcome and loses only its own work."""
    db = await opened(db_at)
    hooks: list[str] = []
    outcomes: dict[str, object] = {}

    def adds(uid: str) -> Callable[[Connection], int]:
        def tx(conn: Connection) -> int:
            later(conn, _ADD_USER, {"id": uid})
            return int(raw(conn).execute("SELECT txid_current()").fetchone()[0])
        return tx

    def raises_after_adding(conn: Connection) -> int:
        add_user(conn, "lost")
        raise RuntimeError("after its insert")

    def refused(conn: Connection) -> int:
        add_user(conn, "a")  # the primary key refuses it
        return 0

    def refused_later(conn: Connection) -> int:
        later(conn, _ADD_USER, {"id": "lost too"})
        later(conn, _ADD_USER, {"id": "b"})  # refused when it goes out
        return 0

    def refused_and_ignored(conn: Connection) -> int:
        try:
            add_user(conn, "c")
        except Exception:
            pass  # wrong on PostgreSQL: the transaction is aborted
        return 0

    try:
        await _grouped(db, [("a", adds("a")), ("b", adds("b")), ("c", adds("c"))],
                       outcomes, hooks)
        assert hooks == ["holds", "a", "b", "c"]
        assert len({outcomes["a"], outcomes["b"], outcomes["c"]}) == 1, "one transaction"
        hooks.clear()
        await _grouped(db, [("d", adds("d")), ("raises", raises_after_adding), ("e", adds("e")),
                            ("refused", refused), ("f", adds("f")),
                            ("refused later", refused_later), ("g", adds("g")),
                            ("ignored", refused_and_ignored), ("h", adds("h"))],
                       outcomes, hooks)
        assert {k: v for k, v in outcomes.items() if isinstance(v, str)} == {
            "raises": "RuntimeError", "refused": "Conflict", "refused later": "Conflict",
            "ignored": "RuntimeError"}
        assert hooks == ["holds", "d", "e", "f", "g", "h"]
        assert await db.read(names) == ["a", "b", "c", "d", "e", "f", "g", "h"]
    finally:
        await db.close()


@pytest.mark.parametrize("engine", ["postgresql"])
async def test_each_write_of_a_group_sees_the_watch_as_of_its_own_changes(
    db_at: Path | str
) -> None:
    """The Watch gets each write's changes right before that write's hook: a
    hook that replaces the figures with what its write read (Tallies.start,
    at every lease renewal) is not undone by a write grouped after it."""
    tallies = Tallies()
    db = Database(db_at, watch=tallies.watch)
    await db.open()
    try:
        def add(conn: Connection) -> object:
            return jobs.add_job(conn, name="noop", data={}, now_ms=1, max_attempts=1)

        outcomes: dict[str, object] = {}
        await _grouped(db, [("read", tallies.read), ("add", add), ("add again", add)],
                       outcomes, [])
        assert tallies.queue()["waiting"] == 2
    finally:
        await db.close()


class _Bug(BaseException):
    """What escapes ``Exception`` handlers (a bug's, say)."""


@pytest.mark.parametrize("engine", ["postgresql"])
async def test_a_write_that_escapes_every_handler_leaves_no_other_waiting(
    db_at: Path | str
) -> None:
    db = await opened(db_at)

    def escapes(conn: Connection) -> None:
        raise _Bug()

    try:
        outcomes: dict[str, object] = {}
        with anyio.fail_after(10):
            await _grouped(db, [("escapes", escapes), ("other", lambda conn: names(conn))],
                           outcomes, [])
        assert outcomes["escapes"] == "_Bug"
        assert outcomes["other"] == "RuntimeError"  # not run; its caller is told
        assert await db.write(names) == []  # and the connection serves again
    finally:
        await db.close()
