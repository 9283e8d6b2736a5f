"""The database runner: queries are plain sync functions over a SQLAlchemy
``Connection``; this module runs them off the event loop on either backend.

One sync engine (pysqlite) on both backends: each call runs in a worker thread
through ``anyio.to_thread.run_sync``. Connections are opened once and kept:
one for writes, and up to ``READERS`` for reads, so no call pays for a pool
checkout and its reset.

Writes are serialised, so commits happen in a single order. Code that must
act in that order (publishing events, whose ``seq`` must reach subscribers in
increasing order) passes ``after_commit``, which runs after the commit and
before the next writer starts.

A write marked ``quick`` (a few indexed statements, nothing else that can
wait) runs on the event loop's own thread instead, as long as a commit needs
no fsync (``synchronous`` below FULL): there, the hop to a worker thread and
back costs more than the transaction. It never waits for SQLite's lock on
the loop (it falls back to a worker thread if another process holds it), and
checkpoints, which do fsync, run in a worker thread.

Hot queries may bypass SQLAlchemy's statement machinery with ``raw(conn)``
(the sqlite3 connection under ``conn``, in the same transaction): here a
statement costs ~3 us that way and ~30 us through ``Connection.execute``.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.pool import NullPool

from .migrations import migrate

log = logging.getLogger(__name__)

T = TypeVar("T")

READERS = 4
# Writers committed together at most (group commit).
MAX_BATCH = 256
BUSY_TIMEOUT_MS = 5000
# The WAL is checkpointed when its file grows past this size (1000 pages of
# 4 KiB, as SQLite's own automatic checkpoint, which is off on the write
# connection: it would run inside a commit, on the event loop for a quick
# write, and take 10-25 ms here for its fsyncs), and is cut back to it after.
WAL_LIMIT = 4 * 1024 * 1024


def _prepare_file(path: Path) -> None:
    """Create the folder (0700) and the file (0600) before SQLite touches them."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


def raw(conn: Connection) -> sqlite3.Connection:
    """The sqlite3 connection under ``conn``, inside the same transaction.

    For hot statements: plain DB-API calls skip SQLAlchemy's per-statement
    work (compilation cache look-ups, result metadata), ten times the cost of
    a small indexed query here.
    """
    return conn.connection.driver_connection  # type: ignore[return-value]


def quick(fn: Callable[..., T]) -> Callable[..., T]:
    """Mark a write function as quick: a few indexed statements, no I/O of its
    own and nothing else that can block. ``Database.write`` may run it on the
    event loop's thread (see the module docstring). Returns ``fn``."""
    fn.wiz_quick = True  # type: ignore[attr-defined]
    return fn


def _is_locked(exc: BaseException) -> bool:
    orig = getattr(exc, "orig", exc)
    return isinstance(orig, sqlite3.OperationalError) and "locked" in str(orig)


