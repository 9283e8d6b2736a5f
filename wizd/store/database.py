"""The database runner: queries are plain sync functions over a SQLAlchemy
``Connection``; this module runs them off the event loop on either backend.

- trio: a sync engine (pysqlite); reads run in worker threads through
  ``anyio.to_thread.run_sync``, writes in the writer thread (below).
  (SQLAlchemy's asyncio extension does not run on trio.)
- asyncio: an async engine over aiosqlite, whose own thread does the blocking
  work; the same sync query functions run through ``AsyncConnection.run_sync``.

Connections are opened once and kept: one for writes, and up to ``READERS``
for reads, so no call pays for a pool checkout and its reset.

Writes are serialised, so commits happen in a single order, and writers that
queue up meanwhile share one commit (group commit). Code that must act in
that order (publishing events, whose ``seq`` must reach subscribers in
increasing order) passes ``after_commit``: hooks run on the event loop, in
commit order, each before its writer returns.

How writes reach SQLite differs by backend, and the difference is speed:

- trio: one writer thread owns the write connection and commits batch after
  batch as long as writers are queued; the loop is called back once per
  batch (``run_sync_soon``) and runs its hooks. While the loop handles one
  batch's results, the next batch is already committing. A hop between
  threads is the dear part here (a round trip ~200 us on the 2-vCPU VM of
  bench/, against ~45 us for a small commit): under load, when the thread
  is busy and the loop awake, a write costs neither a wake-up nor a hop.
- asyncio: aiosqlite's thread does the SQLite calls; the loop holds a lock
  while one batch commits, and the writers that queued meanwhile form the
  next batch.

Hot queries may bypass SQLAlchemy's statement machinery with ``raw(conn)``
(the DB-API connection under ``conn``, in the same transaction): here a
statement costs ~3 us that way and ~30 us through ``Connection.execute``.

Figures that calls read often (queue counts, the last seq) are kept in
memory and maintained at commit through a ``Watch``: temporary triggers on
the write connection report each changed row to a Python function, which
files it under the write being run; once that write has committed, its
changes go to ``Watch.apply``, on the loop, right before its hook. A write
that fails (or is rolled back to its savepoint) reports nothing, and no
statement that changes the watched tables escapes the triggers.

Storage trouble (a full disk, a read-only file, an I/O error) reaches callers
as ``StorageUnavailable`` (see ``failures``), and the log gets one line when
writes start failing and one when they work again, not one per write. The
connections stay open through it: a failed transaction is rolled back, and
the next one succeeds once the cause is gone.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import sniffio
import trio
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.pool import NullPool

from .failures import starting, storage_error
from .migrations import migrate

log = logging.getLogger(__name__)

T = TypeVar("T")

READERS = 4
# Writers committed together at most (group commit).
MAX_BATCH = 256
BUSY_TIMEOUT_MS = 5000
# The WAL is checkpointed when its file grows past this size (1000 pages of
# 4 KiB, as SQLite's own automatic checkpoint, which is off on the write
# connection so that no commit pays for one), and is cut back to it after.
#
# Engines are made with hide_parameters: a database error's text would
# otherwise carry the statement's values (a provider's API key among them)
# into the log.
WAL_LIMIT = 4 * 1024 * 1024


def _prepare_file(path: Path) -> None:
    """Create the folder (0700) and the file (0600) before SQLite touches them."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


def raw(conn: Connection) -> Any:
    """The DB-API connection under ``conn``, inside the same transaction: the
    sqlite3 connection (trio), or SQLAlchemy's sync-looking adapter of the
    aiosqlite one (asyncio, inside ``run_sync``).

    For hot statements: plain DB-API calls skip SQLAlchemy's per-statement
    work (compilation cache look-ups, result metadata), ten times the cost of
    a small indexed query here.
    """
    return conn.connection.dbapi_connection


def _on_begin(conn: Connection) -> None:
    # A write takes SQLite's write lock at once, so it can never fail later
    # with SQLITE_BUSY on upgrading a read lock; reads begin deferred.
    immediate = conn.get_execution_options().get("wiz_write", False)
    raw(conn).execute("BEGIN IMMEDIATE" if immediate else "BEGIN")


