"""An RpcServer of a test's own Registry on a real Unix socket, with a real
(unused) database, run in process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio

from tests.support.runtime import copy_migrated
from wizd.config import Config
from wizd.events.hub import Hub
from wizd.rpc.registry import Registry
from wizd.rpc.server import RpcServer
from wizd.services.runtime import QueueClock, Runtime
from wizd.store.database import Database


@asynccontextmanager
async def serving(tmp_path: Path, backend: str, registry: Registry) -> AsyncIterator[RpcServer]:
    """The server, listening at ``tmp_path / "s.sock"`` once entered.

    Close the clients first: the server is cancelled once it has seen them go
    (cancelling a read under way hits an asyncio race in anyio, anyio#1267).
    """
    config = Config(db=tmp_path / "wiz.db", socket=tmp_path / "s.sock", backend=backend)
    await copy_migrated(config.db)
    db = Database(config.db)
    await db.open()
    rt = Runtime(config=config, db=db, hub=Hub(config.subscriber_buffer), clock=QueueClock())
    try:
        listener = await anyio.create_unix_listener(config.socket)
        async with anyio.create_task_group() as tg:
            server = RpcServer(rt, registry, listener)
            await tg.start(server.run)
            yield server
            while server.connections:
                await anyio.wait_all_tasks_blocked()
            tg.cancel_scope.cancel()
        await listener.aclose()
    finally:
        await db.close()
