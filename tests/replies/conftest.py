"""A real Runtime over a real SQLite file, as wizd builds it, with the
scheduler app.py gives it (not started: these tests move jobs themselves)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from wizd.app import JOB_TYPES
from wizd.config import Config
from wizd.events.hub import Hub
from wizd.jobs.scheduler import Scheduler
from wizd.services import providers, users
from wizd.services.runtime import QueueClock, Runtime
from wizd.store.database import Database


@pytest.fixture
async def rt(tmp_path: Path, anyio_backend: str) -> AsyncIterator[Runtime]:
    config = Config(db=tmp_path / "data" / "wiz.db", socket=tmp_path / "run" / "wizd.sock",
                    backend=anyio_backend)
    db = Database(config.db)
    await db.open()
    runtime = Runtime(config=config, db=db, hub=Hub(config.subscriber_buffer), clock=QueueClock())
    runtime.scheduler = Scheduler(runtime, JOB_TYPES)
    try:
        await users.ensure_local_user(runtime)
        await providers.ensure_builtin_provider(runtime)
        yield runtime
    finally:
        await db.close()