class _Threads:
    """trio: sync connections; reads each in a worker thread, writes in the writer thread."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def connect(self) -> Any:
        return await anyio.to_thread.run_sync(self.engine.connect)

    async def run(self, conn: Any, fn: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(fn, conn, *args)

    async def close(self, conn: Any) -> None:
        await anyio.to_thread.run_sync(conn.close)

    async def dispose(self) -> None:
        await anyio.to_thread.run_sync(self.engine.dispose)

    async def writer(self, wal: str, health: _Health, watch: Watch | None) -> _WriterThread:
        writer = _WriterThread(self.engine, wal, health, watch)
        await writer.start()
        return writer


class _Aiosqlite:
    """asyncio: aiosqlite connections; sync query functions through ``run_sync``."""

    def __init__(self, url: str, on_connect: Callable[..., None]) -> None:
        from sqlalchemy.ext.asyncio import create_async_engine

        self.engine = create_async_engine(url, poolclass=NullPool, hide_parameters=True)
        event.listen(self.engine.sync_engine, "connect", on_connect)
        event.listen(self.engine.sync_engine, "begin", _on_begin)

    async def connect(self) -> Any:
        return await self.engine.connect()

    async def run(self, conn: Any, fn: Callable[..., T], *args: Any) -> T:
        return await conn.run_sync(fn, *args)  # type: ignore[no-any-return]

    async def close(self, conn: Any) -> None:
        await conn.close()

    async def dispose(self) -> None:
        await self.engine.dispose()

    async def writer(self, wal: str, health: _Health, watch: Watch | None) -> _LockedWriter:
        writer = _LockedWriter(self, wal, health, watch)
        await writer.start()
        return writer


class _WriterThread:
    """trio: a thread that owns the write connection and commits what is queued,
    batch after batch, telling the loop once per batch (see the module docstring).

    The loop's side only appends to a list under a lock and sleeps until called
    back; the thread needs waking only when it was idle.
    """

    def __init__(self, engine: Engine, wal: str, health: _Health, watch: Watch | None) -> None:
        self.engine = engine
        self.wal = wal
        self.health = health
        self.watch = watch
        self._cond = threading.Condition()
        self._pending: list[_Write] = []
        self._stopping = False
        self._thread: threading.Thread | None = None

    async def start(self) -> None:
        token = trio.lowlevel.current_trio_token()
        conn = await anyio.to_thread.run_sync(_open_writer, self.engine, self.watch)
        self._thread = threading.Thread(target=self._main, args=(conn, token.run_sync_soon),
                                        name="wizd-db-writer", daemon=True)
        self._thread.start()

    async def commit(self, req: _Write) -> None:
        """Queue ``req`` and sleep until ``_deliver`` has run its hook.

        The sleep cannot be cancelled (``Abort.FAILED``): a cancelled caller
        still learns its write's outcome, as under a shield, without the cost
        of a shielded CancelScope and an Event on every write.
        """
        req.release = partial(trio.lowlevel.reschedule, trio.lowlevel.current_task())
        with self._cond:
            self._pending.append(req)
            self._cond.notify()
        # No checkpoint between queueing and sleeping: _deliver, which runs on
        # this loop, cannot come first.
        await trio.lowlevel.wait_task_rescheduled(_no_abort)

    async def stop(self) -> None:
        """Commit what is queued, then close the connection and end the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            await anyio.to_thread.run_sync(self._thread.join)

    def _main(self, conn: Connection | None, call_soon: Callable[..., None]) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if not self._pending:
                    break
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
            conn = _commit(self.engine, conn, batch, self.watch)
            self.health.settle(batch)
            try:
                # Callbacks run in the order they were scheduled: hooks in commit order.
                call_soon(_deliver, batch, self.watch)
            except trio.RunFinishedError:
                break  # the loop is gone, and nobody waits for these any more
            if conn is not None and _wal_size(self.wal) > WAL_LIMIT:
                _checkpoint(conn, self.health)
        if conn is not None:
            conn.close()


