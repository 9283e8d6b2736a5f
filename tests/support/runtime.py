"""A real Runtime over a real SQLite file, started as wizd starts it (the
figures kept at commit loaded, the local user and the built-in provider
exist), for in-process tests of services and replies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from wizd.config import Config
from wizd.events.hub import Hub
from wizd.services import providers, users
from wizd.services.runtime import QueueClock, Runtime
from wizd.services.tallies import Tallies
from wizd.store.database import Database


@asynccontextmanager
async def started_runtime(tmp_path: Path, backend: str) -> AsyncIterator[Runtime]:
    """The runtime, its database closed on the way out."""
    config = Config(db=tmp_path / "data" / "wiz.db", socket=tmp_path / "run" / "wizd.sock",
                    backend=backend)
    tallies = Tallies()
    db = Database(config.db, watch=tallies.watch)
    await db.open()
    runtime = Runtime(config=config, db=db, hub=Hub(config.subscriber_buffer), clock=QueueClock(),
                      tallies=tallies)
    try:
        await tallies.start(db)
        await users.ensure_local_user(runtime)
        await providers.ensure_builtin_provider(runtime)
        yield runtime
    finally:
        await db.close()
