"""A real Runtime over a real SQLite file, started as wizd starts it (the
figures kept at commit loaded, the local user and the built-in provider
exist), for in-process tests of services and replies.

Each test's database is a copy of one that this process created and
migrated once (the file as ``Database.open`` left it after closing); so are
those of the job harness (tests/jobs/helpers.py), the queue's store tests and
the in-process RPC server (tests/rpc/serving.py). Creating the schema from
nothing costs twice as much as the rest of a start, and these tests are not
about it (tests/store/ and the e2e tests create and migrate databases from
nothing and from old schemas). The copy is opened as wizd opens an existing
database; the runtime then makes the local user and the built-in provider as
wizd does at every start.
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
from wizd.services.tallies import Tallies
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


async def copy_migrated(db_path: Path) -> None:
    """Put a copy of the once-migrated database at ``db_path``, its folder made
    as ``Database.open`` makes it (0700) if missing; a database already there
    (a restart) is left as it is."""
    _copy(await _migrated_folder() / "wiz.db", db_path)


def _copy(template: Path, db_path: Path) -> None:
    # Test set-up, before anything runs: a local copy of a small file, not
    # worth a worker thread (and its effect on virtual time).
    if not db_path.exists():
        db_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        shutil.copy2(template, db_path)


@asynccontextmanager
async def started_runtime(tmp_path: Path, backend: str) -> AsyncIterator[Runtime]:
    """The runtime, its database closed on the way out."""
    config = Config(db=tmp_path / "data" / "wiz.db", socket=tmp_path / "run" / "wizd.sock",
                    backend=backend)
    await copy_migrated(config.db)
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