class _LockedWriter:
    """asyncio: one batch at a time through aiosqlite, under a lock on the loop."""

    def __init__(self, driver: _Aiosqlite, wal: str, health: _Health,
                 watch: Watch | None) -> None:
        self.driver = driver
        self.wal = wal
        self.health = health
        self.watch = watch
        self._lock = anyio.Lock()
        self._queued: list[_Write] = []
        self._conn: Any = None

    async def start(self) -> None:
        self._conn = await self._open()

    async def _open(self) -> Any:
        conn = await self.driver.connect()
        await self.driver.run(conn, _prepare_writer, self.watch)
        return conn

    async def commit(self, req: _Write) -> None:
        with anyio.CancelScope(shield=True):
            await self._commit(req)

    async def _commit(self, req: _Write) -> None:
        self._queued.append(req)
        async with self._lock:
            if req.done:  # committed with an earlier batch
                return
            batch = self._queued[:MAX_BATCH]
            del self._queued[:MAX_BATCH]
            try:
                if self._conn is None:
                    self._conn = await self._open()
                await self.driver.run(self._conn, _run_batch, batch)
            except Exception as exc:  # the commit itself failed: nothing of the batch is stored
                for each in batch:
                    each.error = each.error or exc
                self._conn = await _checked(self.driver, self._conn)
            self.health.settle(batch)
            _deliver(batch, self.watch)
            if self._conn is not None and _wal_size(self.wal) > WAL_LIMIT:
                await self.driver.run(self._conn, _checkpoint, self.health)

    async def stop(self) -> None:
        async with self._lock:
            if self._conn is not None:
                await self.driver.close(self._conn)
                self._conn = None


