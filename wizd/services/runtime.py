"""What every service function needs: the database, the event hub, the
settings, the queue clock and the job scheduler.

Services are plain async functions taking a Runtime first; RPC methods and
job processors are thin adapters over them.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio

from ..cluster.view import ClusterView
from ..config import Config
from ..errors import Conflict
from ..events.hub import Event, Hub
from ..jobs.registry import JobTypes
from ..llm.clients import ClientCache
from ..mcp import McpManager
from ..store.database import Database
from .search_index import SearchIndex
from .tallies import Tallies


def new_id() -> str:
    return str(uuid.uuid4())


class QueueClock:
    """Milliseconds since the epoch, advancing with the event loop's clock.

    Anchored to the wall clock once, then driven by ``anyio.current_time()``:
    immune to wall-clock jumps, and under trio's MockClock it advances with
    virtual time, so delays and backoff are testable without real sleeping.
    """

    def __init__(self) -> None:
        self._wall0 = time.time()
        self._loop0 = anyio.current_time()

    def now_ms(self) -> int:
        return int((self._wall0 + anyio.current_time() - self._loop0) * 1000)

    def loop_time(self, epoch_ms: int) -> float:
        """The event-loop time at which ``epoch_ms`` falls."""
        return self._loop0 + epoch_ms / 1000 - self._wall0


class Scheduling(Protocol):
    """What the rest of wizd asks of the job scheduler (wizd.jobs.scheduler.Scheduler)."""

    @property
    def job_types(self) -> JobTypes:
        """The job types it runs: the queue finds a job's outcome handler here."""
        ...

    def wake(self) -> None:
        """Look at the queue again now (work was queued, retried or resumed)."""

    async def cancel(self, job_id: str) -> None:
        """Cancel running job ``job_id`` and wait until its cancellation is recorded."""

    def running_ids(self) -> list[str]:
        """The jobs this node has claimed and not yet recorded."""
        ...

    def drop(self, job_ids: list[str]) -> None:
        """Stop running these jobs without recording anything: another node
        took them back (wizd.cluster)."""


class NoScheduler:
    """The scheduler of a runtime that runs no jobs (tests of services alone):
    waking it does nothing, every job type is generic, and a running job
    cannot be cancelled (Conflict)."""

    job_types = JobTypes()

    def wake(self) -> None:
        pass

    async def cancel(self, job_id: str) -> None:
        raise Conflict(f"job {job_id} is running and no scheduler can cancel it")

    def running_ids(self) -> list[str]:
        return []

    def drop(self, job_ids: list[str]) -> None:
        pass


@dataclass
class Runtime:
    config: Config
    db: Database
    hub: Hub
    clock: QueueClock
    started_at: float = field(default_factory=anyio.current_time)
    # The scheduler that runs this runtime's jobs: services wake it after
    # queueing work and cancel running jobs through it. Each needs the other,
    # so app.py builds the runtime, then the scheduler over it, and sets it
    # here once, before anything runs.
    scheduler: Scheduling = field(default_factory=NoScheduler)
    local_user_id: str = ""
    # HTTP clients of the LLM providers, kept alive between replies.
    llm_clients: ClientCache = field(default_factory=ClientCache)
    # Queue counts and the last seq, maintained at commit (when ``db`` was
    # opened with ``tallies.watch`` and ``tallies.start`` has run).
    tallies: Tallies = field(default_factory=Tallies)
    # The full-text index, which follows the messages after their commits.
    search_index: SearchIndex = field(default_factory=SearchIndex)
    # The MCP servers wizd runs (app.py starts its task; services.mcp uses it).
    mcp: McpManager = field(default_factory=McpManager)
    # This node and the cluster's nodes (wizd.cluster; one node on SQLite).
    cluster: ClusterView = field(default_factory=ClusterView)

    def publish(
        self, method: str, params: dict[str, Any], *, conversation_id: str | None = None
    ) -> None:
        """Publish a non-message event (job.updated, agent.status, message.delta)."""
        self.hub.publish(Event(method, params, conversation_id))
