"""The job queue's operations: each one transaction, then its notifications.

Generic: the queue moves jobs between statuses (see ``wizd.store.jobs``) and
knows nothing of agents. What a transition means for one kind of job (a reply
to store, an agent's status) is its outcome handler's business
(``wizd.jobs.outcome``), found by job name in the registry of the scheduler
the runtime was given (``rt.scheduler.job_types``); the handler runs inside
the same transaction, and the events it returns are published from
``after_commit``, so they reach subscribers in commit order.

Timestamps are read from ``rt.clock`` before each transaction and passed in:
a transaction is a plain function of the database (see ``Database.write``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Connection

from ..errors import Conflict, StorageUnavailable
from ..events.hub import Event
from ..objects import Job, JsonObject
from ..services.runtime import Runtime
from ..store import jobs as store
from .outcome import Failure, OutcomeHandler, Transition, job_event

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobContext:
    """What a processor gets: the runtime, the claimed job, and a way to report progress."""

    rt: Runtime
    job: Job

    @property
    def data(self) -> JsonObject:
        """The job's data, as a JSON object (a job type reads its own shape from it)."""
        return self.job["data"]

    async def progress(self, percent: int) -> None:
        """Record progress (0-100) and tell subscribers. One write: call it sparingly.

        Advisory: when the storage cannot take it (a full disk), it is left out
        with a warning rather than raised, so that the job's work is not lost
        for it (the scheduler keeps trying to store the job's outcome).
        """
        try:
            await progress(self.rt, self.job, percent)
        except StorageUnavailable as exc:
            log.warning("job %s: progress not recorded: %s", self.job["id"], exc.message)


def _outcome(rt: Runtime, job: Job) -> OutcomeHandler:
    return rt.scheduler.job_types.outcome(job["name"])


def _publisher(rt: Runtime) -> Callable[[list[Event]], None]:
    def publish(events: list[Event]) -> None:
        for event in events:
            rt.hub.publish(event)

    return publish


def _publish_transition(rt: Runtime) -> Callable[[Transition | None], None]:
    publish = _publisher(rt)

    def after_commit(transition: Transition | None) -> None:
        if transition is not None:
            publish(transition.events)

    return after_commit


def _announce_claimed(rt: Runtime, claimed: list[Job],
                      on_claimed: Callable[[list[Job]], object] | None) -> None:
    for job in claimed:
        rt.hub.publish(job_event(job))
    if on_claimed is not None:
        on_claimed(claimed)


async def claim(
    rt: Runtime,
    *,
    limit: int,
    now_ms: int,
    on_claimed: Callable[[list[Job]], object] | None = None,
) -> tuple[list[Job], int | None]:
    """Claim up to ``limit`` due jobs; see ``store.jobs.claim``.

    ``on_claimed`` runs right after the commit, on the event loop, before any
    later write's hook: the scheduler registers the jobs there, so a cancel
    request can never find a job active but unknown.
    """

    def tx(conn: Connection) -> tuple[list[Job], int | None]:
        return store.claim(conn, now_ms=now_ms, limit=limit)

    def after_commit(result: tuple[list[Job], int | None]) -> None:
        _announce_claimed(rt, result[0], on_claimed)

    return await rt.db.write(tx, after_commit=after_commit)


async def _record(rt: Runtime, tx: Callable[[Connection, int], Transition | None]) -> Job | None:
    """Write a job's transition (``tx(conn, now_ms)``) and publish its events.
    The job as it is now, or None if it had moved on."""
    now = rt.clock.now_ms()

    def write(conn: Connection) -> Transition | None:
        return tx(conn, now)

    transition = await rt.db.write(write, after_commit=_publish_transition(rt))
    return None if transition is None else transition.job


async def progress(rt: Runtime, job: Job, percent: int) -> None:
    """Record an active job's progress and publish ``job.updated``."""
    now = rt.clock.now_ms()

    def tx(conn: Connection) -> Transition | None:
        updated = store.set_progress(conn, job["id"], percent, now)
        return None if updated is None else Transition(updated, [job_event(updated)])

    await rt.db.write(tx, after_commit=_publish_transition(rt))


async def succeed(rt: Runtime, job: Job, result: object) -> Job | None:
    """Complete an active job through its handler (one transaction); None if
    it was no longer active."""
    handler = _outcome(rt, job)

    def tx(conn: Connection, now: int) -> Transition | None:
        return handler.succeeded(conn, job, result, now)

    return await _record(rt, tx)


async def fail(
    rt: Runtime, job: Job, failure: Failure, *, from_statuses: tuple[str, ...] = ("active",),
) -> Job | None:
    """Fail a job for good through its handler; None if its status was not in
    ``from_statuses`` (it moved on meanwhile)."""
    handler = _outcome(rt, job)

    def tx(conn: Connection, now: int) -> Transition | None:
        return handler.failed(conn, job, failure, now, from_statuses)

    return await _record(rt, tx)


