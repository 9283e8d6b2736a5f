"""The STATUS= report to systemd: queue counts from memory, never a table."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import trio

from wizd.config import Config
from wizd.events.hub import Hub
from wizd.lifecycle import Lifecycle
from wizd.services.runtime import QueueClock, Runtime
from wizd.services.tallies import Tallies
from wizd.store import jobs as store
from wizd.store.database import Database
from wizd.systemd import Notifier


@pytest.mark.trio
async def test_status_follows_the_counts_and_needs_no_database(
    tmp_path: Path, autojump_clock: Any
) -> None:
    config = Config(db=tmp_path / "wiz.db", socket=tmp_path / "wizd.sock")
    tallies = Tallies()
    db = Database(config.db, watch=tallies.watch)
    await db.open()
    rt = Runtime(config=config, db=db, hub=Hub(), clock=QueueClock(), tallies=tallies)
    await tallies.start(db)

    def add(conn: Any) -> None:
        store.add_job(conn, name="noop", data={}, now_ms=1, max_attempts=1)

    await db.write(add)
    # A report that read a table would fail from here on (and used to end the daemon).
    await db.close()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as receiver:
        receiver.bind(str(tmp_path / "notify.sock"))
        with Notifier.from_environ({"NOTIFY_SOCKET": receiver.getsockname()}) as notifier:
            life = Lifecycle(config, notifier, None)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(lambda: life.report_status(rt, every=1.0))
                await trio.sleep(0.5)
                first = receiver.recv(4096, socket.MSG_DONTWAIT)
                tallies.apply([("job", "waiting", "active")])  # as a claim's commit reports
                await trio.sleep(1)
                second = receiver.recv(4096, socket.MSG_DONTWAIT)
                nursery.cancel_scope.cancel()
    assert first == b"STATUS=serving: 0 active, 1 waiting, 0 delayed, 0 failed"
    assert second == b"STATUS=serving: 1 active, 0 waiting, 0 delayed, 0 failed"
