"""The root task group: store, scheduler, RPC server, in that order.

    serve(config)
      ├── Database.open()        migrations, WAL
      ├── users.ensure_local_user
      ├── Scheduler.run          (tg.start: ready once jobs left active are taken back)
      ├── RpcServer.run          (tg.start: ready once the socket accepts)
      └── wait for SIGTERM/SIGINT, then stop accepting, stop the scheduler
          (running jobs go back to the queue), close the database, remove the socket.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import anyio

from .config import Config
from .events.hub import Hub
from .rpc.methods import registry
from .rpc.server import RpcServer, open_listener
from .services import users
from .services.runtime import QueueClock, Runtime
from .store.database import Database

log = logging.getLogger("wizd")


async def serve(config: Config, *, stop: anyio.Event | None = None) -> None:
    """Run wizd until SIGTERM/SIGINT (or ``stop`` is set). Returns after a clean shutdown."""
    stop = stop or anyio.Event()
    db = Database(config.db, synchronous=config.synchronous)
    await db.open()
    if db.schema_before != db.schema_after:
        log.info("database %s at schema v%d", config.db, db.schema_after)
    rt = Runtime(config=config, db=db, hub=Hub(config.subscriber_buffer), clock=QueueClock())
    await users.ensure_local_user(rt)
    listener = await open_listener(config.socket)
    socket_path = Path(config.socket)
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_wait_for_signal, stop)
            server = RpcServer(rt, registry, listener)
            await tg.start(server.run)
            log.info("wizd ready: pid %d, socket %s, db %s, backend %s",
                     os.getpid(), socket_path, config.db, config.backend)
            await stop.wait()
            log.info("shutting down")
            tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await listener.aclose()
            socket_path.unlink(missing_ok=True)
            await db.close()
        log.info("wizd stopped")


async def _wait_for_signal(stop: anyio.Event) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            log.info("received %s", signal.Signals(signum).name)
            stop.set()
            return
