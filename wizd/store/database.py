"""The database runner: queries are plain sync functions over a SQLAlchemy
``Connection``; this module runs them off the event loop on either backend.

- trio: a sync engine (pysqlite); each call runs in a worker thread through
  ``anyio.to_thread.run_sync`` behind a CapacityLimiter. (SQLAlchemy's asyncio
  extension does not run on trio.)
- asyncio: an async engine over aiosqlite, whose own thread does the blocking
  work; the same sync query functions run through ``AsyncConnection.run_sync``.

Writes are serialised by one lock, so commits happen in a single order. Code
that must act in that order (publishing events, whose ``seq`` must reach
subscribers in increasing order) passes ``after_commit``, which runs after the
commit and before the next writer starts.
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


def _prepare_file(path: Path) -> None:
    """Create the folder (0700) and the file (0600) before SQLite touches them."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    os.chmod(path, 0o600)


def _on_begin(conn: Connection) -> None:
    # A write takes SQLite's write lock at once, so it can never fail later
    # with SQLITE_BUSY on upgrading a read lock; reads begin deferred.
    immediate = conn.get_execution_options().get("wiz_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """One SQLite file, opened for the life of the daemon."""

    def __init__(self, path: Path, *, synchronous: str = "NORMAL") -> None:
        self.path = Path(path)
        self.synchronous = synchronous.upper()
        self._engine: Any = None
        self._async = False
        self._write_lock = anyio.Lock()
        self._queued: list[_Write] = []
        self._readers = anyio.CapacityLimiter(READERS)
        self.schema_before = 0
        self.schema_after = 0

    def _on_connect(self, dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions
        # begin (SQLAlchemy's recipe for pysqlite and aiosqlite): SAVEPOINTs
        # then work, and writes can BEGIN IMMEDIATE.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        # busy_timeout first: the other pragmas may need a lock too.
        cur.execute("PRAGMA busy_timeout=5000")
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
        self._async = sniffio.current_async_library() == "asyncio"
        if self._async:
            from sqlalchemy.ext.asyncio import create_async_engine

            self._engine = create_async_engine(
                f"sqlite+aiosqlite:///{self.path}", pool_size=READERS + 1, max_overflow=0
            )
            event.listen(self._engine.sync_engine, "connect", self._on_connect)
            event.listen(self._engine.sync_engine, "begin", _on_begin)
        else:
            engine: Engine = create_engine(
                f"sqlite:///{self.path}", pool_size=READERS + 1, max_overflow=0
            )
            event.listen(engine, "connect", self._on_connect)
            event.listen(engine, "begin", _on_begin)
            self._engine = engine

    async def close(self) -> None:
        if self._engine is None:
            return
        engine, self._engine = self._engine, None
        with anyio.CancelScope(shield=True):
            async with self._write_lock:
                if self._async:
                    await engine.dispose()
                else:
                    await anyio.to_thread.run_sync(engine.dispose)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(conn, *args)`` in a read transaction and return its result."""
        if self._async:
            async with self._readers, self._engine.connect() as conn:
                return await conn.run_sync(fn, *args)  # type: ignore[no-any-return]

        def run() -> T:
            with self._engine.connect() as conn:
                return fn(conn, *args)

        return await anyio.to_thread.run_sync(run, limiter=self._readers)

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
            if self._async:
                async with self._engine.connect() as conn:
                    await conn.run_sync(_run_batch, batch)
            else:
                await anyio.to_thread.run_sync(self._run_batch_sync, batch)
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

    def _run_batch_sync(self, batch: list[_Write]) -> None:
        with self._engine.connect() as conn:
            _run_batch(conn, batch)


MAX_BATCH = 256


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
        for req in batch:
            savepoint = conn.begin_nested()
            try:
                req.result = req.fn(conn, *req.args)
            except Exception as exc:
                savepoint.rollback()
                req.error = exc
            else:
                savepoint.commit()


def run_sync_query(path: Path, fn: Callable[[Connection], T]) -> T:
    """Run one query outside the daemon (tests, tools): a short-lived engine."""
    engine = create_engine(f"sqlite:///{path}", poolclass=NullPool)
    try:
        with engine.begin() as conn:
            return fn(conn)
    finally:
        engine.dispose()
