"""The database runner: queries are plain sync functions over a SQLAlchemy
``Connection``; this module runs them, on either anyio backend, with one sync
engine (pysqlite).

Reads run in worker threads (``anyio.to_thread``), each on one of up to
``READERS`` connections kept open, so that a large read never holds up the
event loop and no call pays for a pool checkout.

Writes run on the event loop, one after another, on the one write connection.
With ``synchronous=NORMAL`` (or OFF) in WAL mode a commit does not fsync, and
one small write transaction costs less than the hop to a worker thread and
back (bench/README.md has the figures); wizd is the only writing process
(the instance lock). So a write cannot interleave with another, commits
happen in the order writes are called, and a write's
``after_commit`` hook runs right after its commit, before anything else on
the loop: code that must act in commit order (publishing events, whose
``seq`` must reach subscribers in increasing order) does it there.

What could make the loop wait is kept off it:

- ``synchronous=FULL`` or EXTRA (an fsync per commit): the same commit runs in
  a worker thread, one write at a time (a lock), hooks still in commit order;
- another process holding SQLite's write lock (someone's ``sqlite3`` shell):
  the write connection has no busy timeout, so a write that meets the lock
  fails at once, nothing done, and is tried again after a short sleep, for
  up to ``BUSY_TIMEOUT_MS``;
- WAL checkpoints: on a connection of their own, in a worker thread, by a
  task of their own (``run_checkpoints``) once a write has taken the WAL past
  ``WAL_LIMIT`` (SQLite's automatic checkpoint is off on the write
  connection, so no commit pays for one, and no write waits for one).

Hot queries may bypass SQLAlchemy's statement machinery with ``raw(conn)``
(the DB-API connection under ``conn``, in the same transaction): for a small
indexed statement, SQLAlchemy's per-statement work costs more than the query
itself (see ``raw``). Which statements do is a rule of the store
(docs/architecture.md, "The database runner"): only the few on the
per-message and per-job path.

Figures that calls read often (queue counts, the last seq) are kept in
memory and maintained at commit through a ``Watch``: temporary triggers on
the write connection report each changed row to a Python function, which
files it under the write being run; once that write has committed, its
changes go to ``Watch.apply``, on the loop, right before its hook. A write
that fails reports nothing, and no statement that changes the watched
tables escapes the triggers.

Storage trouble (a full disk, a read-only file, an I/O error) reaches callers
as ``StorageUnavailable`` (see ``failures``), and the log gets one line when
writes start failing and one when they work again, not one per write. The
connections stay open through it: a failed transaction is rolled back, and
the next one succeeds once the cause is gone.

On PostgreSQL (a ``postgresql://`` URL instead of a path; ``postgres.py``)
every statement runs in a worker thread, writes on the one write
connection (under the same lock as SQLite's fsync-per-commit writes), those
that waited for it together in one transaction (``_write_grouped``), so
commits still happen in the order writes are called and hooks run in
commit order; reads run on up to ``READERS`` connections of their own, each
in a REPEATABLE READ, READ ONLY transaction (one snapshot, as a SQLite read
transaction). The ``Watch`` gets its reports from the ``wiz_watch()``
triggers (``migrations_pg``) through the write connection's temporary table
``wiz_changes``, read and emptied right before each COMMIT.
"""

from __future__ import annotations

import copy
import logging
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from ..errors import DaemonBusy, StorageUnavailable
from .failures import constraint_error, starting, storage_error
from .migrations import LATEST, migrate
from .postgres_keys import DEFERRED, PENDING_BEGIN, STALE_BEGIN
from .urls import is_url, shown

log = logging.getLogger(__name__)

T = TypeVar("T")

READERS = 4
# How long a write (or a read) waits for another process's lock on the file.
BUSY_TIMEOUT_MS = 5000
# How often a write on the loop tries again meanwhile.
BUSY_RETRY = 0.01
# The WAL is checkpointed in the background when its file grows past this
# size (1000 pages of 4 KiB, as SQLite's own automatic checkpoint), and is cut
# back to it when it starts over. It starts over only once a checkpoint has
# copied all of it, which writes arriving faster than checkpoints finish
# prevent: past WAL_HARD_LIMIT, each write waits for a checkpoint of its own.
WAL_LIMIT = 4 * 1024 * 1024
WAL_HARD_LIMIT = 4 * WAL_LIMIT
#
# Engines are made with hide_parameters: a database error's text would
# otherwise carry the statement's values (a provider's API key among them)
# into the log.
# synchronous settings under which a commit costs no fsync: commits on the loop.
_NO_FSYNC = ("OFF", "NORMAL")