async def retry_later(rt: Runtime, job: Job, reason: str, delay_s: float) -> Job | None:
    """An attempt failed but another may succeed: the job waits ``delayed`` for
    ``delay_s`` seconds (rounded up to the millisecond)."""
    handler = _outcome(rt, job)

    def tx(conn: Connection, now: int) -> Transition | None:
        # Round up, ignoring float noise (0.3 s is 300.00000000000006 ms).
        run_at = now + max(math.ceil(delay_s * 1000 - 1e-6), 0)
        updated = store.retry_later(conn, job["id"], reason, run_at, now)
        if updated is None:
            return None
        return Transition(updated, [job_event(updated), *handler.changed(conn, updated)])

    return await _record(rt, tx)


async def requeue(rt: Runtime, job_ids: list[str]) -> list[Job]:
    """Return interrupted active jobs to the queue without costing them an attempt."""
    now = rt.clock.now_ms()

    def tx(conn: Connection) -> list[Job]:
        return store.requeue(conn, job_ids, now)

    def after_commit(requeued: list[Job]) -> None:
        _publisher(rt)([job_event(job) for job in requeued])

    return await rt.db.write(tx, after_commit=after_commit)


async def recover(rt: Runtime) -> list[Job]:
    """At start: take back jobs a dead daemon left ``active``.

    The attempt they were in is given back, as on a clean shutdown: the daemon
    died, not the job (a reply stored before the crash committed together with
    its job's completion, so no job here has one).
    """
    if rt.db.url is not None:
        # Other nodes' active jobs run: only this node's own, and those no
        # live node holds (wizd.cluster).
        recovered = await take_back(rt, mine=rt.cluster.node_id)
    else:
        now = rt.clock.now_ms()

        def tx(conn: Connection) -> list[Job]:
            return store.requeue(conn, store.active_ids(conn), now)

        recovered = await rt.db.write(tx)
    if recovered:
        log.info("took back %d job(s) left active by the previous run", len(recovered))
    return recovered


async def take_back(rt: Runtime, *, mine: str) -> list[Job]:
    """PostgreSQL: return to the queue the active jobs no live node holds
    (``store.take_back``), tell subscribers, and look at the queue again."""
    now = rt.clock.now_ms()

    def tx(conn: Connection) -> list[Job]:
        return store.take_back(conn, mine=mine, now_ms=now)

    def after_commit(taken: list[Job]) -> None:
        _publisher(rt)([job_event(job) for job in taken])

    taken = await rt.db.write(tx, after_commit=after_commit)
    if taken:
        rt.scheduler.wake()
    return taken


async def get(rt: Runtime, job_id: str) -> Job:
    """The job. Raises NotFound (with ``pruned`` in its data if retention removed it)."""
    return await rt.db.read(store.require, job_id)


async def list_jobs(
    rt: Runtime, *, status: str | None = None, limit: int = 50, before: str | None = None
) -> tuple[list[Job], str | None]:
    """A page of jobs, newest first, and the cursor of the next (see store.list_page)."""
    def q(conn: Connection) -> tuple[list[Job], str | None]:
        return store.list_page(conn, status=status, limit=limit, before=before)

    return await rt.db.read(q)


async def retry(rt: Runtime, job_id: str) -> Job:
    """Queue a failed job again with fresh attempts. Raises NotFound, Conflict."""
    now = rt.clock.now_ms()

    def tx(conn: Connection) -> Transition:
        job = store.retry(conn, job_id, now)
        handler = _outcome(rt, job)
        return Transition(job, [job_event(job), *handler.changed(conn, job)])

    transition = await rt.db.write(tx, after_commit=_publish_transition(rt))
    rt.scheduler.wake()
    return transition.job


async def cancel(rt: Runtime, job_id: str) -> Job:
    """Cancel a job that has not finished.

    A queued one fails at once with failure_reason "cancelled"; a running one is
    cancelled through its cancel scope and recorded the same way by its task.
    Raises NotFound, or Conflict if it has finished already.
    """
    job = await get(rt, job_id)
    if job["status"] in store.QUEUED:
        failed = await fail(rt, job, Failure("cancelled", cancelled=True),
                            from_statuses=store.QUEUED)
        if failed is not None:
            rt.scheduler.wake()  # younger jobs of its group may run now
            return failed
        job = await get(rt, job_id)  # claimed meanwhile: cancel it running
    if job["status"] == "active":
        await rt.scheduler.cancel(job_id)
        return await get(rt, job_id)
    raise Conflict(f"job {job_id} is {job['status']}; only an unfinished job can be cancelled",
                   status=job["status"])


async def set_paused(rt: Runtime, paused: bool) -> bool:
    """Pause (claim nothing new; running jobs finish) or resume the queue. Persisted."""
    now = rt.clock.now_ms()

    def tx(conn: Connection) -> bool:
        return store.set_paused(conn, paused, now)

    result = await rt.db.write(tx)
    rt.scheduler.wake()
    return result


async def is_paused(rt: Runtime) -> bool:
    return await rt.db.read(store.is_paused)
