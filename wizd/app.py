"""The root task group: store, scheduler, RPC server, in that order.

    serve(config)
      lifecycle(config)          instance locks, the socket systemd passed, sd_notify
      ├── Database.open()        migrations, WAL
      ├── users.ensure_local_user
      ├── on PostgreSQL: Membership.register, Bus.run, Membership.run (wizd/cluster/)
      ├── Scheduler.run          (tg.start: ready once jobs left active are taken back;
      │                           runs the job types of JOB_TYPES)
      ├── retention.run          (prunes finished jobs every prune_interval)
      ├── SearchIndex.run        (the full-text index follows the messages' commits)
      ├── McpManager.run         (tg.start: hosts the MCP servers, started on first use)
      ├── RpcServer.run          (tg.start: ready once the socket accepts)
      └── wait for SIGTERM/SIGINT, then stop accepting, stop the scheduler
          (running jobs go back to the queue), stop the MCP servers, close the
          database, remove the socket.
"""

from __future__ import annotations

import logging
import os
import signal
from functools import partial

import anyio

from .cluster.membership import Membership
from .cluster.view import ClusterView, node_id, this_node
from .config import Config
from .events.hub import Hub
from .jobs import retention
from .jobs.registry import JobTypes
from .jobs.scheduler import Scheduler
from .lifecycle import Lifecycle, lifecycle
from .replies.job_type import REPLY
from .rpc.methods import registry
from .rpc.server import RpcServer
from .services import messages, providers, users
from .services.runtime import QueueClock, Runtime
from .services.tallies import Tallies
from .store.database import Database
from .store.failures import starting

log = logging.getLogger("wizd")

# The job types wizd runs, each with its processor and outcome handler.
JOB_TYPES = JobTypes([REPLY])


async def serve(config: Config, *, stop: anyio.Event | None = None) -> None:
    """Run wizd until SIGTERM/SIGINT (or ``stop`` is set). Returns after a clean shutdown.

    Raises DaemonBusy if another wizd holds the database or the socket;
    StorageUnavailable or SchemaError, in one line saying where and what to
    do, if the storage stops it from starting (see ``store.failures``).
    """
    with lifecycle(config) as life:
        await _serve(life, stop or anyio.Event())


async def _serve(life: Lifecycle, stop: anyio.Event) -> None:
    config = life.config  # under socket activation, the socket systemd passed
    tallies = Tallies()
    clustered = config.db_path is None  # on PostgreSQL, one node of a cluster
    view = ClusterView(node_id=node_id(config))
    db = Database(config.db, synchronous=config.synchronous, watch=tallies.watch,
                  node=view.node_id if clustered else None)
    await db.open()
    if clustered:
        from .cluster.bus import Bus, ClusterHub  # psycopg: never loaded on SQLite

        cluster_hub = ClusterHub(config.subscriber_buffer, view, tallies, db.notify)
        hub: Hub = cluster_hub
    else:
        hub = Hub(config.subscriber_buffer)
    rt = Runtime(config=config, db=db, hub=hub, clock=QueueClock(), tallies=tallies,
                 cluster=view)
    # Each needs the other: the scheduler runs the runtime's jobs, services
    # wake it (and cancel running jobs) through rt.scheduler.
    scheduler = rt.scheduler = Scheduler(rt, JOB_TYPES)
    membership = Membership(rt) if clustered else None
    served = False
    try:
        if db.schema_before != db.schema_after:
            log.info("database %s at schema v%d", db.label, db.schema_after)
        # The first writes: a full disk or a damaged page may show only now.
        with starting(db.where):
            await tallies.start(db)
            await users.ensure_local_user(rt)
            await providers.ensure_builtin_provider(rt)
            if membership is not None:
                await membership.register()
        if not clustered:
            rt.cluster.nodes = [this_node(config, rt.clock.now_ms())]
        listener = await life.open_listener()
        async with anyio.create_task_group() as tg:
            tg.start_soon(_wait_for_signal, stop)
            tg.start_soon(life.watchdog)
            if clustered:
                # Messages up to the last seq at start are history; the bus
                # publishes every later one, in order, whichever node stored it.
                cluster_hub.cursor = tallies.last_seq
                bus = Bus(str(config.db), cluster_hub,
                          read_after=partial(db.read, messages.history_after, None),
                          wake=scheduler.wake, cancel=scheduler.cancel, flush=db.flush)
                rt.cluster.request_cancel = bus.request_cancel
                await tg.start(bus.run)
            with starting(db.where):  # it takes back jobs a dead wizd left running
                await tg.start(scheduler.run)
            if membership is not None:
                tg.start_soon(membership.run)
            tg.start_soon(retention.run, rt)
            tg.start_soon(rt.search_index.run, db, tallies)
            tg.start_soon(db.run_checkpoints)
            # MCP servers start on first use; on shutdown it stops them all.
            await tg.start(rt.mcp.run)
            server = RpcServer(rt, registry, listener)
            await tg.start(server.run)
            life.ready()
            served = True
            tg.start_soon(life.report_status, rt)
            log.info("wizd ready: pid %d, socket %s, db %s, backend %s",
                     os.getpid(), config.socket, db.label, config.backend)
            await stop.wait()
            log.info("shutting down")
            await life.stop_accepting()
            # Running jobs get shutdown_grace seconds to finish; the cancel below
            # then returns the rest to the queue without costing them an attempt.
            await scheduler.drain(config.shutdown_grace)
            tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await life.close()
            await rt.llm_clients.aclose()
            if membership is not None and served:
                await membership.leave()
            await db.close()
        if served:  # a start that failed says why in one line (cli), not two
            log.info("wizd stopped")


async def _wait_for_signal(stop: anyio.Event) -> None:
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            log.info("received %s", signal.Signals(signum).name)
            stop.set()
            return