def _prepare_file(path: Path) -> None:
    """Create the folder (0700) and the file (0600) before SQLite touches them."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


def raw(conn: Connection) -> Any:
    """The DB-API (sqlite3) connection under ``conn``, inside the same transaction.

    For hot statements: plain DB-API calls skip SQLAlchemy's per-statement
    work (compilation cache look-ups, result metadata), which costs more than
    a small indexed query itself. On PostgreSQL, psycopg's connection behind
    ``postgres.Raw``, which takes the same statements (``:name`` placeholders).
    """
    db = conn.connection.dbapi_connection
    if conn.dialect.name == "postgresql":
        from .postgres import Raw

        return Raw(db, conn.info)  # type: ignore[arg-type]
    return db


def later(conn: Connection, sql: str, params: Any = None) -> None:
    """Run ``sql`` (as ``raw`` takes it) in the caller's write transaction when
    its result is not read. On SQLite, at once; on PostgreSQL, with the next
    statement or the COMMIT, in one round trip with them (``Raw.later``): its
    error, if any, comes from there and fails the whole transaction (on
    PostgreSQL a failed statement does anyway), so only for statements whose
    failure is not expected and handled on the spot."""
    db = raw(conn)
    if isinstance(db, sqlite3.Connection):
        db.execute(sql, params or {})
    else:
        db.later(sql, params)


def is_pg(conn: Connection) -> bool:
    """Whether ``conn`` is on PostgreSQL: where a store module has a
    statement of each engine, this picks one."""
    return conn.dialect.name == "postgresql"


def once_per_database(conn: Connection) -> None:
    """Call first in a write that creates what a database needs once (the
    local user, the built-in provider): on PostgreSQL, nodes starting
    together take turns there (an advisory lock held to the commit; the
    write's next statements see what the node before committed). Nothing on
    SQLite: one wizd."""
    if is_pg(conn):
        from .postgres_keys import START_LOCK

        raw(conn).execute(f"SELECT pg_advisory_xact_lock({START_LOCK})")


def before_commit(conn: Connection, fn: Callable[[Connection], None]) -> None:
    """PostgreSQL: run ``fn(conn)`` at the end of the write transaction ``conn``
    is in, after the write's function returned, right before its COMMIT
    (store.jobs sets its group head marks there)."""
    transaction_state(conn).setdefault("before_commit", []).append(fn)


def transaction_state(conn: Connection) -> dict[str, Any]:
    """PostgreSQL: a dict that lives as long as the write transaction ``conn``
    is in (dropped at its COMMIT or ROLLBACK)."""
    state: dict[str, Any] = conn.info.setdefault("wiz_transaction", {})
    return state


# PostgreSQL refused a transaction because another one's locks crossed it
# (deadlock_detected, serialization_failure): nothing of it was done, and the
# same write, run again, succeeds. A write's function may run again (see
# Database.write), so the runner does that, a few times.
_RETRIED_STATES = ("40P01", "40001")
_RETRIES = 3


def _crossed(exc: BaseException) -> bool:
    orig = getattr(exc, "orig", exc)
    return getattr(orig, "sqlstate", None) in _RETRIED_STATES


class _Stale(Exception):
    """BEGIN failed on a PostgreSQL connection the server had dropped (it
    restarted, or the network cut the session while wizd was idle): nothing
    ran, so the caller opens another connection and tries once more."""



def _transaction(conn: Connection, begin: str, fn: Callable[..., T], *args: Any) -> T:
    """``fn(conn, *args)`` between ``begin`` and COMMIT (ROLLBACK if it raises).

    Issued on the DB-API connection: SQLAlchemy's own transaction would add
    its begin and commit machinery (events, bookkeeping) to every write,
    about a third of a small write's cost. With pysqlite left to
    ``isolation_level=None``, SQLAlchemy emits nothing itself; a Core
    statement in ``fn`` only opens its bookkeeping, closed here after.
    """
    db = raw(conn)
    if not isinstance(db, sqlite3.Connection):
        return _pg_read(conn, db, begin, fn, *args)
    db.execute(begin)
    try:
        result = fn(conn, *args)
        db.execute("COMMIT")
        return result
    except BaseException:
        if db.in_transaction:
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error:
                pass  # the caller checks the connection (_usable) before using it again
        raise
    finally:
        if conn.in_transaction():
            conn.rollback()  # SQLAlchemy's bookkeeping only: the DB-API has no transaction


def _pg_read(conn: Connection, db: Any, begin: str, fn: Callable[..., T], *args: Any) -> T:
    """``_transaction`` on PostgreSQL (``db``: the Raw wrapper): the BEGIN goes
    out with the first statement."""
    from .postgres import defer_begin

    # Held from here: a connection SQLAlchemy invalidated gives no info after.
    info = conn.info
    defer_begin(info, begin)
    try:
        result = fn(conn, *args)
        assert DEFERRED not in info, "a read deferred a statement (database.later)"
        if _begun(info):
            db.execute("COMMIT")
        return result
    except BaseException as exc:
        _pg_rollback(db.conn)  # psycopg's, not the Raw wrapper
        _raise_if_stale(info, exc)
        raise
    finally:
        info.pop(PENDING_BEGIN, None)
        info.pop(DEFERRED, None)
        info.pop(STALE_BEGIN, None)
        if conn.in_transaction():
            conn.rollback()  # SQLAlchemy's bookkeeping only


# A read on PostgreSQL: one snapshot for all its statements, as a SQLite read
# transaction has.
_PG_READ = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
# In the order the triggers reported them (``n``: the temporary table's identity).
_TAKE_CHANGES = ("WITH taken AS (DELETE FROM wiz_changes RETURNING n, kind, old, new, seq)"
                 " SELECT kind, old, new, seq FROM taken ORDER BY n")
# psycopg's TransactionStatus.INERROR: in a transaction that a failed statement aborted.
_IN_ERROR = 3


def _before_commit(conn: Connection) -> None:
    """Run the ``before_commit`` hooks the write registered (``transaction_state``)."""
    for hook in transaction_state(conn).pop("before_commit", ()):
        hook(conn)


def _pg_transaction(conn: Connection, changes: list[tuple[Any, ...]] | None,
                    fn: Callable[..., T], *args: Any) -> T:
    """A write on PostgreSQL: ``fn(conn, *args)`` between BEGIN and COMMIT; right
    before the COMMIT, what the ``wiz_watch()`` triggers reported goes to
    ``changes`` (when given) as SQLite's temporary triggers report it."""
    from .postgres import defer_begin, send_pending

    db: Any = conn.connection.dbapi_connection  # psycopg's
    assert db is not None
    # Held from here: a connection SQLAlchemy invalidated gives no info after.
    info = conn.info
    defer_begin(info, "BEGIN")
    try:
        result = fn(conn, *args)
        _before_commit(conn)
        if PENDING_BEGIN in info and DEFERRED not in info:
            return result  # no statement ran: nothing to commit
        if db.info.transaction_status == _IN_ERROR:
            # A statement failed and ``fn`` went on: PostgreSQL would answer
            # the COMMIT with a ROLLBACK, and the write would look stored.
            raise RuntimeError("a statement of this write failed and the write went on")
        # One round trip for what was deferred, the changes and the COMMIT
        # (psycopg's pipeline mode): the server runs them in order, the
        # changes are read before the COMMIT is.
        ending = [(_TAKE_CHANGES, None)] if changes is not None else []
        sent = send_pending(db, info, *ending, ("COMMIT", None), commit=True)
        if changes is not None:
            for kind, old, new, seq in sent[0].fetchall():
                changes.append((kind, seq) if kind == "message" else (kind, old, new))
        return result
    except BaseException as exc:
        _pg_rollback(db)
        _raise_if_stale(info, exc)
        raise
    finally:
        info.pop("wiz_transaction", None)
        info.pop(PENDING_BEGIN, None)
        info.pop(DEFERRED, None)
        info.pop(STALE_BEGIN, None)
        if conn.in_transaction():
            conn.rollback()  # SQLAlchemy's bookkeeping only


# At most this many writes commit together (Database._write_grouped).
GROUP_MAX = 32


def _all_of(conn: Connection, group: list[_Write], watched: bool) -> None:
    """Run every write of ``group`` in the caller's transaction, in order, each
    with its ``before_commit`` hooks, as if it committed alone; the first that
    raises fails the transaction (``_commit_group`` then runs each write
    alone). Before each write but the first, a mark in ``wiz_changes`` (when
    watched) tells where its changes begin."""
    for i, each in enumerate(group):
        if i and watched:
            later(conn, _MARK, {"i": str(i)})
        each.result = each.fn(conn, *each.args)
        _before_commit(conn)


_MARK = "INSERT INTO wiz_changes (kind, new) VALUES ('write', :i)"


def _nothing(conn: Connection) -> None:
    """A write of no statement (``Database.flush``: it takes notifications along)."""


def _split_changes(changes: list[tuple[Any, ...]], group: list[_Write]) -> None:
    """Give each write of ``group`` its own part of the group's ``changes``
    (``_all_of``'s marks), so that each hook sees the Watch as of its write."""
    target = group[0].changes
    for change in changes:
        if change[0] == "write":
            target = group[int(change[2])].changes
        else:
            target.append(change)


def _pg_write(conn: Connection, changes: list[tuple[Any, ...]] | None,
              fn: Callable[..., T], *args: Any) -> T:
    """``_pg_transaction``, run again (up to ``_RETRIES`` times) when
    PostgreSQL refused it for crossing another transaction's locks."""
    for attempt in range(_RETRIES):
        try:
            return _pg_transaction(conn, changes, fn, *args)
        except Exception as exc:
            if not _crossed(exc) or attempt == _RETRIES - 1:
                raise
            if changes is not None:
                changes.clear()
            log.debug("a write crossed another node's, running it again: %s", exc)
    raise AssertionError("unreachable")


# Per session; ignored on a Unix socket.
_SERVER_KEEPALIVES = ("SELECT set_config('tcp_keepalives_idle', '30', false),"
                      " set_config('tcp_keepalives_interval', '10', false),"
                      " set_config('tcp_keepalives_count', '3', false),"
                      " set_config('tcp_user_timeout', '60000', false)")


def _raise_if_stale(info: dict[str, Any], exc: BaseException) -> None:
    """Raise _Stale if the transaction failed at its BEGIN on a dropped connection."""
    if info.pop(STALE_BEGIN, False):
        raise _Stale from exc


def _begun(info: dict[str, Any]) -> bool:
    """Whether the transaction's BEGIN went out (PostgreSQL's is deferred to its
    first statement, ``postgres.defer_begin``); it is dropped if it did not."""
    return info.pop(PENDING_BEGIN, None) is None


def _pg_rollback(db: Any) -> None:
    try:
        if not db.closed and db.info.transaction_status != 0:  # 0: IDLE
            db.execute("ROLLBACK")
    except Exception:
        pass  # the caller checks the connection (_usable) before using it again


class Database:
    """One SQLite file (a path) or PostgreSQL database (a ``postgresql://``
    URL), opened for the life of the daemon."""

    def __init__(self, path: Path | str, *, synchronous: str = "NORMAL",
                 watch: Watch | None = None, node: str | None = None) -> None:
        # The PostgreSQL database's URL, or None for a SQLite file at ``path``.
        self.url: str | None = path if is_url(path) else None  # type: ignore[assignment]
        self.path = Path(path) if self.url is None else Path()
        self.synchronous = synchronous.upper()
        self.watch = watch
        # PostgreSQL: the id of the node this wizd runs as (wizd.cluster). The
        # write connection holds a lock on it, so that two wizd cannot run as
        # one node, and tells it to the statements (``wiz.node``: the claim
        # marks the jobs it takes). SQLite's one wizd needs neither (the
        # instance lock is lifecycle's).
        self.node = node if self.url is not None else None
        self._node_held = False  # the node's lock was taken once (a reconnect's is retaken)
        self._engine: Engine | None = None
        self._on_loop = self.synchronous in _NO_FSYNC and self.url is None
        # The write connection (None: open it at the next write; it failed and was closed).
        self._writer: Connection | None = None
        self._recorder = _Recorder()
        # Off-loop commits (fsync per commit) go one at a time.
        self._write_lock = anyio.Lock()
        # PostgreSQL: the writes waiting for the write connection (_write_grouped),
        # and the notifications to send before the next of them (notify).
        self._waiting: list[_Write] = []
        self._notices: list[tuple[str, str]] = []
        self._readers = anyio.CapacityLimiter(READERS)
        self._idle_readers: list[Connection] = []
        self._wal = f"{self.path}-wal" if self.url is None else ""
        self._checkpointer: Connection | None = None
        # Set by a write that took the WAL past WAL_LIMIT; run_checkpoints
        # waits on it (None: that task is not running).
        self._checkpoint_due: anyio.Event | None = None
        self._checkpoint_lock = anyio.Lock()
        self._health = _Health(self.label)
        self.schema_before = 0
        self.schema_after = 0

    @property
    def where(self) -> Path | str:
        """What ``failures.starting`` names: the file, or the URL without its password."""
        return self.path if self.url is None else self.label

    @property
    def label(self) -> str:
        """The database as logs and errors name it (a URL without its password)."""
        if self.url is None:
            return str(self.path)
        return shown(self.url)

    def _on_connect(self, dbapi_conn: Any, _record: Any) -> None:
        # The driver never begins a transaction by itself: _transaction does,
        # so that writes can BEGIN IMMEDIATE.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        # busy_timeout first: the other pragmas may need a lock too.
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={self.synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    async def open(self) -> None:
        """Create or upgrade the database and open its connections.

        Raises SchemaError if the file is newer than this wizd, not a database,
        or damaged; StorageUnavailable, saying where and what to do, if the
        file or its folder cannot be created, opened or written.
        """
        try:
            with starting(self.where):
                if self.url is None:
                    await self._open()
                else:
                    await self._open_pg(self.url)
        except BaseException:
            await self.close()
            raise

    async def _open(self) -> None:
        await anyio.to_thread.run_sync(_prepare_file, self.path)
        self.schema_before, self.schema_after = await anyio.to_thread.run_sync(
            migrate, self.path
        )
        # The connections are held by this object, not by a pool. sqlite3
        # connections may be used from any thread, one at a time.
        engine = create_engine(f"sqlite:///{self.path}", poolclass=NullPool,
                               hide_parameters=True,
                               connect_args={"check_same_thread": False})
        event.listen(engine, "connect", self._on_connect)
        self._engine = engine
        self._writer = await anyio.to_thread.run_sync(self._open_writer)

    async def _open_pg(self, url: str) -> None:
        from . import postgres

        # No reset on return: the runner ends its transactions itself, and
        # closing a connection the server dropped must not log a failed rollback.
        engine = create_engine(postgres.engine_url(url), poolclass=NullPool,
                               hide_parameters=True, isolation_level="AUTOCOMMIT",
                               pool_reset_on_return=None,
                               connect_args=postgres.connect_args(url))
        event.listen(engine, "connect", lambda dbapi_conn, _record: postgres.prepare(dbapi_conn))
        # A statement SQLAlchemy sends (Core) sends the deferred BEGIN first.
        event.listen(engine, "before_cursor_execute",
                     lambda conn, cursor, *_: postgres.send_pending(cursor.connection, conn.info))
        self._engine = engine
        # The write connection first: it takes the node lock, so a wizd that
        # another one's database refuses leaves its schema as it found it.
        self._writer = await anyio.to_thread.run_sync(self._open_writer)
        self.schema_before, self.schema_after = await anyio.to_thread.run_sync(
            lambda: postgres.migrate(url, latest=LATEST))

    def _open_writer(self) -> Connection:
        assert self._engine is not None, "the database is not open"
        conn = self._engine.connect()
        if self.url is not None:
            try:
                if self.node is not None:
                    self._take_node_lock(conn, self.node)
                if self.watch is not None:
                    db = conn.connection.dbapi_connection
                    assert db is not None
                    db.execute("CREATE TEMP TABLE IF NOT EXISTS wiz_changes"
                               " (n BIGINT GENERATED ALWAYS AS IDENTITY,"
                               " kind TEXT NOT NULL, old TEXT, new TEXT, seq BIGINT)")
                    db.execute("SET wiz.watch = 'on'")
            except BaseException:
                conn.close()
                raise
            return conn
        try:
            db = raw(conn)
            # Checkpoints run on their own connection, never inside a commit.
            db.execute("PRAGMA wal_autocheckpoint=0")
            db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT}")
            if self._on_loop:
                # A lock held by another process must not block the loop: fail at once.
                db.execute("PRAGMA busy_timeout=0")
            if self.watch is not None:
                db.create_function("wiz_changed", -1, self._recorder.record)
                for statement in self.watch.triggers:
                    db.execute(statement)
        except BaseException:
            conn.close()
            raise
        return conn

    def _take_node_lock(self, conn: Connection, node: str) -> None:
        """Hold the lock on ``node`` for the session and tell statements the
        node (``wiz.node``). Raises DaemonBusy if another session holds it: a
        wizd running as the same node (or this one's, the server not having
        noticed yet that it is gone)."""
        from .postgres_keys import NODE_LOCK_CLASS

        db = conn.connection.dbapi_connection
        assert db is not None
        # The server's side of the session gives up on a dead network within
        # a minute too (its defaults wait two hours): until it does, a lost
        # session of this node holds the node's lock.
        db.execute(_SERVER_KEEPALIVES)
        taken = db.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))",
                           (NODE_LOCK_CLASS, node)).fetchone()[0]
        if not taken:
            if self._node_held:
                # This node's own session, lost to a network cut, that the
                # server has not ended yet: a passing trouble, as the cut was.
                raise StorageUnavailable(
                    f"PostgreSQL still holds this node's previous session ({node!r}); "
                    "waiting for the server to end it")
            raise DaemonBusy(
                f"another wizd is already running as node {node!r} on the database "
                f"{self.label}: give this one its own --node (or its own --socket)")
        self._node_held = True
        db.execute("SELECT set_config('wiz.node', %s, false)", (node,))

    async def close(self) -> None:
        engine, self._engine = self._engine, None
        if engine is None:
            return
        with anyio.CancelScope(shield=True):
            async with self._write_lock, _AllTokens(self._readers):
                conns = [self._writer, self._checkpointer, *self._idle_readers]
                self._writer = self._checkpointer = None
                self._idle_readers = []
                for conn in conns:
                    if conn is not None:
                        await anyio.to_thread.run_sync(conn.close)
                await anyio.to_thread.run_sync(engine.dispose)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` in a read transaction, in a worker thread,
        and return its result.

        Raises StorageUnavailable if the storage fails the read (I/O error).
        """
        try:
            return await self._read(fn, *args)
        except Exception as exc:
            translated = storage_error(exc)
            if translated is None or translated is exc:
                raise
            raise translated from exc

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        engine = self._engine
        assert engine is not None, "the database is not open"
        async with self._readers:
            conn: Connection | None = (self._idle_readers.pop() if self._idle_readers
                                       else await anyio.to_thread.run_sync(engine.connect))
            assert conn is not None
            begin = "BEGIN" if self.url is None else _PG_READ
            try:
                # Deferred: a read takes no lock that a write would wait for.
                try:
                    result = await anyio.to_thread.run_sync(_transaction, conn, begin, fn, *args)
                except _Stale:
                    await anyio.to_thread.run_sync(_close_quietly, conn)
                    conn = None
                    conn = await anyio.to_thread.run_sync(engine.connect)
                    result = await anyio.to_thread.run_sync(_transaction, conn, begin, fn, *args)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    if conn is not None and not await anyio.to_thread.run_sync(_usable, conn):
                        await anyio.to_thread.run_sync(_close_quietly, conn)
                        conn = None
                raise
            finally:
                if conn is not None:
                    self._idle_readers.append(conn)
        return result

    async def write(
        self,
        fn: Callable[..., T],
        *args: Any,
        after_commit: Callable[[T], None] | None = None,
    ) -> T:
        """Run ``fn(conn, *args)`` in a write transaction, commit, and return its result.

        Writes commit in the order they are called (on PostgreSQL, those
        that wait together in one transaction; see the module docstring).
        ``fn`` that raises loses its own work only. ``after_commit`` runs on
        the loop right after the commit, before any later write's; the write
        returns after it. ``fn`` must act on the
        database alone, taking times and inputs from its arguments (it may
        run again: after another process's lock made it fail at its start on
        SQLite; on PostgreSQL, after a deadlock, or when a write committed
        with it failed).

        A write, once started, always finishes (it is shielded from
        cancellation): a cancelled caller never leaves a half-applied change
        or a lost commit.

        Raises StorageUnavailable if the storage cannot take the write (disk
        full, read-only, I/O error, locked by another process for longer than
        ``BUSY_TIMEOUT_MS``): nothing of it is stored. Otherwise, what ``fn``
        raised.
        """
        req = _Write(fn, args, after_commit)
        if self._on_loop:
            # No await until the commit and its hook are done (cancellation
            # cannot come in between); what waits after is shielded.
            self._commit(req)
            if _is_busy(req.error):
                with anyio.CancelScope(shield=True):
                    await self._retry_busy(req)
            self._finish(req)
            # A write never yields otherwise: a task writing in a loop would
            # keep every other task waiting.
            await anyio.lowlevel.cancel_shielded_checkpoint()
        elif self.url is not None:
            with anyio.CancelScope(shield=True):
                await self._write_grouped(req)
        else:
            with anyio.CancelScope(shield=True):
                async with self._write_lock:
                    await anyio.to_thread.run_sync(self._commit, req)
                    self._finish(req)
        wal_size = _wal_size(self._wal) if self._wal else 0  # PostgreSQL has none of ours
        if wal_size > WAL_LIMIT and self._checkpoint_due is not None:
            self._checkpoint_due.set()
        if wal_size > WAL_HARD_LIMIT:
            with anyio.CancelScope(shield=True):
                await self.checkpoint()
        if req.error is not None:
            raise req.error
        return req.result  # type: ignore[no-any-return]

    async def _write_grouped(self, req: _Write) -> None:
        """PostgreSQL's writes commit in groups: the writes waiting for the
        write connection when it comes free go in one transaction, in the
        order they were called, with one COMMIT and one thread hand-off for
        all (``_commit_group``); then each gets the Watch's changes of its own
        statements and its hook, in that order. A write alone costs what it
        did. Under load, commits (a WAL flush each) and hand-offs no longer
        grow with the writes."""
        self._waiting.append(req)
        async with self._write_lock:
            while not req.done:
                group, self._waiting = self._waiting[:GROUP_MAX], self._waiting[GROUP_MAX:]
                notices, self._notices = self._notices, []
                try:
                    await anyio.to_thread.run_sync(self._commit_group, group, notices)
                    for each in group:
                        each.done = True
                        self._finish(each)
                except BaseException as exc:  # a bug of ours: no write waits forever for it
                    for each in group:
                        if not each.done:
                            each.done = True
                            each.error = RuntimeError(f"the write was not run: {exc!r}")
                    raise

    def notify(self, channel: str, payload: str) -> None:
        """PostgreSQL: ``NOTIFY channel, payload`` (at most 8,000 bytes) on the
        write connection, right before the next writes' transaction: a
        listener gets what was notified before a write before what that
        write's triggers notify. Live only: lost with a lost connection.
        ``flush`` sends what no write has taken along."""
        self._notices.append((channel, payload))

    async def flush(self) -> None:
        """Send the notifications (``notify``) that no write has taken yet."""
        if self._notices:
            await self.write(_nothing)

    def _send_notices(self, notices: list[tuple[str, str]]) -> None:
        """``notify``'s notifications, in order, in one statement of their own
        (in a worker thread, before the group that took them)."""
        from . import notices as notifications

        try:
            if self._writer is None:
                self._writer = self._open_writer()
            db: Any = self._writer.connection.dbapi_connection
            notifications.send(db, notices)
        except Exception as exc:
            log.warning("could not send %d notification(s): %s", len(notices), exc)

    def _commit_group(self, group: list[_Write], notices: list[tuple[str, str]]) -> None:
        """``_commit`` of a group of writes as one transaction (in a worker
        thread). If PostgreSQL refused it (a write raised, or a statement was
        refused), nothing of it is stored, and each write runs again alone,
        in order, so that each gets its own outcome and loses only its own
        work (``write`` allows a ``fn`` to run again). If the session was
        lost, whether its COMMIT went through is not known: every write of
        the group fails with that error, as a write alone does."""
        if notices:
            self._send_notices(notices)
        if len(group) > 1:
            whole = _Write(_all_of, (group, self.watch is not None), None)
            self._commit(whole)
            if whole.error is None:
                _split_changes(whole.changes, group)
                return
            if self._writer is None:  # lost, not refused (_commit dropped it)
                for each in group:
                    each.result, each.error = None, copy.copy(whole.error)
                return
        for each in group:
            each.result = None
            self._commit(each)

    async def _retry_busy(self, req: _Write) -> None:
        """Another process holds the write lock (nothing of ours was done): try
        again every BUSY_RETRY seconds for up to BUSY_TIMEOUT_MS."""
        deadline = anyio.current_time() + BUSY_TIMEOUT_MS / 1000
        while _is_busy(req.error) and anyio.current_time() < deadline:
            req.error = None
            await anyio.sleep(BUSY_RETRY)
            self._commit(req)

    def _commit(self, req: _Write) -> None:
        """BEGIN IMMEDIATE, ``fn``, COMMIT on the write connection (on the loop,
        or in a worker thread under the write lock). Never raises: the outcome
        is in ``req``."""
        try:
            if self._writer is None:
                self._writer = self._open_writer()
            conn = self._writer
            if self.url is not None:
                changes = req.changes if self.watch is not None else None
                try:
                    req.result = _pg_write(conn, changes, req.fn, *req.args)
                except _Stale:
                    _close_quietly(conn)
                    self._writer = None
                    self._writer = conn = self._open_writer()
                    req.result = _pg_write(conn, changes, req.fn, *req.args)
                return
            self._recorder.target = req.changes
            try:
                # IMMEDIATE: the write lock at once, so a write can never fail
                # later with SQLITE_BUSY on upgrading a read lock.
                req.result = _transaction(conn, "BEGIN IMMEDIATE", req.fn, *req.args)
            finally:
                self._recorder.target = None
        except Exception as exc:
            # A constraint that refused a statement is a Conflict, here for
            # every write (failures.constraint_error); storage trouble is
            # translated in _finish.
            req.error = constraint_error(exc) or exc
            req.changes.clear()
            if self._writer is not None and not _usable(self._writer):
                _close_quietly(self._writer)
                self._writer = None

    def _finish(self, req: _Write) -> None:
        """On the loop, right after the commit (or its failure): the watched
        changes, then the hook. Never raises."""
        self._health.settle(req)
        if req.error is not None:
            return
        if req.changes and self.watch is not None:
            try:
                self.watch.apply(req.changes)
            except Exception:
                log.exception("applying a write's changes failed")
        if req.after_commit is not None:
            try:
                req.after_commit(req.result)
            except Exception as exc:
                log.exception("after-commit hook failed")
                req.error = exc

    async def run_checkpoints(self) -> None:
        """Checkpoint the WAL each time writes have taken it past ``WAL_LIMIT``,
        until cancelled (wizd runs this in its root task group). The write that
        crossed the limit returns at once: a checkpoint syncs the database file,
        which can take longer than a hundred replies' writes."""
        try:
            while True:
                due = self._checkpoint_due = anyio.Event()
                await due.wait()
                await self.checkpoint()
        finally:
            self._checkpoint_due = None

    async def checkpoint(self) -> None:
        """One checkpoint, PASSIVE, on its own connection in a worker thread: it
        copies what it can without waiting for readers or writers, while writes
        go on. A failure is logged (once while it lasts) and retried at the next
        one. On a full disk it fails while the commits still fit in the WAL (the
        database file must grow to take the pages); it catches up once there is
        room, and the next write, finding the WAL copied, starts it over (cut
        back to WAL_LIMIT)."""
        async with self._checkpoint_lock:  # the task's, or a write's past WAL_HARD_LIMIT
            try:
                if self._checkpointer is None:
                    assert self._engine is not None, "the database is not open"
                    self._checkpointer = await anyio.to_thread.run_sync(self._engine.connect)
                if not await anyio.to_thread.run_sync(_checkpoint, self._checkpointer,
                                                      self._health):
                    await anyio.to_thread.run_sync(_close_quietly, self._checkpointer)
                    self._checkpointer = None
            except Exception as exc:  # the connection could not be opened
                self._health.checkpoint_failed(exc)


@dataclass(frozen=True)
class Watch:
    """Row changes to keep in-memory figures by (see the module docstring).

    ``triggers``: ``CREATE TEMP TRIGGER`` statements whose bodies call
    ``wiz_changed(...)`` with any values; ``apply`` gets, on the loop after a
    write has committed, the argument tuples of that write's calls, in order.
    """

    triggers: tuple[str, ...]
    apply: Callable[[list[tuple[Any, ...]]], None]


class _Recorder:
    """The write connection's ``wiz_changed``: files each call under the write being run."""

    def __init__(self) -> None:
        self.target: list[tuple[Any, ...]] | None = None

    def record(self, *args: Any) -> None:
        if self.target is not None:
            self.target.append(args)


@dataclass(eq=False)
class _Write:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    after_commit: Callable[[Any], None] | None
    result: Any = None
    error: Exception | None = None
    # What its statements reported to the Watch (wiz_changed), if any.
    changes: list[tuple[Any, ...]] = field(default_factory=list)
    # Committed or failed, its hook run (PostgreSQL's group commit).
    done: bool = False


def _is_busy(exc: BaseException | None) -> bool:
    """Whether ``exc`` is SQLITE_BUSY: another process holds the lock."""
    if isinstance(exc, OperationalError):
        exc = exc.orig
    return isinstance(exc, sqlite3.OperationalError) and \
        getattr(exc, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY


def _wal_size(wal: str) -> int:
    # The WAL restarts from its start after a complete checkpoint, and
    # journal_size_limit cuts the file back then: it grows past WAL_LIMIT
    # only when that much has been written since the last checkpoint.
    try:
        return os.stat(wal).st_size
    except OSError:
        return 0


def _checkpoint(conn: Connection, health: _Health) -> bool:
    """One PASSIVE checkpoint; whether ``conn`` can be used again."""
    try:
        raw(conn).execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except Exception as exc:
        health.checkpoint_failed(exc)
        return _usable(conn)
    health.checkpoint_done()
    return True


def _close_quietly(conn: Connection) -> None:
    try:
        conn.close()
    except Exception:
        pass


def _usable(conn: Connection) -> bool:
    """After a call failed: whether ``conn`` can go on (its transaction rolled back)."""
    try:
        if conn.in_transaction():
            conn.rollback()
        if conn.dialect.name == "postgresql":
            db = conn.connection.dbapi_connection
            # Usable again only if back out of every transaction (IDLE).
            if db is None or db.closed or db.broken or db.info.transaction_status != 0:
                return False
        return not conn.invalidated and not conn.closed
    except Exception as exc:
        _unusable(exc)
        return False


def _unusable(exc: Exception) -> None:
    translated = storage_error(exc)
    if translated is None:
        log.exception("database connection unusable after an error; reopening")
    else:  # the storage's condition, not a bug: no traceback
        log.warning("database connection unusable after an error (%s); reopening",
                    translated.message)


class _Health:
    """One log line when writes (or checkpoints) start failing for a storage
    reason, one when they work again: not one per write while a disk is full.

    Used by one write at a time and one checkpoint at a time.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.failing: str | None = None
        self.checkpoint_failing = False

    def settle(self, req: _Write) -> None:
        """Give a failed write its StorageUnavailable, if that is what it met,
        and log a change of state."""
        translated = None if req.error is None else storage_error(req.error)
        if translated is not None:
            req.error = translated
            if translated.cause != self.failing:
                log.warning("database %s: writes fail: storage unavailable: %s; they succeed "
                            "again once that is fixed", self.path, translated.cause)
            self.failing = translated.cause
        elif self.failing is not None and req.error is None:
            log.info("database %s: writes succeed again", self.path)
            self.failing = None

    def checkpoint_failed(self, exc: Exception) -> None:
        translated = storage_error(exc)
        if translated is None:
            log.exception("WAL checkpoint failed; retried after the next commit")
        elif not self.checkpoint_failing:
            log.warning("database %s: WAL checkpoint failed: %s; retried after each commit",
                        self.path, translated.message)
        self.checkpoint_failing = translated is not None

    def checkpoint_done(self) -> None:
        if self.checkpoint_failing:
            log.info("database %s: WAL checkpoint done again", self.path)
            self.checkpoint_failing = False


class _AllTokens:
    """Hold every token of a CapacityLimiter: no read is in flight meanwhile."""

    def __init__(self, limiter: anyio.CapacityLimiter) -> None:
        self.limiter = limiter
        self.owners = [object() for _ in range(int(limiter.total_tokens))]

    async def __aenter__(self) -> None:
        for owner in self.owners:
            await self.limiter.acquire_on_behalf_of(owner)

    async def __aexit__(self, *exc: object) -> None:
        for owner in self.owners:
            self.limiter.release_on_behalf_of(owner)
