"""The scheduler: a task group (nursery) that runs queued jobs.

    run()
      ├── take back jobs a dead daemon left active
      ├── loop: claim what is due (up to the free capacity) ── hand each job ──┐
      │         sleep until woken (an enqueue, a job ending) or the next due   │
      └── workers (config.concurrency of them), each in turn:                  │
            _run(job): processor in its own cancel scope <─────────────────────┘
                       ──> record the outcome (success / retry later with
                           backoff / fail for good), tried again until stored

- Wake on enqueue: ``rt.scheduler.wake()`` sets an event; there is no polling
  interval. A delayed job starts when due: the loop sleeps until the earliest
  ``run_at``, or less if woken.
- At most ``config.concurrency`` jobs run at once: as many workers run them,
  and the loop claims no more than the jobs it holds leave room for. Jobs of
  one ``group_key`` run one at a time in order (the claim sees to it).
  Long-lived workers rather than a task per job: starting a task costs more
  than the rest of a no-op job's time on the loop (bench/queue_throughput.py).
- Each job runs in its own CancelScope, kept so ``job.cancel`` can cancel it.
- On shutdown (the scheduler's scope is cancelled) running jobs are cancelled
  and returned to the queue with the attempt they were in given back.
- Processors are looked up by job name in the registry app.py passes in
  (``JobTypes``); an unknown name fails the job at once.
- A failure reason is stored for clients to read: a WizError's message, or
  "internal error" with the traceback in the log, never an exception's text.
- When the database cannot store a write (a full disk: StorageUnavailable),
  the write is tried again after waits that double from RETRY_FIRST up to
  RETRY_CAP, one warning line each: a claim by the loop, and a job's outcome
  by its worker, which holds its place meanwhile (the job stays active, so
  its group waits, in order). Once space is back the queue moves on by itself.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from functools import partial

import anyio
import anyio.lowlevel
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from sqlalchemy import Connection

from ..errors import Conflict, StorageUnavailable, WizError, sole
from ..objects import Job
from ..services.runtime import Runtime
from ..store import jobs as store
from . import backoff, queue
from .outcome import Failure, JobLost, client_reason
from .queue import JobContext
from .registry import JobTypes

log = logging.getLogger(__name__)

# Seconds before a write the scheduler cannot do without (a claim, a job's
# outcome) is tried again after the database failed it; doubled after each
# failure, up to RETRY_CAP. No jitter: the writes queue for one database.
RETRY_FIRST = 0.5
RETRY_CAP = 30.0


def _retry_delays() -> Iterator[float]:
    delay = RETRY_FIRST
    while True:
        yield delay
        delay = min(delay * 2, RETRY_CAP)


@dataclass(eq=False)
class _Running:
    """A claimed job, from its claim until its outcome is recorded."""

    job: Job
    scope: anyio.CancelScope | None = None
    cancel_requested: bool = False
    # Another node took the job back (this one's lease lapsed): its outcome
    # is not this node's to record.
    lost: bool = False
    finished: bool = False
    # Made only when someone waits (most jobs end unwatched).
    done: anyio.Event | None = None

    def cancel(self) -> None:
        self.cancel_requested = True
        if self.scope is not None:
            self.scope.cancel()

    async def wait(self) -> None:
        if not self.finished:
            if self.done is None:
                self.done = anyio.Event()
            await self.done.wait()

    def finish(self) -> None:
        self.finished = True
        if self.done is not None:
            self.done.set()


@dataclass(frozen=True)
class _Outcome:
    result: object = None
    error: Exception | None = None  # the attempt failed; retry or fail per backoff
    failure: Failure | None = None  # failed for good, whatever the attempts left


def _nothing(conn: Connection) -> None:
    return None


class Scheduler:
    """Runs the jobs of ``rt`` whose types ``job_types`` knows; implements
    ``services.runtime.Scheduling`` (app.py sets it as ``rt.scheduler``)."""

    _ready_send: MemoryObjectSendStream[_Running]
    _ready: MemoryObjectReceiveStream[_Running]

    def __init__(
        self,
        rt: Runtime,
        job_types: JobTypes,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.rt = rt
        self.job_types = job_types
        # Injectable so tests can pin the jitter and assert exact virtual times.
        self.rng = rng or random.Random()
        self.policy = backoff.Policy(rt.config.backoff_base, rt.config.backoff_cap)
        self.concurrency = rt.config.concurrency
        # Claimed and not yet recorded (running, or waiting for a worker).
        self.running: dict[str, _Running] = {}
        # Cancel requests for jobs seen active but not registered yet.
        self._doomed: dict[str, anyio.Event] = {}
        self._interrupted: set[str] = set()
        self._wakeup = anyio.Event()
        self._draining = False

    def wake(self) -> None:
        """Look at the queue again now (a job was added, retried, or resumed)."""
        self._wakeup.set()

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Run jobs until cancelled; ``started`` once left-over active jobs are taken back."""
        # Claimed jobs on their way to the workers; made here, where it is
        # closed again, so a scheduler that never runs holds nothing open.
        self._ready_send, self._ready = anyio.create_memory_object_stream[_Running](math.inf)
        await queue.recover(self.rt)
        try:
            async with anyio.create_task_group() as tg:
                for i in range(self.concurrency):
                    tg.start_soon(self._worker, name=f"job worker {i + 1}")
                task_status.started()
                await self._loop()
        finally:
            self._ready_send.close()
            self._ready.close()
            try:
                with anyio.CancelScope(shield=True):
                    await self._requeue_interrupted()
            finally:
                for entry in list(self.running.values()):
                    entry.finish()  # claimed, never run: a cancel waiting on it returns
                self.running.clear()

    async def drain(self, grace: float) -> None:
        """Start no new job, and wait up to ``grace`` seconds for running ones to end.

        Whatever still runs afterwards is cancelled (and requeued) with the scheduler.
        """
        self._draining = True
        with anyio.move_on_after(grace):
            # Until none is left: a claim committing as the drain began adds one.
            while self.running:
                await next(iter(self.running.values())).wait()

    async def cancel(self, job_id: str) -> None:
        """Cancel running job ``job_id`` and wait until its cancellation is recorded.

        A job claimed but not registered yet is cancelled as soon as it is; a
        job that is not active returns at once.
        """
        entry = self.running.get(job_id)
        if entry is not None:
            entry.cancel()
            await entry.wait()
            return
        # Shared by every canceller of this job; set by whoever ends it (the
        # entry it becomes, or the canceller that pops it here).
        done = self._doomed.setdefault(job_id, anyio.Event())
        job = await self.rt.db.read(store.get, job_id)
        if job is None or job["status"] != "active":
            if self._doomed.pop(job_id, None) is not None:
                done.set()
            return
        # A claim committed before that read has registered its job once the
        # hooks of every earlier commit have run: an empty write waits for that.
        await self.rt.db.write(_nothing)
        if job_id not in self._doomed:  # registered meanwhile, or another canceller has it
            await done.wait()
            return
        if self.rt.db.url is not None:
            try:
                elsewhere = await self._cancel_elsewhere(job_id)
            except BaseException:
                if self._doomed.pop(job_id, None) is not None:
                    done.set()
                raise
            if elsewhere:
                if self._doomed.pop(job_id, None) is not None:
                    done.set()
                return
        # Active in the database, yet run by nobody here (its outcome could not
        # be recorded): fail it now rather than wait for a start that never comes.
        self._doomed.pop(job_id, None)
        try:
            await queue.fail(self.rt, job, Failure("cancelled", cancelled=True))
        finally:
            done.set()

    def running_ids(self) -> list[str]:
        return list(self.running)

    def drop(self, job_ids: list[str]) -> None:
        for job_id in job_ids:
            entry = self.running.get(job_id)
            if entry is not None:
                entry.lost = True
                entry.cancel()

    async def _cancel_elsewhere(self, job_id: str) -> bool:
        """PostgreSQL: if another node holds active job ``job_id``, ask it to
        cancel the job and wait until the job is no longer active (True), or
        up to two leases (Conflict). False if no other node holds it."""
        rt = self.rt
        holder = await rt.db.read(store.runner, job_id)
        if holder is None or holder == rt.cluster.node_id or rt.cluster.request_cancel is None:
            return False
        rt.cluster.request_cancel(holder, job_id)
        # The holder records the cancellation; a holder that died meanwhile
        # has its job taken back by a lease renewal, and the job fails queued.
        with anyio.move_on_after(2 * rt.config.lease):
            while True:
                await anyio.sleep(0.05)
                job = await rt.db.read(store.get, job_id)
                if job is None or job["status"] != "active":
                    if job is not None and job["status"] in store.QUEUED:
                        await queue.fail(rt, job, Failure("cancelled", cancelled=True),
                                         from_statuses=store.QUEUED)
                    return True
        raise Conflict(f"job {job_id} runs on node {holder}, which did not cancel it; "
                       "try again")

    # -- internals -------------------------------------------------------------------

    async def _loop(self) -> None:
        due_reached: int | None = None
        failing: Iterator[float] | None = None  # the waits between claims that fail
        while True:
            self._wakeup = anyio.Event()  # before the claim: a wake during it is kept
            free = 0 if self._draining else self.concurrency - len(self.running)
            next_due: int | None = None
            if free > 0:
                now = self.rt.clock.now_ms()
                if due_reached is not None:
                    # Woken at the due time: never let float rounding make the
                    # clock read one millisecond early and spin.
                    now = max(now, due_reached)
                due_reached = None
                try:
                    _, next_due = await queue.claim(self.rt, limit=free, now_ms=now,
                                                    on_claimed=self._register)
                    failing = None
                except Exception as exc:
                    # A database that is full, locked or failing must not stop
                    # the daemon: try again later (or when woken).
                    failing = failing or _retry_delays()
                    delay = next(failing)
                    if isinstance(exc, StorageUnavailable):
                        log.warning("could not claim jobs: %s; trying again in %g s",
                                    exc.message, delay)
                    else:
                        log.exception("could not claim jobs; trying again in %g s", delay)
                    with anyio.move_on_after(delay):
                        await self._wakeup.wait()
                    continue
            due_reached = None
            if next_due is None:
                await self._wakeup.wait()
            else:
                with anyio.move_on_at(self.rt.clock.loop_time(next_due)) as sleep:
                    await self._wakeup.wait()
                if sleep.cancelled_caught:
                    due_reached = next_due

    def _register(self, claimed: list[Job]) -> None:
        # Runs right after the claim commits, on the event loop: the jobs are
        # known (to cancel) before anything else can happen, then handed to
        # the workers.
        for job in claimed:
            entry = _Running(job)
            old = self.running.get(job["id"])
            if old is not None:
                # Claimed again while its earlier run goes on here: another
                # node took it back, and this node's scheduler was first to
                # claim it after that. The earlier run's work is not held.
                old.lost = True
                old.cancel()
            done = self._doomed.pop(job["id"], None)
            if done is not None:
                entry.done, entry.cancel_requested = done, True
            self.running[job["id"]] = entry
            self._ready_send.send_nowait(entry)

    async def _worker(self) -> None:
        while True:
            entry = await self._ready.receive()
            if self._draining:
                # Claimed as the drain began (a claim already on its way to
                # the database): start nothing new, give the attempt back.
                try:
                    await queue.requeue(self.rt, [entry.job["id"]])
                except StorageUnavailable:
                    self._interrupted.add(entry.job["id"])  # tried again as the scheduler stops
                self._release(entry)
                continue
            await self._run(entry)

    def _release(self, entry: _Running) -> None:
        """The job's outcome is recorded (or cannot be): its place is free."""
        if not entry.finished:
            if self.running.get(entry.job["id"]) is entry:
                del self.running[entry.job["id"]]
            entry.finish()

    async def _run(self, entry: _Running) -> None:
        """Run one job and record its outcome; its place is then free, and the
        loop claims the next job."""
        job = entry.job
        try:
            outcome = await self._execute(entry)
            if entry.lost:
                log.warning("job %s (%s) was taken back by another node while it ran "
                            "here; what it did here is dropped", job["id"], job["name"])
                return
            await self._record_until_stored(job, outcome)
        except anyio.get_cancelled_exc_class():
            self._interrupted.add(job["id"])  # shutdown: requeued by run()
            raise
        finally:
            self._release(entry)
            if self._worth_a_look():
                self.wake()

    def _worth_a_look(self) -> bool:
        """After a job ended: whether a claim may find something now (a job
        waiting, a group's next job, one retried with a new due time). Not
        when the queue holds nothing to run: an empty claim is a write that
        the next message's write would queue behind. Other ways work arrives
        wake the scheduler themselves (an enqueue, a resume, another node's
        notice). Always with other nodes alive: this node's counts of what
        they queued are only as fresh as its last lease renewal, and a node
        kept full when their jobs came would otherwise sit idle until then."""
        tallies = self.rt.tallies
        if not tallies.live or self.rt.cluster.others_alive:
            return True
        counts = tallies.queue()
        return counts.get("waiting", 0) > 0 or counts.get("delayed", 0) > 0

    async def _execute(self, entry: _Running) -> _Outcome:
        job = entry.job
        processor = self.job_types.processor(job["name"])
        if processor is None:
            return _Outcome(failure=Failure(f"no processor for job name {job['name']!r}"))
        with anyio.CancelScope() as scope:
            entry.scope = scope
            if entry.cancel_requested:
                scope.cancel()
            try:
                return _Outcome(result=await processor(JobContext(self.rt, job)))
            except JobLost:
                entry.lost = True
                return _Outcome()
            except Exception as exc:
                # A processor's task group wraps the failure of its one child
                # in a group: judged (retryable or not) and told as the failure.
                error = sole(exc)
                return _Outcome(error=error if isinstance(error, Exception) else exc)
        # Only our own scope's cancellation ends up here (job.cancel); a
        # shutdown's propagates.
        return _Outcome(failure=Failure("cancelled", cancelled=True))

    async def _record_until_stored(self, job: Job, outcome: _Outcome) -> None:
        """Record ``outcome``, trying again while the database cannot store it.

        Until it is stored the job stays active: its worker's place stays
        taken and its group waits. An outcome refused for another reason (a
        bug: the same write would fail every time) is replaced by the job's
        failure, so that the group goes on. Only cancellation (shutdown) stops
        the tries; the job is then requeued, or taken back at the next start.
        """
        record = self._recording(job, outcome)
        completes = outcome.failure is None and outcome.error is None
        waits = _retry_delays()
        refused = False
        while True:
            # The outcome is in hand: it is recorded even if shutdown starts
            # during the write, which cannot be cancelled once called.
            try:
                await record()
            except StorageUnavailable as exc:
                problem = exc.message
            except Exception as exc:
                if not refused:
                    refused, completes = True, False
                    log.exception("job %s (%s): the database refused its outcome; it fails "
                                  "instead", job["id"], job["name"])
                    failure = Failure(f"could not store the outcome: {client_reason(exc)}",
                                      exc)
                    record = partial(queue.fail, self.rt, job, failure)
                    continue
                problem = f"{type(exc).__name__}: {exc}"  # for the log only
            else:
                if completes:
                    log.debug("job %s (%s) completed after %d attempt(s)",
                              job["id"], job["name"], job["attempts"])
                return
            delay = next(waits)
            log.warning("job %s (%s): could not record its outcome: %s; trying again in %g s",
                        job["id"], job["name"], problem, delay)
            await anyio.sleep(delay)

    def _recording(self, job: Job, outcome: _Outcome) -> Callable[[], Awaitable[object]]:
        """What ``outcome`` means for ``job`` (logged once, however many tries
        its recording takes): the write that records it."""
        if outcome.failure is not None:
            log.info("job %s (%s) failed: %s", job["id"], job["name"], outcome.failure.reason)
            return partial(queue.fail, self.rt, job, outcome.failure)
        exc = outcome.error
        if exc is None:
            return partial(queue.succeed, self.rt, job, outcome.result)
        reason = client_reason(exc)
        if not isinstance(exc, WizError):
            # The client reads a plain reason; the traceback is for the log.
            log.error("job %s (%s) raised", job["id"], job["name"], exc_info=exc)
        delay = backoff.retry_delay(exc, attempts=job["attempts"], max_attempts=job["max_attempts"],
                                    policy=self.policy, rng=self.rng)
        if delay is None:
            log.warning("job %s (%s) failed for good after %d attempt(s): %s",
                        job["id"], job["name"], job["attempts"], reason)
            return partial(queue.fail, self.rt, job, Failure(reason, exc))
        log.info("job %s (%s) attempt %d failed, retrying in %.3f s: %s",
                 job["id"], job["name"], job["attempts"], delay, reason)
        return partial(queue.retry_later, self.rt, job, reason, delay)

    async def _requeue_interrupted(self) -> None:
        leftover = sorted(self._interrupted | set(self.running))
        self._interrupted.clear()
        if leftover:
            try:
                requeued = await queue.requeue(self.rt, leftover)
            except StorageUnavailable as exc:
                log.warning("could not return %d running job(s) to the queue (%s); they are "
                            "taken back at the next start", len(leftover), exc.message)
                return
            log.info("returned %d running job(s) to the queue", len(requeued))
