"""A node's membership of the cluster (PostgreSQL): its row in ``nodes``,
its lease, and the jobs of nodes whose lease lapsed.

    register()          at start, before the scheduler takes back this node's
                        own jobs left by a run that died
    run()               every lease/3 seconds:
                          renew the lease (a warning if it had lapsed)
                          take back the active jobs no live node holds
                          drop running jobs another node took back meanwhile
                          refresh the nodes and the queue counts that
                          daemon.status shows
    leave()             at a clean shutdown, after the scheduler returned
                        its running jobs: the row goes
"""

from __future__ import annotations

import logging
import os
import socket

import anyio
from sqlalchemy import Connection

from ..errors import StorageUnavailable
from ..jobs import queue
from ..services.runtime import Runtime
from ..store import jobs as job_store
from ..store import nodes as store
from ..version import VERSION

log = logging.getLogger(__name__)


class Membership:
    """This node's lease and the cluster's view (``rt.cluster``)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.node_id = rt.cluster.node_id
        self.lease_ms = int(rt.config.lease * 1000)
        self._held = True  # the lease held at the last renewal (for one warning)
        self._failing = False  # renewals fail (for one warning while it lasts)
        # Since when (loop time) this node's renewals have all succeeded with
        # its lease unbroken; None: the last one failed or found it lapsed.
        self._healthy_since: float | None = None

    async def register(self) -> None:
        config = self.rt.config
        self._healthy_since = anyio.current_time()

        def tx(conn: Connection) -> None:
            store.register(conn, node_id=self.node_id, host=socket.gethostname(),
                           pid=os.getpid(), socket=str(config.socket), version=VERSION,
                           lease_ms=self.lease_ms)

        await self.rt.db.write(tx)
        await self._refresh()
        log.info("node %s joined (lease %g s; %d node(s) alive)", self.node_id,
                 config.lease, sum(n["alive"] for n in self.rt.cluster.nodes))

    async def run(self) -> None:
        """Renew the lease and look after the cluster's jobs until cancelled.
        A renewal that fails is tried again at the next beat: nothing stops it."""
        while True:
            await anyio.sleep(self.rt.config.lease / 3)
            try:
                await self.beat()
            except Exception as exc:
                self._healthy_since = None
                if not self._failing:
                    if isinstance(exc, StorageUnavailable):
                        log.warning("node %s could not renew its lease: %s", self.node_id,
                                    exc.message)
                    else:
                        log.exception("node %s could not renew its lease", self.node_id)
                self._failing = True
                continue
            if self._failing:
                log.info("node %s renews its lease again", self.node_id)
            self._failing = False

    async def beat(self) -> None:
        """One renewal and what goes with it (see the module docstring)."""
        held = await self.rt.db.write(_renew, self.node_id, self.lease_ms)
        if held is None:  # removed by hand, or forgotten: enter again
            await self.register()
        elif not held and self._held:
            log.warning("node %s: its lease had lapsed; other nodes may have taken back "
                        "its jobs", self.node_id)
        self._held = bool(held)
        now = anyio.current_time()
        if not held:
            self._healthy_since = None
        elif self._healthy_since is None:
            self._healthy_since = now
        # Another node's lapsed lease is judged only by a node whose own lease
        # held for a whole lease: after an outage that lapsed every lease, each
        # node gets that long to renew before anyone takes its jobs.
        if self._healthy_since is not None and now - self._healthy_since >= \
                self.rt.config.lease:
            taken = await queue.take_back(self.rt, mine="")
            if taken:
                log.info("took back %d job(s) of node(s) whose lease lapsed", len(taken))
        await self._drop_lost()
        await self._refresh()

    async def _drop_lost(self) -> None:
        """Running jobs this node no longer holds (taken back while it could
        not renew) are cancelled here: another node runs them now."""
        running = self.rt.scheduler.running_ids()
        if not running:
            return
        held = await self.rt.db.read(job_store.held_by, running, self.node_id)
        lost = [job_id for job_id in running if job_id not in held]
        if lost:
            log.warning("node %s: %d running job(s) were taken back by another node; "
                        "dropping them here", self.node_id, len(lost))
            self.rt.scheduler.drop(lost)

    async def _refresh(self) -> None:
        self.rt.cluster.nodes = await self.rt.db.read(store.every)
        await self.rt.tallies.start(self.rt.db)  # counts of every node's jobs

    async def leave(self) -> None:
        try:
            await self.rt.db.write(store.leave, self.node_id)
        except StorageUnavailable as exc:
            log.warning("node %s could not leave the cluster (%s); its lease lapses in "
                        "%g s", self.node_id, exc.message, self.rt.config.lease)


def _renew(conn: Connection, node_id: str, lease_ms: int) -> bool | None:
    """The renewal, and the nodes gone for long forgotten, in one transaction."""
    store.forget_gone(conn)
    return store.renew(conn, node_id, lease_ms)
