"""A real Runtime over a real SQLite file, started as wizd starts it (the local
user and the built-in provider exist), for in-process tests of services and
replies.

Each test's database is a copy of one that this process created and
migrated once (the file and its 0700 folder, as ``Database.open`` left them
after closing): creating the schema from nothing costs twice as much as the
rest of a start, and the tests here are not about it (tests/store/ creates
and migrates databases from nothing and from old schemas). The runtime then
opens the copy as wizd opens an existing database, and makes the local user
and the built-in provider as wizd does at every start.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from wizd.config import Config
from wizd.events.hub import Hub
from wizd.services import providers, users
from wizd.services.runtime import QueueClock, Runtime
from wizd.store.database import Database

_template: Path | None = None


async def _migrated_folder() -> Path:
    """A folder holding ``wiz.db``, created and migrated by ``Database.open`` (once)."""
    global _template
    if _template is None:
        parent = tempfile.mkdtemp(prefix="wiz-template-")
        atexit.register(shutil.rmtree, parent, ignore_errors=True)
        folder = Path(parent) / "data"
        db = Database(folder / "wiz.db")
        await db.open()
        assert db.schema_before == 0
        await db.close()
        assert sorted(p.name for p in folder.iterdir()) == ["wiz.db"]
        _template = folder
    return _template


@asynccontextmanager
async def started_runtime(tmp_path: Path, backend: str) -> AsyncIterator[Runtime]:
    """The runtime, its database closed on the way out."""
    config = Config(db=tmp_path / "data" / "wiz.db", socket=tmp_path / "run" / "wizd.sock",
                    backend=backend)
    shutil.copytree(await _migrated_folder(), config.db.parent)
    db = Database(config.db)
    await db.open()
    runtime = Runtime(config=config, db=db, hub=Hub(config.subscriber_buffer), clock=QueueClock())
    try:
        await users.ensure_local_user(runtime)
        await providers.ensure_builtin_provider(runtime)
        yield runtime
    finally:
        await db.close()
