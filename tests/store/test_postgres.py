"""The store on PostgreSQL: migrations from nothing and from an old version,
the schema against schema.py, seq order equal to visibility order with
writers on two nodes, storage errors, and the statement rewriting.

Against a real server (tests/support/postgres.py)."""

from __future__ import annotations

import json
import random
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import psycopg
import pytest
from sqlalchemy import Connection, text

from tests.support import postgres as pg_support
from wizd.errors import Conflict, SchemaError, StorageUnavailable
from wizd.store import messages, postgres, schema, users
from wizd.store.database import Database, raw
from wizd.store.migrations import LATEST, MIGRATIONS
from wizd.store.migrations_pg import PG_MIGRATIONS
from wizd.store.search import BadMatch, tsquery

pytestmark = pytest.mark.anyio

# Columns PostgreSQL has that SQLite keeps implicit (its rowid), and tables
# that exist outside schema.py on purpose.
_ROWIDS = {("jobs", "rowid"), ("dm_participants", "rowid")}
_OUTSIDE = {"schema_version", "messages_fts"}


@pytest.fixture
def empty_url() -> Iterator[str]:
    with pg_support.database(migrated=False) as url:
        yield url


def test_every_migration_has_its_postgresql_text() -> None:
    assert len(PG_MIGRATIONS) == len(MIGRATIONS), (
        f"add the PostgreSQL text of migration {len(PG_MIGRATIONS) + 1} "
        "to wizd/store/migrations_pg.py")


def _columns(url: str) -> dict[str, list[tuple[str, bool, str | None]]]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name, is_nullable = 'NO', data_type"
            " FROM information_schema.columns WHERE table_schema = 'public'"
            " ORDER BY table_name, ordinal_position").fetchall()
    found: dict[str, list[tuple[str, bool, str | None]]] = {}
    for table, column, notnull, kind in rows:
        found.setdefault(table, []).append((column, notnull, kind))
    return found


def _indexes(url: str) -> set[tuple[str, str]]:
    with psycopg.connect(url) as conn:
        return {(r[0], r[1]) for r in conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'")}


def test_the_migrated_schema_matches_schema_py(empty_url: str) -> None:
    assert postgres.migrate(empty_url, latest=LATEST) == (0, LATEST)
    found = _columns(empty_url)
    assert set(found) - _OUTSIDE == set(schema.metadata.tables)
    for name, table in schema.metadata.tables.items():
        columns = [c for c in found[name] if (name, c[0]) not in _ROWIDS]
        assert [c[0] for c in columns] == [c.name for c in table.columns], name
        for (column, notnull, kind), col in zip(columns, table.columns, strict=True):
            assert notnull == (not col.nullable or col.primary_key), (name, column)
            # Times in milliseconds need 64 bits.
            assert kind != "integer", (name, column)


def test_migrating_step_by_step_gives_the_same_schema(empty_url: str) -> None:
    with pg_support.database(migrated=False) as stepwise:
        for version in range(1, LATEST + 1):
            assert postgres.migrate(stepwise, latest=LATEST, upto=version) == (
                version - 1, version)
        postgres.migrate(empty_url, latest=LATEST)
        assert _columns(stepwise) == _columns(empty_url)
        assert _indexes(stepwise) == _indexes(empty_url)


def test_an_old_database_is_upgraded_with_its_data(empty_url: str) -> None:
    """v5 (reply jobs tell their agent in their data) -> latest: pending_replies
    filled from the pending reply jobs, heads marked, the full-text index built."""
    postgres.migrate(empty_url, latest=LATEST, upto=5)
    with psycopg.connect(empty_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO users VALUES ('u', 'u', 'human', 1, 1, NULL);"
            "INSERT INTO messages (id, source_type, source_id, author_id, content, kind,"
            " created_at, updated_at) VALUES ('m', 'dm', 'c', 'u', 'kangaroo words', 'text',"
            " 1, 1)")
        for job_id, status, created in (("j1", "waiting", 1), ("j2", "waiting", 2),
                                        ("j3", "completed", 0)):
            conn.execute(
                "INSERT INTO jobs (id, name, data, opts, status, max_attempts, created_at,"
                " updated_at, group_key) VALUES (%s, 'response_generator', %s, '{}', %s, 3,"
                " %s, %s, 'c:a')",
                (job_id, json.dumps({"agent_id": "a"}), status, created, created))
    assert postgres.migrate(empty_url, latest=LATEST) == (5, LATEST)
    with psycopg.connect(empty_url) as conn:
        assert sorted(conn.execute("SELECT job_id, agent_id FROM pending_replies")) == [
            ("j1", "a"), ("j2", "a")]
        assert sorted(conn.execute("SELECT id, is_head FROM jobs")) == [
            ("j1", 1), ("j2", 0), ("j3", 0)]
        assert conn.execute("SELECT seq FROM search_indexed").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM messages_fts WHERE tsv @@"
                            " to_tsquery('simple', 'kangaroo')").fetchone() == (1,)
        assert conn.execute("SELECT version FROM schema_version").fetchone() == (LATEST,)