def _on_begin(conn: Connection) -> None:
    # A write takes SQLite's write lock at once, so it can never fail later
    # with SQLITE_BUSY on upgrading a read lock; reads begin deferred.
    immediate = conn.get_execution_options().get("wiz_write", False)
    raw(conn).execute("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """One SQLite file, opened for the life of the daemon."""

    def __init__(self, path: Path, *, synchronous: str = "NORMAL") -> None:
        self.path = Path(path)
        self.synchronous = synchronous.upper()
        self._engine: Engine | None = None
        self._writer: Connection | None = None
        self._write_lock = anyio.Lock()
        self._queued: list[_Write] = []
        self._readers = anyio.CapacityLimiter(READERS)
        self._idle_readers: list[Connection] = []
        self._inline = False  # set by open()
        self._wal = f"{self.path}-wal"
        self.schema_before = 0
        self.schema_after = 0

    def _on_connect(self, dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions
        # begin (SQLAlchemy's recipe for pysqlite): writes can BEGIN IMMEDIATE.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        # busy_timeout first: the other pragmas may need a lock too.
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA synchronous={self.synchronous}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    async def open(self) -> None:
        """Create or upgrade the database and open the engine.

        Raises SchemaError if the file is newer than this wizd or not a database.
        """
        await anyio.to_thread.run_sync(_prepare_file, self.path)
        self.schema_before, self.schema_after = await anyio.to_thread.run_sync(
            migrate, self.path
        )
        # The connections are held by this object, not by the pool: it only
        # opens them (every one gets the pragmas above).
        engine = create_engine(f"sqlite:///{self.path}", poolclass=NullPool)
        event.listen(engine, "connect", self._on_connect)
        event.listen(engine, "begin", _on_begin)
        self._engine = engine
        self._writer = await anyio.to_thread.run_sync(self._connect, True)
        # A commit that needs no fsync may run on the event loop (see quick).
        self._inline = self.synchronous not in ("FULL", "EXTRA", "2", "3")

    def _connect(self, write: bool = False) -> Connection:
        assert self._engine is not None, "the database is not open"
        conn = self._engine.connect()
        if not write:
            return conn
        # Checkpoints are run by _checkpoint, in a worker thread; on the loop
        # the write connection never waits for a lock (see _run_inline).
        raw(conn).execute("PRAGMA wal_autocheckpoint=0")
        raw(conn).execute(f"PRAGMA journal_size_limit={WAL_LIMIT}")
        raw(conn).execute("PRAGMA busy_timeout=0")
        return conn.execution_options(wiz_write=True)

    async def close(self) -> None:
        if self._engine is None:
            return
        engine, self._engine = self._engine, None
        with anyio.CancelScope(shield=True):
            async with self._write_lock, _AllTokens(self._readers):
                conns = [c for c in [self._writer, *self._idle_readers] if c is not None]
                self._writer, self._idle_readers = None, []

                def dispose() -> None:
                    for conn in conns:
                        conn.close()
                    engine.dispose()

                await anyio.to_thread.run_sync(dispose)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` in a read transaction and return its result."""
        async with self._readers:
            conn = self._idle_readers.pop() if self._idle_readers else None

            def run() -> T:
                nonlocal conn
                if conn is None:
                    conn = self._connect()
                try:
                    with conn.begin():  # rolled back or committed: nothing to keep
                        return fn(conn, *args)
                except BaseException:
                    conn = _checked(conn)
                    raise

            try:
                return await anyio.to_thread.run_sync(run)
            finally:
                if conn is not None:
                    self._idle_readers.append(conn)

    async def write(
        self,
        fn: Callable[..., T],
        *args: Any,
        after_commit: Callable[[T], None] | None = None,
    ) -> T:
        """Run ``fn(conn, *args)`` in a write transaction, commit, and return its result.

        Writers that queue up while a commit is under way are committed together
        (group commit): one thread hop and one commit for the lot, each in its
        own SAVEPOINT so that one failing ``fn`` rolls back only its own work and
        raises only in its own caller. ``after_commit`` hooks then run in queue
        order, before any later writer commits.

        A write, once queued, always finishes (it is shielded from cancellation):
        a cancelled caller never leaves a half-applied change or a lost commit.
        """
        req = _Write(fn, args, after_commit)
        self._queued.append(req)
        with anyio.CancelScope(shield=True):
            async with self._write_lock:
                if not req.done:  # nobody committed it yet: commit the queue's head
                    batch = self._queued[:MAX_BATCH]
                    del self._queued[:MAX_BATCH]
                    await self._commit(batch)
        if req.error is not None:
            raise req.error
        return req.result  # type: ignore[no-any-return]

    async def _commit(self, batch: list[_Write]) -> None:
        try:
            if not (self._inline and all(getattr(r.fn, "wiz_quick", False) for r in batch)
                    and self._run_inline(batch)):
                await anyio.to_thread.run_sync(self._run_batch, batch, BUSY_TIMEOUT_MS)
        except Exception as exc:  # the commit itself failed: nothing of the batch is stored
            for req in batch:
                req.error = req.error or exc
        for req in batch:
            req.done = True
            if req.error is None and req.after_commit is not None:
                try:
                    req.after_commit(req.result)
                except Exception as exc:
                    log.exception("after-commit hook failed")
                    req.error = exc
        if self._wal_size() > WAL_LIMIT:
            await self._checkpoint()

    def _wal_size(self) -> int:
        # The WAL restarts from its start after a complete checkpoint, and
        # journal_size_limit cuts the file back then: it grows past WAL_LIMIT
        # only when that much has been written since the last checkpoint.
        try:
            return os.stat(self._wal).st_size
        except OSError:
            return 0

    async def _checkpoint(self) -> None:
        # PASSIVE: copies what it can without waiting for readers; writers
        # wait meanwhile (the caller holds the write lock).
        def run() -> None:
            if self._writer is not None:
                raw(self._writer).execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

        try:
            await anyio.to_thread.run_sync(run)
        except Exception:
            log.exception("WAL checkpoint failed; retried after the next commit")

    def _run_inline(self, batch: list[_Write]) -> bool:
        """The batch, on this thread; False (nothing done) if SQLite's write lock
        is held by another connection: the caller runs it in a worker thread."""
        try:
            self._run_batch(batch)
        except _Locked:
            return False
        return True

    def _run_batch(self, batch: list[_Write], busy_timeout_ms: int = 0) -> None:
        """One write transaction (BEGIN IMMEDIATE) for the whole batch."""
        conn = self._writer
        if conn is None:
            conn = self._writer = self._connect(write=True)
        try:
            if busy_timeout_ms:
                raw(conn).execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
            try:
                _run_batch(conn, batch, waited=busy_timeout_ms > 0)
            finally:
                if busy_timeout_ms:
                    raw(conn).execute("PRAGMA busy_timeout=0")
        except BaseException:
            self._writer = _checked(conn)
            raise


def _checked(conn: Connection) -> Connection | None:
    """After a call failed: ``conn`` if it is still usable, else None (closed)."""
    try:
        if conn.in_transaction():
            conn.rollback()
        if not conn.invalidated and not conn.closed:
            return conn
    except Exception:
        log.exception("database connection unusable after an error; reopening")
    try:
        conn.close()
    except Exception:
        pass
    return None


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


class _Locked(Exception):
    """BEGIN IMMEDIATE found SQLite's write lock taken (and did not wait)."""


def _run_batch(conn: Connection, batch: list[_Write], *, waited: bool) -> None:
    try:
        transaction = conn.begin()
    except Exception as exc:
        if not waited and _is_locked(exc):
            raise _Locked() from exc
        raise
    with transaction:
        if len(batch) == 1:
            req = batch[0]
            req.result = req.fn(conn, *req.args)  # raises: the transaction rolls back
            return
        # SQLAlchemy's begin_nested costs ~100 us a savepoint; the bare
        # statements do the same inside its transaction in a few.
        db = raw(conn)
        for req in batch:
            db.execute("SAVEPOINT w")
            try:
                req.result = req.fn(conn, *req.args)
            except Exception as exc:
                db.execute("ROLLBACK TO w")
                req.error = exc
            db.execute("RELEASE w")


def run_sync_query(path: Path, fn: Callable[[Connection], T]) -> T:
    """Run one query outside the daemon (tests, tools): a short-lived engine."""
    engine = create_engine(f"sqlite:///{path}", poolclass=NullPool)
    try:
        with engine.begin() as conn:
            return fn(conn)
    finally:
        engine.dispose()