class Database:
    """One SQLite file, opened for the life of the daemon."""

    def __init__(self, path: Path, *, synchronous: str = "NORMAL",
                 watch: Watch | None = None) -> None:
        self.path = Path(path)
        self.watch = watch
        self.synchronous = synchronous.upper()
        self._driver: _Threads | _Aiosqlite | None = None
        self._writer: _WriterThread | _LockedWriter | None = None
        self._readers = anyio.CapacityLimiter(READERS)
        self._idle_readers: list[Any] = []
        self._wal = f"{self.path}-wal"
        self._health = _Health(self.path)
        self.schema_before = 0
        self.schema_after = 0

    def _on_connect(self, dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide where transactions begin
        # (SQLAlchemy's recipe for pysqlite and aiosqlite): writes can
        # BEGIN IMMEDIATE, and SAVEPOINTs work.
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
            with starting(self.path):
                await self._open()
        except BaseException:
            await self.close()
            raise

    async def _open(self) -> None:
        await anyio.to_thread.run_sync(_prepare_file, self.path)
        self.schema_before, self.schema_after = await anyio.to_thread.run_sync(
            migrate, self.path
        )
        # The connections are held by this object, not by a pool.
        if sniffio.current_async_library() == "asyncio":
            self._driver = _Aiosqlite(f"sqlite+aiosqlite:///{self.path}", self._on_connect)
        else:
            engine = create_engine(f"sqlite:///{self.path}", poolclass=NullPool,
                                   hide_parameters=True)
            event.listen(engine, "connect", self._on_connect)
            event.listen(engine, "begin", _on_begin)
            self._driver = _Threads(engine)
        self._writer = await self._driver.writer(self._wal, self._health, self.watch)

    async def close(self) -> None:
        driver, self._driver = self._driver, None
        if driver is None:
            return
        with anyio.CancelScope(shield=True):
            writer, self._writer = self._writer, None
            if writer is not None:
                await writer.stop()
            async with _AllTokens(self._readers):
                conns, self._idle_readers = self._idle_readers, []
                for conn in conns:
                    await driver.close(conn)
                await driver.dispose()

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` in a read transaction and return its result.

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
        driver = self._driver
        assert driver is not None, "the database is not open"
        async with self._readers:
            conn = self._idle_readers.pop() if self._idle_readers else await driver.connect()
            try:
                result = await driver.run(conn, _in_transaction, fn, *args)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    conn = await _checked(driver, conn)
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

        Writers that queue up while a commit is under way are committed together
        (group commit); one failing ``fn`` loses only its own work and raises only
        in its own caller (see ``_run_batch``); ``fn`` must therefore act on the
        database alone, taking times and inputs from its arguments. ``after_commit``
        hooks run in commit order, on the event loop; a writer returns after its
        own hook (and so after every earlier one) has run.

        A write, once queued, always finishes (it is shielded from cancellation):
        a cancelled caller never leaves a half-applied change or a lost commit.

        Raises StorageUnavailable if the storage cannot take the write (disk
        full, read-only, I/O error): nothing of it is stored. Otherwise, what
        ``fn`` raised.
        """
        writer = self._writer
        assert writer is not None, "the database is not open"
        req = _Write(fn, args, after_commit)
        await writer.commit(req)  # not cancellable: see the writers
        if req.error is not None:
            raise req.error
        return req.result  # type: ignore[no-any-return]


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


def _prepare_writer(conn: Connection, watch: Watch | None) -> None:
    db = raw(conn)
    # Checkpoints are run by the writer after a commit, never inside one.
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT}")
    if watch is not None:
        recorder = _Recorder()
        db.create_function("wiz_changed", -1, recorder.record)
        for statement in watch.triggers:
            db.execute(statement)
        conn.info["wiz_recorder"] = recorder


def _in_transaction(conn: Connection, fn: Callable[..., T], *args: Any) -> T:
    with conn.begin():  # a read: rolled back or committed, nothing to keep
        return fn(conn, *args)


def _no_abort(_raise_cancel: Any) -> trio.lowlevel.Abort:
    return trio.lowlevel.Abort.FAILED


def _open_writer(engine: Engine, watch: Watch | None) -> Connection:
    conn = engine.connect()
    _prepare_writer(conn, watch)
    return conn


def _commit(engine: Engine, conn: Connection | None, batch: list[_Write],
            watch: Watch | None) -> Connection | None:
    """Commit ``batch`` on the writer thread; the connection to use next (None:
    reopen it next time; it failed and was closed)."""
    try:
        if conn is None:
            conn = _open_writer(engine, watch)
        _run_batch(conn, batch)
    except Exception as exc:  # the commit itself failed: nothing of the batch is stored
        for req in batch:
            req.error = req.error or exc
        if conn is not None and not _usable(conn):
            try:
                conn.close()
            except Exception:
                pass
            conn = None
    return conn


def _deliver(batch: list[_Write], watch: Watch | None) -> None:
    """On the loop, once a batch has committed (or failed): its watched changes
    and hooks, in order, then its writers are released. Never raises."""
    for req in batch:
        req.done = True
        if req.error is None and req.changes and watch is not None:
            try:
                watch.apply(req.changes)
            except Exception:
                log.exception("applying a write's changes failed")
        if req.error is None and req.after_commit is not None:
            try:
                req.after_commit(req.result)
            except Exception as exc:
                log.exception("after-commit hook failed")
                req.error = exc
        if req.release is not None:
            req.release()


def _wal_size(wal: str) -> int:
    # The WAL restarts from its start after a complete checkpoint, and
    # journal_size_limit cuts the file back then: it grows past WAL_LIMIT
    # only when that much has been written since the last checkpoint.
    try:
        return os.stat(wal).st_size
    except OSError:
        return 0


def _checkpoint(conn: Connection, health: _Health) -> None:
    # PASSIVE: copies what it can without waiting for readers; writers wait
    # meanwhile (it runs between two batches). A failure is retried after the
    # next commit. On a full disk it fails while the commits still fit in the
    # WAL (the database file must grow to take the pages); it catches up once
    # there is room, and the WAL is cut back then.
    try:
        raw(conn).execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except Exception as exc:
        health.checkpoint_failed(exc)
    else:
        health.checkpoint_done()


async def _checked(driver: _Threads | _Aiosqlite, conn: Any) -> Any:
    """After a call failed: ``conn`` if it is still usable, else None (closed)."""
    if conn is None:
        return None
    try:
        if await driver.run(conn, _usable):
            return conn
    except Exception as exc:  # the driver itself failed (aiosqlite's thread is gone)
        _unusable(exc)
    try:
        await driver.close(conn)
    except Exception:
        pass
    return None


def _usable(conn: Connection) -> bool:
    """After a call failed: whether ``conn`` can go on (its transaction rolled back)."""
    try:
        if conn.in_transaction():
            conn.rollback()
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

    Used by the one writer (its thread on trio, the loop on asyncio) only.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.failing: str | None = None
        self.checkpoint_failing = False

    def settle(self, batch: list[_Write]) -> None:
        """Give each failed writer of ``batch`` its StorageUnavailable, if that is
        what it met, and log a change of state."""
        cause = None
        for req in batch:
            translated = None if req.error is None else storage_error(req.error)
            if translated is not None:
                req.error = translated
                cause = translated.cause
        if cause is not None:
            if cause != self.failing:
                log.warning("database %s: writes fail: storage unavailable: %s; they succeed "
                            "again once that is fixed", self.path, cause)
            self.failing = cause
        elif self.failing is not None and any(req.error is None for req in batch):
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


@dataclass(eq=False)
class _Write:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    after_commit: Callable[[Any], None] | None
    result: Any = None
    error: Exception | None = None
    done: bool = False
    # Wakes its writer once committed and its hook has run (the writer thread's).
    release: Callable[[], None] | None = None
    # What its statements reported to the Watch (wiz_changed), if any.
    changes: list[tuple[Any, ...]] = field(default_factory=list)


def _run_batch(conn: Connection, batch: list[_Write]) -> None:
    """One write transaction (BEGIN IMMEDIATE) for the whole batch.

    Optimistic: the writers run one after another with nothing between them.
    If one raises, the transaction is rolled back and the rest of the batch
    runs again, this time each writer in its own SAVEPOINT, so that one
    failing writer loses only its own work and the batch runs at most twice.
    Writers are plain functions of the database (their timestamps and inputs
    come in their arguments), so running one again after a rollback does what
    it did the first time.

    Versus a SAVEPOINT and a RELEASE around every writer every time: two
    statements fewer per write, and each statement here is a hand-over of
    the GIL, dear while the loop thread is busy (bench/queue_throughput.py).
    """
    recorder: _Recorder | None = conn.info.get("wiz_recorder")
    try:
        _run_batch_recorded(conn, batch, recorder)
    finally:
        if recorder is not None:
            recorder.target = None


def _run(conn: Connection, req: _Write, recorder: _Recorder | None) -> None:
    """Run one writer, filing its watched changes under it (afresh at each try)."""
    req.changes = []
    if recorder is not None:
        recorder.target = req.changes
    req.result = req.fn(conn, *req.args)


def _run_batch_recorded(conn: Connection, batch: list[_Write], recorder: _Recorder | None
                        ) -> None:
    conn = conn.execution_options(wiz_write=True)
    with conn.begin() as tx:  # an exception out of here rolls back: the batch failed
        for req in batch:
            try:
                _run(conn, req, recorder)
            except Exception as exc:
                req.error = exc
                tx.rollback()
                break
        else:
            return
    rest = [req for req in batch if req.error is None]
    with conn.begin():
        # SQLAlchemy's begin_nested costs ~100 us a savepoint; the bare
        # statements do the same inside its transaction in a few.
        db = raw(conn)
        for req in rest:
            db.execute("SAVEPOINT w")
            try:
                _run(conn, req, recorder)
            except Exception as exc:
                req.error = exc
                try:
                    db.execute("ROLLBACK TO w")
                except Exception:
                    # It took the whole transaction down (disk full, I/O error,
                    # OR ROLLBACK): nothing of the batch is stored; say why.
                    raise exc from None
            db.execute("RELEASE w")