def test_a_newer_database_is_refused_untouched(empty_url: str) -> None:
    postgres.migrate(empty_url, latest=LATEST)
    with psycopg.connect(empty_url, autocommit=True) as conn:
        conn.execute("UPDATE schema_version SET version = 99")
    with pytest.raises(SchemaError, match="schema version 99, newer than this wizd"):
        postgres.migrate(empty_url, latest=LATEST)
    with psycopg.connect(empty_url) as conn:
        assert conn.execute("SELECT version FROM schema_version").fetchone() == (99,)


def test_a_wizd_without_the_postgresql_text_of_a_migration_refuses(empty_url: str) -> None:
    with pytest.raises(SchemaError, match=r"no PostgreSQL text for schema v12\.\.v12"):
        postgres.migrate(empty_url, latest=12, migrations=PG_MIGRATIONS[:11])


async def test_an_unreachable_server_is_storage_unavailable(tmp_path: Path) -> None:
    db = Database(f"postgresql:///nowhere?host={tmp_path}&user=wiz&password=s3cret")
    with pytest.raises(StorageUnavailable) as caught:
        await db.open()
    message = caught.value.message
    assert message.startswith("storage unavailable: PostgreSQL unavailable")
    assert "check that the server runs" in message and "--db" in message
    assert "s3cret" not in message and "password=***" in message


@asynccontextmanager
async def on_own_server() -> AsyncIterator[tuple[pg_support.Server, Database]]:
    """A Database on a server of the test's own (a test that stops it), holding
    user ``a``."""
    with tempfile.TemporaryDirectory(prefix="wiz-pg-own-",
                                     ignore_cleanup_errors=True) as folder, \
            pg_support.private_server(Path(folder)) as server:
        db = Database(server.create())
        await db.open()
        try:
            await add_user(db, "a")
            yield server, db
        finally:
            await db.close()


async def add_user(db: Database, uid: str) -> None:
    await db.write(lambda conn: users.insert(conn, id=uid, name=uid, type="human", now_ms=1))


async def user_ids(db: Database) -> list[str]:
    return [u["id"] for u in await db.read(users.list_live)]


# One backend each: a server of its own costs an initdb, and the calls run in
# worker threads alike on both.
@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_a_server_that_goes_away_fails_calls_until_it_is_back() -> None:
    """Calls meanwhile are StorageUnavailable (nothing half done); once the
    server is back, the same Database reconnects by itself."""
    async with on_own_server() as (server, db):
        server.stop(keep=True)
        for _ in range(2):
            with pytest.raises(StorageUnavailable, match="PostgreSQL unavailable"):
                await add_user(db, "b")
            with pytest.raises(StorageUnavailable, match="PostgreSQL unavailable"):
                await user_ids(db)
        server.start_again()
        await add_user(db, "c")
        assert await user_ids(db) == ["a", "c"]


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_a_server_restarted_while_wizd_is_idle_costs_no_call() -> None:
    """Connections the server dropped while nothing ran (a restart, a cut
    session) fail at their BEGIN, before anything was done: the write and the
    read after the restart open new ones and succeed."""
    async with on_own_server() as (server, db):
        assert await user_ids(db) == ["a"]
        server.stop(keep=True)
        server.start_again()
        await add_user(db, "b")
        assert await user_ids(db) == ["a", "b"]


async def test_connections_bound_how_long_a_dead_network_holds_them() -> None:
    """wizd's connections carry a connect timeout and TCP keepalives (libpq's
    defaults wait as long as the OS), except where the URL sets its own."""
    with pg_support.database() as url:
        db = Database(url + "&connect_timeout=3")
        await db.open()
        try:
            def dsn(conn: Connection) -> str:
                return str(raw(conn).conn.info.dsn)

            shown = await db.read(dsn)
            assert "connect_timeout=3" in shown and "keepalives_idle=30" in shown
            assert "tcp_user_timeout=60000" in shown
        finally:
            await db.close()


async def test_a_refused_row_never_shows_its_values() -> None:
    """PostgreSQL's error detail lists a refused row's values: the Conflict
    (and any traceback of it) carries none of them."""
    import traceback

    secret = "sk-never-in-an-error-5521"
    with pg_support.database() as url:
        db = Database(url)
        await db.open()
        try:
            def no_model(conn: Connection) -> None:
                conn.execute(text(
                    "INSERT INTO llm_providers (id, name, type, api_key, default_model,"
                    " created_at, updated_at) VALUES ('p', 'p', 'openai', :key, NULL, 1, 1)"),
                    {"key": secret})

            with pytest.raises(Conflict) as caught:
                await db.write(no_model)
            assert "not-null" in caught.value.message
            shown = "".join(traceback.format_exception(caught.value))
            assert secret not in shown and "Failing row" not in shown
        finally:
            await db.close()


