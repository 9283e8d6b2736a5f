"""Tests on both database engines: where a test's database lives, and the
service runtime over it (tests/support/runtime.py's, on PostgreSQL too).

The ``engine`` fixture (tests/conftest.py) runs a test once on SQLite and
once on PostgreSQL (tests/support/postgres.py: skipped, with the reason, when
PostgreSQL is not installed; a failure under WIZ_TESTS_REQUIRE_PG=1). A test
that holds for SQLite only says why with ``@pytest.mark.sqlite_only("...")``:
its PostgreSQL run is deselected.

On PostgreSQL the services, jobs and replies tests run on trio only (their
asyncio runs are deselected, tests/conftest.py): what the engine changes is
below the services, in the runner, whose tests (tests/store) and the e2e
and events tests run on both backends; the services are backend-neutral
and run on both on SQLite. A third fewer PostgreSQL tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from tests.support import postgres
from tests.support.runtime import started_runtime
from wizd.config import Config
from wizd.events.hub import Hub
from wizd.services import providers, users
from wizd.services.runtime import QueueClock, Runtime
from wizd.services.tallies import Tallies
from wizd.store.database import Database

ENGINES = ("sqlite", "postgresql")


@contextmanager
def database_at(engine: str, tmp_path: Path) -> Iterator[Path | str]:
    """Where a test's database is: a SQLite file not created yet, or the URL of a
    migrated, empty PostgreSQL database."""
    if engine == "sqlite":
        yield tmp_path / "wiz.db"
    else:
        with postgres.database() as url:
            yield url


@asynccontextmanager
async def runtime_on(engine: str, tmp_path: Path, backend: str) -> AsyncIterator[Runtime]:
    """``started_runtime`` on ``engine``: the runtime as wizd builds it."""
    if engine == "sqlite":
        async with started_runtime(tmp_path, backend) as runtime:
            yield runtime
        return
    with postgres.database() as url:
        async with runtime_at(url, tmp_path, backend) as runtime:
            yield runtime


@asynccontextmanager
async def runtime_at(url: str, tmp_path: Path, backend: str) -> AsyncIterator[Runtime]:
    """The runtime as wizd builds it over the PostgreSQL database at ``url``."""
    config = Config(db=url, socket=tmp_path / "run" / "wizd.sock", backend=backend)
    tallies = Tallies()
    db = Database(url, watch=tallies.watch)
    await db.open()
    runtime = Runtime(config=config, db=db, hub=Hub(config.subscriber_buffer),
                      clock=QueueClock(), tallies=tallies)
    try:
        await tallies.start(db)
        await users.ensure_local_user(runtime)
        await providers.ensure_builtin_provider(runtime)
        yield runtime
    finally:
        await db.close()
