"""The scheduler with generic processors, over a real SQLite file.

Timing tests run on pytest-trio's ``autojump_clock`` (virtual time; the harness
makes its autojump wait for database threads) and assert exact virtual times:
a job's ``processed_on`` and the clock are both driven by it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest
import trio
import trio.testing
from sqlalchemy import Connection, text
from trio.testing import MockClock

from tests.support.tmpfs import fill, tmpfs
from wizd.errors import Conflict, ProviderAuthError, ProviderError, ProviderRateLimited
from wizd.jobs import queue
from wizd.jobs.queue import JobContext
from wizd.objects import Job
from wizd.store import jobs as store
from wizd.store.database import Database

from .helpers import AUTOJUMP_TASK, Harness, harness


def starts(h: Harness, job: Job) -> list[int]:
    """When each attempt of ``job`` started, in ms after it was added (exact: the
    queue's clock counts whole milliseconds of virtual time)."""
    return [e.params["job"]["processed_on"] - job["created_at"] for e in h.events.of("job.updated")
            if e.params["job"]["id"] == job["id"] and e.params["job"]["status"] == "active"]


def since(t0: float, times: list[float]) -> list[float]:
    """Virtual seconds after t0."""
    return [t - t0 for t in times]


def ms_exact(expected: list[float]) -> Any:
    # Due times are whole milliseconds of the queue's clock, whose zero is not
    # on a millisecond boundary of the loop's clock: a start may come up to
    # 1 ms early in loop time, never more.
    return pytest.approx(expected, abs=1e-3)


class Recorder:
    """A processor that notes when each job started and how many ran at once."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.started: list[tuple[float, str]] = []
        self.running = 0
        self.max_running = 0

    async def __call__(self, ctx: JobContext) -> dict[str, Any]:
        self.started.append((anyio.current_time(), str(ctx.data.get("tag", ctx.job["id"]))))
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            await anyio.sleep(self.seconds)
        finally:
            self.running -= 1
        return {"ok": ctx.data.get("tag")}


class Blocker:
    """A processor that runs until released (or cancelled)."""

    def __init__(self) -> None:
        self.entered = anyio.Event()
        self.release = anyio.Event()
        self.cancelled = False

    async def __call__(self, ctx: JobContext) -> str:
        self.entered.set()
        try:
            await self.release.wait()
        except anyio.get_cancelled_exc_class():
            self.cancelled = True
            raise
        return "released"


@pytest.mark.trio
async def test_a_queued_job_starts_when_woken_and_not_before(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    rec = Recorder()
    async with harness(tmp_path, processors={"noop": rec}) as h:
        job = await h.add_job(wake=False)
        # No polling interval: an hour of virtual time passes and nobody looks.
        await trio.sleep(3600)
        assert (await h.job(job["id"]))["status"] == "waiting"
        h.rt.scheduler.wake()
        done = await h.events.job(job["id"], "completed")
        assert done["processed_on"] == h.rt.clock.now_ms()
        assert done["result"] == {"ok": None} and done["attempts"] == 1


@pytest.mark.trio
async def test_a_new_job_starts_at_once(tmp_path: Path, autojump_clock: MockClock) -> None:
    async with harness(tmp_path, processors={"noop": Recorder()}) as h:
        job = await h.add_job()
        done = await h.events.job(job["id"], "completed")
        assert done["processed_on"] == job["created_at"]


@pytest.mark.trio
async def test_a_delayed_job_starts_when_due(tmp_path: Path, autojump_clock: MockClock) -> None:
    rec = Recorder()
    async with harness(tmp_path, processors={"noop": rec}) as h:
        t0 = trio.current_time()
        job = await h.add_job(delay_ms=5000)
        assert job["status"] == "delayed"
        # A job added meanwhile does not disturb the delayed one's due time.
        await trio.sleep(2)
        await h.add_job(data={"tag": "later"})
        done = await h.events.job(job["id"], "completed")
        assert done["processed_on"] == job["created_at"] + 5000
        assert since(t0, [t for t, _ in rec.started]) == ms_exact([2.0, 5.0])


@pytest.mark.trio
async def test_concurrency_limit(tmp_path: Path, autojump_clock: MockClock) -> None:
    rec = Recorder(seconds=1)
    async with harness(tmp_path, processors={"noop": rec}, concurrency=3) as h:
        t0 = trio.current_time()
        jobs = [await h.add_job(data={"tag": str(i)}) for i in range(10)]
        for job in jobs:
            await h.events.job(job["id"], "completed")
        assert rec.max_running == 3
        # 10 one-second jobs, three at a time: four rounds.
        assert trio.current_time() - t0 == pytest.approx(4.0)


class TaskSteps(trio.abc.Instrument):
    """The names of the tasks that run (trio's public instrumentation)."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.names.add(task.name)


@pytest.mark.trio
async def test_queued_jobs_run_in_order_then_the_scheduler_rests(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    """Queued jobs run one after another, in order, each once; once the queue
    is empty no task of the scheduler runs again (no polling) until woken."""
    rec = Recorder()
    async with harness(tmp_path, processors={"noop": rec}, concurrency=1) as h:
        jobs = [await h.add_job(data={"tag": str(i)}, wake=False) for i in range(5)]
        h.rt.scheduler.wake()
        for job in jobs:
            await h.events.job(job["id"], "completed")
        await trio.sleep(1)
        published = len(h.events.events)
        steps = TaskSteps()
        trio.lowlevel.add_instrument(steps)
        try:
            await trio.sleep(3600)
        finally:
            trio.lowlevel.remove_instrument(steps)
        # Only this test and the harness's clock ran in that hour.
        assert steps.names == {trio.lowlevel.current_task().name, AUTOJUMP_TASK}
        assert len(h.events.events) == published
        assert [tag for _, tag in rec.started] == [str(i) for i in range(5)]


@pytest.mark.parametrize("others", [False, True])
@pytest.mark.trio
async def test_after_a_job_a_node_looks_for_jobs_its_counts_do_not_show_if_others_live(
    tmp_path: Path, autojump_clock: MockClock, others: bool
) -> None:
    """After a job ends, the scheduler claims again only if the queue's counts
    show something to run: alone, they hold every job, since they are kept at
    commit. With other nodes alive, a job they queued while this node was
    full (its wake-up found no free place) shows in the counts only at the
    next lease renewal: the node looks all the same, instead of idling."""
    blocker = Blocker()
    async with harness(tmp_path, processors={"noop": blocker}, concurrency=1,
                       tallies=True) as h:
        if others:
            h.rt.cluster.nodes = [
                {"id": h.rt.cluster.node_id, "alive": True},  # type: ignore[typeddict-item]
                {"id": "another node", "alive": True}]  # type: ignore[typeddict-item]
        first = await h.add_job()
        await blocker.entered.wait()
        # Queued behind this node's back (the counts do not see it), and its
        # wake-up comes while the one place is taken.
        other = Database(h.rt.db.url or h.rt.db.path)
        await other.open()
        try:
            second = await other.write(
                lambda conn: store.add_job(conn, name="noop", data={}, now_ms=1,
                                           max_attempts=3))
        finally:
            await other.close()
        h.rt.scheduler.wake()
        await trio.sleep(1)
        blocker.release.set()
        await h.events.job(first["id"], "completed")
        await trio.sleep(3600)
        status = (await h.job(second["id"]))["status"]
        assert status == ("completed" if others else "waiting")


@pytest.mark.anyio
async def test_a_worker_frees_its_place_before_taking_the_next_job(tmp_path: Path) -> None:
    """The loop counts free places as the limit minus the claimed jobs: a job whose
    outcome is recorded leaves that count before the loop claims again, so the
    limit is never passed and no worker idles while jobs wait. Claimed jobs
    are the active ones: job.updated, published in commit order, tells how
    many there were after each commit."""
    rec = Recorder()
    async with harness(tmp_path, processors={"noop": rec}, concurrency=2) as h:
        jobs = [await h.add_job(data={"tag": str(i)}, wake=False) for i in range(30)]
        h.rt.scheduler.wake()
        for job in jobs:
            await h.events.job(job["id"], "completed")
        active: set[str] = set()
        most = 0
        for event in h.events.of("job.updated"):
            job = event.params["job"]
            if job["status"] == "active":
                active.add(job["id"])
            else:
                active.discard(job["id"])
            most = max(most, len(active))
        assert most == 2 and rec.max_running == 2


@pytest.mark.trio
async def test_a_job_delayed_while_every_worker_is_busy_starts_when_due(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    """The loop claims nothing while the workers are all busy; once one frees
    up, the loop finds the delayed job not yet due and sleeps until it is."""
    blocker, rec = Blocker(), Recorder()
    async with harness(tmp_path, processors={"block": blocker, "noop": rec},
                       concurrency=1) as h:
        t0 = trio.current_time()
        await h.add_job("block")
        await blocker.entered.wait()
        delayed = await h.add_job(delay_ms=5000)
        await trio.sleep(1)
        blocker.release.set()
        done = await h.events.job(delayed["id"], "completed")
        assert done["processed_on"] == delayed["created_at"] + 5000
        assert since(t0, [t for t, _ in rec.started]) == ms_exact([5.0])


@pytest.mark.trio
async def test_one_job_at_a_time_per_group_in_order(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    rec = Recorder(seconds=1)
    async with harness(tmp_path, processors={"noop": rec}, concurrency=8) as h:
        t0 = trio.current_time()
        jobs = []
        for i in range(4):
            for group in ("a", "b"):
                jobs.append(await h.add_job(data={"tag": f"{group}{i}"}, group_key=group))
        for job in jobs:
            await h.events.job(job["id"], "completed")
        by_group = {g: [(round(t - t0), tag) for t, tag in rec.started if tag[0] == g]
                    for g in "ab"}
        # Each group in its order, one per second; the groups side by side.
        assert by_group == {g: [(i, f"{g}{i}") for i in range(4)] for g in "ab"}
        assert rec.max_running == 2


@pytest.mark.trio
async def test_highest_priority_first_then_oldest(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    rec = Recorder()
    async with harness(tmp_path, processors={"noop": rec}, concurrency=1) as h:
        await queue.set_paused(h.rt, True)
        jobs = []
        for tag, priority in (("low", 0), ("high", 5), ("mid", 1), ("high2", 5), ("low2", 0)):
            jobs.append(await h.add_job(data={"tag": tag}, priority=priority))
            await trio.sleep(0.001)
        assert {j["status"] for j in jobs} == {"paused"}
        await queue.set_paused(h.rt, False)
        for job in jobs:
            await h.events.job(job["id"], "completed")
        assert [tag for _, tag in rec.started] == ["high", "high2", "mid", "low", "low2"]


@pytest.mark.trio
async def test_unknown_job_name_fails_clearly(tmp_path: Path, autojump_clock: MockClock) -> None:
    async with harness(tmp_path, processors={}) as h:
        job = await h.add_job("no_such_job")
        failed = await h.events.job(job["id"], "failed")
        assert failed["failure_reason"] == "no processor for job name 'no_such_job'"
        assert failed["attempts"] == 1


class Flaky:
    """Raises the given errors in turn, then succeeds."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.started: list[float] = []

    async def __call__(self, ctx: JobContext) -> str:
        self.started.append(trio.current_time())
        if self.errors:
            raise self.errors.pop(0)
        return "fine"


@pytest.mark.trio
async def test_retries_back_off_exponentially(tmp_path: Path, autojump_clock: MockClock) -> None:
    flaky = Flaky(ProviderError("boom", status=500), ProviderError("boom", status=502))
    async with harness(tmp_path, processors={"noop": flaky}, backoff_base=1.5) as h:
        t0 = trio.current_time()
        job = await h.add_job(max_attempts=3)
        done = await h.events.job(job["id"], "completed")
        # Full jitter pinned to its maximum: 1.5 s, then 3 s.
        assert starts(h, job) == [0, 1500, 4500]
        assert since(t0, flaky.started) == ms_exact([0, 1.5, 4.5])
        assert done["attempts"] == 3 and done["result"] == "fine"
        statuses = [e.params["job"]["status"] for e in h.events.of("job.updated")]
        assert statuses == ["active", "delayed", "active", "delayed", "active", "completed"]
        delayed = [e.params["job"] for e in h.events.of("job.updated")
                   if e.params["job"]["status"] == "delayed"]
        assert delayed[0]["failure_reason"] == "provider: boom (HTTP 500)"
        assert delayed[1]["run_at"] == job["created_at"] + 4500


@pytest.mark.trio
async def test_backoff_is_capped(tmp_path: Path, autojump_clock: MockClock) -> None:
    flaky = Flaky(*(ProviderError("down") for _ in range(4)))
    async with harness(tmp_path, processors={"noop": flaky}, backoff_base=2, backoff_cap=5) as h:
        t0 = trio.current_time()
        job = await h.add_job(max_attempts=5)
        await h.events.job(job["id"], "completed")
        assert starts(h, job) == [0, 2000, 6000, 11_000, 16_000]
        assert since(t0, flaky.started) == ms_exact([0, 2, 6, 11, 16])


@pytest.mark.trio
async def test_retry_after_is_honoured(tmp_path: Path, autojump_clock: MockClock) -> None:
    flaky = Flaky(ProviderRateLimited("slow down", status=429, retry_after=7))
    async with harness(tmp_path, processors={"noop": flaky}) as h:
        t0 = trio.current_time()
        job = await h.add_job()
        await h.events.job(job["id"], "completed")
        assert starts(h, job) == [0, 7000]
        assert since(t0, flaky.started) == ms_exact([0, 7])


@pytest.mark.trio
async def test_errors_that_cannot_succeed_fail_at_once(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    flaky = Flaky(ProviderAuthError("bad key", status=401))
    async with harness(tmp_path, processors={"noop": flaky}) as h:
        job = await h.add_job(max_attempts=5)
        failed = await h.events.job(job["id"], "failed")
        assert failed["attempts"] == 1 and len(flaky.started) == 1
        assert failed["failure_reason"] == "provider: bad key (HTTP 401)"


@pytest.mark.trio
async def test_attempts_run_out(tmp_path: Path, autojump_clock: MockClock) -> None:
    flaky = Flaky(ProviderError("one"), RuntimeError("two"), ProviderError("three"))
    async with harness(tmp_path, processors={"noop": flaky}) as h:
        job = await h.add_job(max_attempts=2)
        failed = await h.events.job(job["id"], "failed")
        assert failed["attempts"] == 2
        assert failed["failure_reason"] == "internal error; see the wizd log"


@pytest.mark.trio
async def test_a_failure_inside_a_processors_task_group_is_judged_as_itself(
        tmp_path: Path, autojump_clock: MockClock) -> None:
    """A processor running work in a task group gets its one failing child's
    error wrapped in an exception group: the queue still sees a provider's
    error (retried, its own words as the reason), not an unexpected one."""

    async def grouped(ctx: JobContext) -> None:
        async def child() -> None:
            raise ProviderAuthError("bad key", status=401)

        async with anyio.create_task_group() as tg:
            tg.start_soon(child)

    async with harness(tmp_path, processors={"noop": grouped}) as h:
        job = await h.add_job(max_attempts=3)
        failed = await h.events.job(job["id"], "failed")
    assert failed["attempts"] == 1  # never retried, as a bare ProviderAuthError
    assert failed["failure_reason"] == "provider: bad key (HTTP 401)"


@pytest.mark.anyio
async def test_an_internal_error_is_a_plain_reason_for_clients_and_a_traceback_in_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Dispatch hides internal errors from clients; so does the queue: job.get
    shows a plain reason, never the exception's text, which goes to the log."""

    async def broken(ctx: JobContext) -> None:
        raise KeyError("agent_id")

    caplog.set_level(logging.ERROR, logger="wizd.jobs.scheduler")
    async with harness(tmp_path, processors={"noop": broken}) as h:
        job = await h.add_job(max_attempts=1)
        await h.events.job(job["id"], "failed")
        failed = await queue.get(h.rt, job["id"])
    assert failed["failure_reason"] == "internal error; see the wizd log"
    assert "KeyError" not in json.dumps(failed)
    [record] = [r for r in caplog.records if r.exc_info is not None]
    assert record.exc_info is not None and isinstance(record.exc_info[1], KeyError)
    assert job["id"] in record.getMessage()
    assert "KeyError: 'agent_id'" in caplog.text and "Traceback" in caplog.text


@pytest.mark.anyio
async def test_cancel_a_waiting_and_a_running_job(tmp_path: Path) -> None:
    blocker = Blocker()
    async with harness(tmp_path, processors={"noop": blocker}, concurrency=1) as h:
        running = await h.add_job(group_key="g")
        waiting = await h.add_job(group_key="g")
        delayed = await h.add_job(delay_ms=60_000)
        await blocker.entered.wait()
        for job in (waiting, delayed):
            cancelled = await queue.cancel(h.rt, job["id"])
            assert (cancelled["status"], cancelled["failure_reason"]) == ("failed", "cancelled")
        cancelled = await queue.cancel(h.rt, running["id"])
        assert (cancelled["status"], cancelled["failure_reason"]) == ("failed", "cancelled")
        assert blocker.cancelled and cancelled["attempts"] == 1
        with pytest.raises(Conflict):
            await queue.cancel(h.rt, running["id"])
        # The slot is free again.
        blocker.release.set()
        after = await h.add_job(group_key="g")
        assert (await h.events.job(after["id"], "completed"))["result"] == "released"


async def orphaned_job(h: Harness) -> Job:
    """A job active in the database with no task running it (the queue paused so
    that nobody claims it for real)."""
    await queue.set_paused(h.rt, True)
    job = await h.add_job()

    def orphan(conn: Connection) -> None:
        conn.execute(text("UPDATE jobs SET status = 'active', attempts = 1 WHERE id = :id"),
                     {"id": job["id"]})

    await h.rt.db.write(orphan)
    return job


@pytest.mark.anyio
async def test_cancel_of_a_job_active_in_the_database_but_run_by_nobody(tmp_path: Path) -> None:
    """A job left active with no task running it (its outcome could not be
    recorded) is failed by job.cancel at once instead of hanging the call."""
    async with harness(tmp_path, processors={"noop": Blocker()}) as h:
        job = await orphaned_job(h)
        with anyio.fail_after(10):
            cancelled = await queue.cancel(h.rt, job["id"])
        assert (cancelled["status"], cancelled["failure_reason"]) == ("failed", "cancelled")


@pytest.mark.anyio
async def test_two_cancels_of_a_job_run_by_nobody_both_return(tmp_path: Path) -> None:
    async with harness(tmp_path, processors={"noop": Blocker()}) as h:
        job = await orphaned_job(h)
        outcomes: list[tuple[str, str | None]] = []

        async def cancel() -> None:
            try:
                cancelled = await queue.cancel(h.rt, job["id"])
            except Conflict as exc:  # it came after the other had failed the job
                outcomes.append(("conflict", (exc.data or {}).get("status")))
            else:
                outcomes.append((cancelled["status"], cancelled["failure_reason"]))

        with anyio.fail_after(10):  # neither waits for a start that never comes
            async with anyio.create_task_group() as tg:
                tg.start_soon(cancel)
                tg.start_soon(cancel)
        assert ("failed", "cancelled") in outcomes
        assert set(outcomes) <= {("failed", "cancelled"), ("conflict", "failed")}
        job = await queue.get(h.rt, job["id"])
        assert (job["status"], job["failure_reason"]) == ("failed", "cancelled")


@pytest.mark.trio
async def test_a_job_claimed_again_by_its_own_worker_can_still_be_cancelled(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    """Retry-After: 0 puts the job back due at once, and the commit that records
    the failed attempt claims it again for the same worker: the new entry must
    stay known, or job.cancel could not reach the running attempt."""
    blocker = Blocker()
    first = [True]

    async def once_rate_limited(ctx: JobContext) -> str:
        if first[0]:
            first[0] = False
            raise ProviderRateLimited("slow down", status=429, retry_after=0)
        return await blocker(ctx)

    async with harness(tmp_path, processors={"noop": once_rate_limited}, concurrency=1) as h:
        job = await h.add_job()
        await blocker.entered.wait()
        cancelled = await queue.cancel(h.rt, job["id"])
        assert blocker.cancelled
        assert (cancelled["status"], cancelled["attempts"]) == ("failed", 2)


@pytest.mark.trio
@pytest.mark.sqlite_only("holds SQLite's write lock from another connection")
async def test_a_job_claimed_as_a_drain_begins_is_given_back(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    """A job's outcome can be on its way to the database when the drain starts
    (here the write waits for another process's lock): the job waiting behind
    it is not started, and keeps its attempts."""
    import sqlite3

    blocker, rec = Blocker(), Recorder()
    async with harness(tmp_path, scheduler=False, concurrency=1) as h:
        scheduler = await h.start_scheduler({"block": blocker, "noop": rec})
        first = await h.add_job("block")
        await blocker.entered.wait()
        later = await h.add_job()  # waits: the one worker is busy
        other = sqlite3.connect(h.rt.config.db, isolation_level=None, check_same_thread=False)
        try:
            other.execute("BEGIN IMMEDIATE")
            blocker.release.set()
            # A virtual second: the job has ended, and the write of its outcome
            # tries again and again behind the lock (for up to BUSY_TIMEOUT_MS).
            await trio.sleep(1)
            assert (await h.job(first["id"]))["status"] == "active"
            async with anyio.create_task_group() as tg:
                tg.start_soon(scheduler.drain, 10)
                await anyio.lowlevel.checkpoint()
                other.execute("COMMIT")
        finally:
            other.close()
        assert (await h.job(first["id"]))["status"] == "completed"
        assert rec.started == []
        again = await h.job(later["id"])
        assert (again["status"], again["attempts"]) == ("waiting", 0)
        await h.stop_scheduler(scheduler)


@pytest.mark.anyio
async def test_shutdown_requeues_running_jobs_without_losing_an_attempt(tmp_path: Path) -> None:
    blocker = Blocker()
    async with harness(tmp_path, processors={"noop": blocker}, scheduler=False) as h:
        scheduler = await h.start_scheduler({"noop": blocker})
        job = await h.add_job(max_attempts=1)
        await blocker.entered.wait()
        assert (await h.job(job["id"]))["attempts"] == 1
        await h.stop_scheduler(scheduler)
        assert blocker.cancelled
        back = await h.job(job["id"])
        assert (back["status"], back["attempts"], back["failure_reason"]) == ("waiting", 0, None)
        # Restart: the job runs again, its one attempt intact.
        blocker2 = Blocker()
        blocker2.release.set()
        await h.start_scheduler({"noop": blocker2})
        done = await h.events.job(job["id"], "completed")
        assert (done["attempts"], done["result"]) == (1, "released")


@pytest.mark.trio
async def test_drain_lets_running_jobs_finish_within_the_grace(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    rec = Recorder(seconds=3)
    async with harness(tmp_path, processors={"noop": rec}, scheduler=False) as h:
        scheduler = await h.start_scheduler({"noop": rec})
        quick = await h.add_job()
        await h.events.job(quick["id"], "active")
        await scheduler.drain(10)
        assert (await h.job(quick["id"]))["status"] == "completed"
        # Draining: a new job waits for the next start.
        later = await h.add_job()
        await trio.sleep(60)
        assert (await h.job(later["id"]))["status"] == "waiting"
        await h.stop_scheduler(scheduler)


@pytest.mark.trio
async def test_a_job_that_ends_during_a_drain_starts_no_other(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    """The worker's claim of its next job is decided when the job ends, not when
    it started: one that was running as the drain began claims nothing."""
    rec = Recorder(seconds=3)
    async with harness(tmp_path, processors={"noop": rec}, scheduler=False,
                       concurrency=1) as h:
        scheduler = await h.start_scheduler({"noop": rec})
        first = await h.add_job(data={"tag": "first"})
        await h.events.job(first["id"], "active")
        second = await h.add_job(data={"tag": "second"})  # waits: the one worker is busy
        await scheduler.drain(10)
        assert (await h.job(first["id"]))["status"] == "completed"
        assert (await h.job(second["id"]))["status"] == "waiting"
        assert [tag for _, tag in rec.started] == ["first"]
        await h.stop_scheduler(scheduler)


@pytest.mark.anyio
async def test_a_cancelled_scheduler_stops_claiming_even_if_jobs_never_await(
    tmp_path: Path,
) -> None:
    """Jobs that fail at once (no processor) give a worker no checkpoint, and
    recording cannot be cancelled: the worker still stops at the next job."""
    blocker = Blocker()
    async with harness(tmp_path, scheduler=False, concurrency=1) as h:
        scheduler = await h.start_scheduler({"block": blocker})
        await h.add_job("block")
        await blocker.entered.wait()
        now = h.rt.clock.now_ms()

        def many(conn: Connection) -> None:
            for _ in range(200):
                store.add_job(conn, name="no-such-processor", data={}, now_ms=now,
                              max_attempts=1)

        await h.rt.db.write(many)
        blocker.release.set()
        await anyio.lowlevel.checkpoint()
        await h.stop_scheduler(scheduler)
        counts = await h.rt.db.read(store.count_by_status)
        # At most the one or two the worker met before the cancel arrived.
        assert counts["failed"] <= 2 and counts["failed"] + counts["waiting"] == 200, counts
        assert counts["active"] == 0


@pytest.mark.trio
async def test_jobs_left_active_by_a_dead_daemon_are_taken_back(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    rec = Recorder()
    async with harness(tmp_path, processors={"noop": rec}, scheduler=False) as h:
        job = await h.add_job()
        claimed, _ = await queue.claim(h.rt, limit=1, now_ms=h.rt.clock.now_ms())
        assert [j["attempts"] for j in claimed] == [1]
        # The daemon "dies" here; a new scheduler starts on the same database.
        await h.start_scheduler({"noop": rec})
        done = await h.events.job(job["id"], "completed")
        assert done["attempts"] == 1  # the interrupted attempt was given back


@pytest.mark.trio
async def test_pause_and_resume(tmp_path: Path, autojump_clock: MockClock) -> None:
    rec = Recorder()
    async with harness(tmp_path, processors={"noop": rec}) as h:
        assert await queue.set_paused(h.rt, True) is True
        job = await h.add_job()
        assert job["status"] == "paused"
        await trio.sleep(100)
        assert rec.started == [] and (await h.job(job["id"]))["status"] == "paused"
        assert await queue.set_paused(h.rt, False) is False
        done = await h.events.job(job["id"], "completed")
        assert done["processed_on"] == job["created_at"] + 100_000


@pytest.mark.trio
async def test_retry_a_failed_job(tmp_path: Path, autojump_clock: MockClock) -> None:
    flaky = Flaky(ProviderAuthError("bad key", status=401))
    async with harness(tmp_path, processors={"noop": flaky}) as h:
        job = await h.add_job()
        await h.events.job(job["id"], "failed")
        again = await queue.retry(h.rt, job["id"])
        assert (again["status"], again["attempts"], again["failure_reason"]) == ("waiting", 0, None)
        done = await h.events.job(job["id"], "completed")
        assert done["attempts"] == 1
        with pytest.raises(Conflict):
            await queue.retry(h.rt, job["id"])


# -- storage failures ---------------------------------------------------------------
#
# ``PRAGMA max_page_count`` on the write connection (set through an ordinary
# write, which runs there) makes SQLite answer SQLITE_FULL as soon as a write
# needs another page: a full disk, deterministic under the virtual clock. A
# row of BIG bytes lives on overflow pages, and rewriting it (a claim, a
# result, a requeue) needs new ones.

BIG = "x" * 100_000


def no_more_pages(conn: Connection) -> None:
    # Pages freed earlier (by a rewritten row) would be reused first: fill them.
    conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS ballast (x BLOB)")
    free = conn.exec_driver_sql("PRAGMA freelist_count").scalar_one()
    conn.exec_driver_sql("INSERT INTO ballast VALUES (zeroblob(?))", (free * 4096,))
    conn.exec_driver_sql("PRAGMA max_page_count = 1")  # clamped to the current size


def pages_again(conn: Connection) -> None:
    conn.exec_driver_sql("PRAGMA max_page_count = 1073741823")


def scheduler_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records
            if r.name == "wizd.jobs.scheduler" and r.levelno >= logging.WARNING]


@pytest.mark.trio
@pytest.mark.sqlite_only("fills the database with SQLite's max_page_count")
async def test_an_outcome_that_cannot_be_stored_is_tried_again_until_it_is(
    tmp_path: Path, autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The disk fills while a job runs: its outcome is tried again after 0.5 s,
    then after waits that double up to 30 s, until it is stored. Its worker
    holds its place meanwhile and its group waits; both go on without a restart."""
    blocker = Blocker()

    async def big_result(ctx: JobContext) -> dict[str, str]:
        if ctx.data["tag"] == "first":
            await blocker(ctx)
        return {"blob": BIG}

    async with harness(tmp_path, processors={"noop": big_result}, concurrency=1) as h:
        first = await h.add_job(data={"tag": "first"}, group_key="g")
        await blocker.entered.wait()
        second = await h.add_job(data={"tag": "second"}, group_key="g")
        other = await h.add_job(data={"tag": "other"}, group_key="other")
        await h.rt.db.write(no_more_pages)
        t0 = trio.current_time()
        blocker.release.set()
        # Tries at 0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5, 61.5, 91.5, then every 30 s.
        await trio.sleep_until(t0 + 100)
        statuses = [(await h.job(j["id"]))["status"] for j in (first, second, other)]
        assert statuses == ["active", "waiting", "waiting"]
        await h.rt.db.write(pages_again)
        done = await h.events.job(first["id"], "completed")
        assert trio.current_time() - t0 == pytest.approx(121.5, abs=1e-3)
        assert done["result"] == {"blob": BIG}
        for job in (second, other):
            assert (await h.events.job(job["id"], "completed"))["result"] == {"blob": BIG}
    lines = scheduler_lines(caplog)
    assert len(lines) == 9, [r.getMessage() for r in lines]  # one per failed try
    assert all(r.exc_info is None and "disk full" in r.getMessage() for r in lines)


@pytest.mark.trio
@pytest.mark.sqlite_only("fills the database with SQLite's max_page_count")
async def test_a_claim_that_cannot_be_stored_is_one_line_and_tried_again(
    tmp_path: Path, autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    rec = Recorder()
    async with harness(tmp_path, processors={"noop": rec}) as h:
        job = await h.add_job(data={"blob": BIG}, wake=False)
        await h.rt.db.write(no_more_pages)
        t0 = trio.current_time()
        h.rt.scheduler.wake()
        await trio.sleep(10)  # tries at 0, 0.5, 1.5, 3.5, 7.5; the next at 15.5
        assert (await h.job(job["id"]))["status"] == "waiting"
        await h.rt.db.write(pages_again)
        await h.events.job(job["id"], "completed")
        assert since(t0, [t for t, _ in rec.started]) == ms_exact([15.5])
    lines = scheduler_lines(caplog)
    assert len(lines) == 5, [r.getMessage() for r in lines]
    assert all(r.exc_info is None and "disk full" in r.getMessage() for r in lines)


@pytest.mark.anyio
async def test_an_outcome_the_database_refuses_fails_the_job_and_its_group_goes_on(
    tmp_path: Path,
) -> None:
    """An outcome that cannot be stored for another reason than storage (here
    a result that is not JSON) would fail the same way every time: the job
    fails with that reason instead, and the next job of its group runs."""

    async def unstorable(ctx: JobContext) -> object:
        return object() if ctx.data["tag"] == "bad" else "fine"

    async with harness(tmp_path, processors={"noop": unstorable}) as h:
        bad = await h.add_job(data={"tag": "bad"}, group_key="g", max_attempts=1)
        good = await h.add_job(data={"tag": "good"}, group_key="g")
        with anyio.fail_after(10):
            failed = await h.events.job(bad["id"], "failed")
            done = await h.events.job(good["id"], "completed")
    assert failed["failure_reason"] == (
        "could not store the outcome: internal error; see the wizd log")
    assert done["result"] == "fine"


@pytest.mark.trio
@pytest.mark.sqlite_only("fills the database with SQLite's max_page_count")
async def test_shutdown_while_an_outcome_waits_for_room(
    tmp_path: Path, autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Stopped while it waits to try again: the job goes back to the queue, or,
    if that cannot be stored either, stays active for the next start to take
    back; the scheduler stops cleanly either way."""
    blocker = Blocker()
    async with harness(tmp_path, scheduler=False) as h:
        scheduler = await h.start_scheduler({"noop": blocker})
        job = await h.add_job(data={"blob": BIG})
        await blocker.entered.wait()
        await h.rt.db.write(no_more_pages)
        blocker.release.set()
        await trio.sleep(2)
        await h.stop_scheduler(scheduler)
        assert (await h.job(job["id"]))["status"] == "active"
        assert any("taken back at the next start" in r.getMessage() for r in caplog.records)
        await h.rt.db.write(pages_again)
        again = Blocker()
        again.release.set()
        await h.start_scheduler({"noop": again})
        done = await h.events.job(job["id"], "completed")
        assert (done["attempts"], done["result"]) == (1, "released")
    assert not [r for r in caplog.records if r.exc_info]


@pytest.mark.trio
@pytest.mark.sqlite_only("a full tmpfs under the SQLite file")
async def test_a_job_that_ends_on_a_really_full_disk_is_stored_once_there_is_room(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    """On a real full file system (a tmpfs): the job's progress write fails
    (progress is advisory: the reply is not lost for it), its outcome waits,
    and is stored at the first try after space is freed."""
    blocker = Blocker()

    async def with_progress(ctx: JobContext) -> str:
        result = await blocker(ctx)
        await ctx.progress(50)
        return result

    with tmpfs(tmp_path / "data", "4m") as disk:  # where the harness keeps its database
        async with harness(tmp_path, processors={"noop": with_progress}) as h:
            job = await h.add_job()
            await blocker.entered.wait()
            filler = await anyio.to_thread.run_sync(fill, disk)
            t0 = trio.current_time()
            blocker.release.set()
            await trio.sleep(5)  # tries at 0, 0.5, 1.5, 3.5; the next at 7.5
            assert (await h.job(job["id"]))["status"] == "active"
            filler.unlink()
            with trio.fail_after(60):
                done = await h.events.job(job["id"], "completed", "failed")
            assert (done["status"], done["result"]) == ("completed", "released")
            assert trio.current_time() - t0 == pytest.approx(7.5, abs=1e-3)