async def test_a_read_that_fails_leaves_its_connection_as_new() -> None:
    """A read that raises (after a statement, or in one) is rolled back: the
    next reads on the same connection see what was committed since, and work."""
    with pg_support.database() as url:
        db = Database(url)
        await db.open()
        try:
            # Through raw(), as the hot statements are: no SQLAlchemy
            # transaction bookkeeping whose rollback would hide a missing one.
            def count(conn: Connection) -> int:
                return int(raw(conn).execute("SELECT count(*) FROM users").fetchone()[0])

            def count_then_fail(conn: Connection) -> None:
                count(conn)
                raise LookupError("after a statement")

            def bad_statement(conn: Connection) -> None:
                raw(conn).execute("SELECT * FROM no_such_table")

            before = await db.read(count)
            with pytest.raises(LookupError):
                await db.read(count_then_fail)
            await db.write(lambda conn: users.insert(
                conn, id="u1", name="ada", type="human", now_ms=1))
            assert await db.read(count) == before + 1  # a new snapshot
            with pytest.raises(Exception):  # noqa: B017 - the driver's error, any
                await db.read(bad_statement)
            assert await db.read(count) == before + 1
        finally:
            await db.close()


def _send(conn: Connection, node: str, i: int, pause: float) -> int:
    seq = messages.insert(conn, id=f"{node}{i}", source_type="dm", source_id="c",
                          author_id="u", content="x", kind="text", reply_to=None,
                          truncated=False, now_ms=1)
    # Commit later than the insert: without the seq lock, a younger seq could
    # commit first and a reader past it would never see the older one.
    conn.execute(text("SELECT pg_sleep(:s)"), {"s": pause})
    return seq


async def test_seq_order_is_the_order_messages_become_visible() -> None:
    """Writers on two nodes (two Databases on one PostgreSQL database) store
    messages while a reader follows "seq > last seen": it sees every seq once,
    in order, with no gap."""
    with pg_support.database() as url:
        await _race_two_nodes(url)


async def _race_two_nodes(url: str) -> None:
    nodes = [Database(url), Database(url)]
    for node in nodes:
        await node.open()
    rng = random.Random(7)
    seen: list[int] = []
    done = anyio.Event()

    async def writer(index: int, task: int) -> None:
        for i in range(15):
            await nodes[index].write(_send, f"n{index}-{task}-", i,
                                     rng.choice((0, 0.002, 0.005)))

    async def reader() -> None:
        while True:
            finished = done.is_set()
            rows = await nodes[0].read(messages.after, None, seen[-1] if seen else 0, 1000)
            seen.extend(row["seq"] for row in rows)
            if finished:
                return
            await anyio.sleep(0.001)

    try:
        await nodes[0].write(lambda conn: users.insert(conn, id="u", name="u", type="human",
                                                       now_ms=1))
        async with anyio.create_task_group() as tg:
            tg.start_soon(reader)
            async with anyio.create_task_group() as writers:
                for index in range(2):
                    for task in range(2):
                        writers.start_soon(writer, index, task)
            done.set()
        assert seen == list(range(1, 61))
    finally:
        for node in nodes:
            await node.close()


def test_statements_are_rewritten_for_psycopg_once() -> None:
    sql = ("SELECT x::bigint, '5%' FROM jobs INDEXED BY jobs_ready"
           " WHERE a = :a AND b IN (:b_0, :b_1)")
    assert postgres.translate(sql) == (
        "SELECT x::bigint, '5%%' FROM jobs WHERE a = %(a)s AND b IN (%(b_0)s, %(b_1)s)")
    assert postgres.translate(sql) is postgres.translate(sql)


@pytest.mark.parametrize(("match", "expected"), [
    ('"hello" "world"', "('hello') & ('world')"),
    ('"kanga"*', "('kanga':*)"),
    ('"it""s fine"', "('it' <-> 's' <-> 'fine')"),
    ("apples NOT pears", "('apples') & ! ('pears')"),
    ("(a OR b) c", "( ('a') | ('b') ) & ('c')"),
    ('"!!"', ""),
])
def test_fts5_expressions_become_tsqueries(match: str, expected: str) -> None:
    assert tsquery(match) == expected


@pytest.mark.parametrize("match", ["NEAR(a b)", "content:apples", '"unclosed'])
def test_what_has_no_tsquery_is_a_bad_match(match: str) -> None:
    with pytest.raises(BadMatch):
        tsquery(match)


def test_a_wizd_on_sqlite_never_loads_psycopg() -> None:
    """SQLite stays the default at no cost: the PostgreSQL driver is imported
    only by a wizd whose --db is a URL."""
    import subprocess
    import sys

    code = ("import sys, wizd.app, wizd.cli, wizd.store.failures\n"
            "assert 'psycopg' not in sys.modules, 'psycopg imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_missing_binaries_skip_or_under_ci_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pg_support, "bin_dir", lambda: None)
    monkeypatch.delenv(pg_support.REQUIRE, raising=False)
    with pytest.raises(pytest.skip.Exception, match="PostgreSQL binaries"):
        pg_support.require()
    monkeypatch.setenv(pg_support.REQUIRE, "1")
    with pytest.raises(pytest.fail.Exception, match="CI must run the PostgreSQL tests"):
        pg_support.require()
