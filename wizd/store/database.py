"""The database runner: queries are plain sync functions over a SQLAlchemy
``Connection``; this module runs them off the event loop on either backend.

- trio: a sync engine (pysqlite); each call runs in a worker thread through
  ``anyio.to_thread.run_sync``. (SQLAlchemy's asyncio extension does not run
  on trio.)
- asyncio: an async engine over aiosqlite, whose own thread does the blocking
  work; the same sync query functions run through ``AsyncConnection.run_sync``.

Connections are opened once and kept: one for writes, and up to ``READERS``
for reads, so no call pays for a pool checkout and its reset.

Writes are serialised, so commits happen in a single order. Code that must
act in that order (publishing events, whose ``seq`` must reach subscribers in
increasing order) passes ``after_commit``, which runs after the commit and
before the next writer starts.

Hot queries may bypass SQLAlchemy's statement machinery with ``raw(conn)``
(the DB-API connection under ``conn``, in the same transaction): here a
statement costs ~3 us that way and ~30 us through ``Connection.execute``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import sniffio
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
    """trio: sync connections, each call in a worker thread."""

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


class Database:
    """One SQLite file, opened for the life of the daemon."""

    def __init__(self, path: Path, *, synchronous: str = "NORMAL") -> None:
        self.path = Path(path)
        self.synchronous = synchronous.upper()
        self._driver: _Threads | _Aiosqlite | None = None
        self._writer: Any = None
        self._write_lock = anyio.Lock()
        self._queued: list[_Write] = []
        self._readers = anyio.CapacityLimiter(READERS)
        self._idle_readers: list[Any] = []
        self._wal = f"{self.path}-wal"
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

        Raises SchemaError if the file is newer than this wizd or not a database.
        """
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
        self._writer = await self._open_writer()

    async def _open_writer(self) -> Any:
        assert self._driver is not None, "the database is not open"
        conn = await self._driver.connect()
        await self._driver.run(conn, _prepare_writer)
        return conn

    async def close(self) -> None:
        driver, self._driver = self._driver, None
        if driver is None:
            return
        with anyio.CancelScope(shield=True):
            async with self._write_lock, _AllTokens(self._readers):
                conns = [c for c in [self._writer, *self._idle_readers] if c is not None]
                self._writer, self._idle_readers = None, []
                for conn in conns:
                    await driver.close(conn)
                await driver.dispose()

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` in a read transaction and return its result."""
        driver = self._driver
        assert driver is not None, "the database is not open"
        async with self._readers:
            conn = self._idle_readers.pop() if self._idle_readers else await driver.connect()
            try:
                result = await driver.run(conn, _in_transaction, fn, *args)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    conn = await self._checked(conn)
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
        (group commit): one hop off the loop and one commit for the lot, each in
        its own SAVEPOINT so that one failing ``fn`` rolls back only its own work
        and raises only in its own caller. ``after_commit`` hooks then run in
        queue order, before any later writer commits.

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
        driver = self._driver
        assert driver is not None, "the database is not open"
        try:
            if self._writer is None:
                self._writer = await self._open_writer()
            await driver.run(self._writer, _run_batch, batch)
        except Exception as exc:  # the commit itself failed: nothing of the batch is stored
            self._writer = await self._checked(self._writer)
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
        assert self._driver is not None
        try:
            if self._writer is not None:
                await self._driver.run(self._writer, _checkpoint)
        except Exception:
            log.exception("WAL checkpoint failed; retried after the next commit")

    async def _checked(self, conn: Any) -> Any:
        """After a call failed: ``conn`` if it is still usable, else None (closed)."""
        if conn is None or self._driver is None:
            return None
        try:
            if await self._driver.run(conn, _usable):
                return conn
        except Exception:
            log.exception("database connection unusable after an error; reopening")
        try:
            await self._driver.close(conn)
        except Exception:
            pass
        return None


def _prepare_writer(conn: Connection) -> None:
    db = raw(conn)
    # Checkpoints are run by Database._checkpoint, never inside a commit.
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT}")


def _in_transaction(conn: Connection, fn: Callable[..., T], *args: Any) -> T:
    with conn.begin():  # a read: rolled back or committed, nothing to keep
        return fn(conn, *args)


def _checkpoint(conn: Connection) -> None:
    raw(conn).execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()


def _usable(conn: Connection) -> bool:
    if conn.in_transaction():
        conn.rollback()
    return not conn.invalidated and not conn.closed


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


def _run_batch(conn: Connection, batch: list[_Write]) -> None:
    """One write transaction (BEGIN IMMEDIATE) for the whole batch."""
    conn = conn.execution_options(wiz_write=True)
    with conn.begin():
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

