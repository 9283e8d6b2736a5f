"""An in-process wizd for job tests: a real Runtime over a real database (a
SQLite file, or a PostgreSQL database: ``ENGINE``), the event hub recorded,
and schedulers that can be started and stopped (a restart without a new
process).

``ENGINE`` is set for each test by the ``engine`` fixture's autouse user in
tests/jobs/conftest.py and tests/replies/conftest.py, so every harness test
runs on both engines; a harness entered again for the same folder (a
restart) opens the same database.

Virtual time: under pytest-trio's ``autojump_clock``, the harness replaces the
clock's autojump with one that also waits for database calls. Queries run in
worker threads, which trio cannot see: to its autojump, a task waiting for a
query is idle, so it would jump to the next deadline (a job's timeout, say)
while the query runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import sniffio
from sqlalchemy import Connection, select

from tests.support import postgres
from tests.support.runtime import copy_migrated
from wizd.app import JOB_TYPES
from wizd.config import Config
from wizd.events.hub import Event, Hub
from wizd.jobs.registry import JobTypes, Processor
from wizd.jobs.scheduler import Scheduler
from wizd.objects import Agent, Job, JsonObject, Message
from wizd.services import agents, conversations, messages, providers, users
from wizd.services.agents import AgentCreate
from wizd.services.providers import ProviderCreate
from wizd.services.runtime import QueueClock, Runtime
from wizd.services.tallies import Tallies
from wizd.store import jobs as store
from wizd.store.database import Database
from wizd.store.schema import jobs as jobs_table
from wizd.store.schema import llm_messages
from wizd.store.schema import messages as messages_table

SECRET = "sk-test-DO-NOT-LEAK-4242"


class MaxRandom(random.Random):
    """Full jitter pinned to the top of its window, so backoff times are exact."""

    def uniform(self, a: float, b: float) -> float:
        return b


def _autojump_clock() -> Any:
    """The running MockClock if it autojumps (pytest-trio's ``autojump_clock``)."""
    if sniffio.current_async_library() != "trio":
        return None
    import trio
    import trio.testing

    clock = trio.lowlevel.current_clock()
    if isinstance(clock, trio.testing.MockClock) and clock.autojump_threshold == 0:
        return clock
    return None


# The name of the task that drives the clock (tests that watch which tasks run).
AUTOJUMP_TASK = "harness clock"


async def _autojump(clock: Any) -> None:
    """MockClock's autojump (threshold 0), except while a worker thread is busy:
    a read or a synchronous=FULL write of the database, or any other call (the
    OpenAI SDK looks up the platform in one); writes on the loop hold it anyway."""
    import trio
    import trio.testing

    threads = trio.to_thread.current_default_thread_limiter()
    while True:
        await trio.testing.wait_all_tasks_blocked()
        if threads.borrowed_tokens:
            # A thread will wake someone: give it a moment of real time.
            await trio.testing.wait_all_tasks_blocked(0.0005)
            continue
        jump = trio.lowlevel.current_statistics().seconds_to_next_deadline
        if 0 < jump < math.inf:
            clock.jump(jump)
        elif jump == math.inf:
            # Nothing is scheduled: look again after a moment rather than spin.
            await trio.testing.wait_all_tasks_blocked(0.01)


class EventLog:
    """Every event the hub publishes, kept in order; tests wait on it (no polling)."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.events: list[Event] = []
        self._changed = anyio.Event()

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        sub = self.rt.hub.create(None)
        self.rt.hub.attach(sub, 0)
        task_status.started()
        try:
            while not sub.closed:
                await sub.wait()
                self.events += sub.take()
                self._changed.set()
                self._changed = anyio.Event()
        finally:
            self.rt.hub.detach(sub)

    def of(self, method: str) -> list[Event]:
        return [e for e in self.events if e.method == method]

    async def wait_for(self, predicate: Callable[[Event], bool]) -> Event:
        """The first event (past or future) matching ``predicate``."""
        seen = 0
        while True:
            for event in self.events[seen:]:
                if predicate(event):
                    return event
            seen = len(self.events)
            await self._changed.wait()

    async def job(self, job_id: str, *statuses: str) -> dict[str, Any]:
        """The job as published when it first reached one of ``statuses``."""
        event = await self.wait_for(
            lambda e: e.method == "job.updated" and e.params["job"]["id"] == job_id
            and e.params["job"]["status"] in statuses)
        return dict(event.params["job"])


@dataclass
class Harness:
    rt: Runtime
    events: EventLog
    tg: anyio.abc.TaskGroup
    schedulers: dict[Scheduler, tuple[anyio.CancelScope, anyio.Event]] = field(default_factory=dict)

    async def start_scheduler(
        self, processors: dict[str, Processor] | None = None, *, rng: random.Random | None = None
    ) -> Scheduler:
        """Start a scheduler of ``processors`` (generic job types), or of the job
        types wizd runs, as a (re)started wizd does: it becomes ``rt.scheduler``."""
        scheduler = Scheduler(self.rt, _job_types(processors), rng=rng or MaxRandom())
        self.rt.scheduler = scheduler
        await self.tg.start(self._run, scheduler)
        return scheduler

    async def _run(self, scheduler: Scheduler, *, task_status: Any) -> None:
        stopped = anyio.Event()
        with anyio.CancelScope() as scope:
            self.schedulers[scheduler] = (scope, stopped)
            try:
                await scheduler.run(task_status=task_status)
            finally:
                stopped.set()

    async def stop_scheduler(self, scheduler: Scheduler) -> None:
        """What a shutdown does: cancel the scheduler's scope and wait for it to end."""
        scope, stopped = self.schedulers.pop(scheduler)
        scope.cancel()
        await stopped.wait()

    async def add_job(self, name: str = "noop", data: JsonObject | None = None, *,
                      wake: bool = True, max_attempts: int = 3, **options: Any) -> Job:
        """Queue a job as a service would: in a transaction, then wake the scheduler."""
        now = self.rt.clock.now_ms()

        def tx(conn: Connection) -> Job:
            return store.add_job(conn, name=name, data=data or {}, now_ms=now,
                                 max_attempts=max_attempts, **options)

        job = await self.rt.db.write(tx)
        if wake:
            self.rt.scheduler.wake()
        return job

    # -- setting up a conversation ---------------------------------------------------

    async def provider(self, base_url: str, *, name: str = "test", model: str = "gpt-test") -> str:
        made = await providers.create(self.rt, ProviderCreate(
            name=name, type="openai", default_model=model, base_url=base_url, api_key=SECRET))
        return str(made["id"])

    async def agent(self, name: str = "ada", *, provider_id: str | None = None,
                    **extra: Any) -> Agent:
        return await agents.create(self.rt, AgentCreate(
            name=name, role="Researcher", backstory="Grew up in a library.", goal="Answer well.",
            provider_id=provider_id, **extra))

    async def dm(self, *participants: str) -> str:
        made = await conversations.create_dm(self.rt, participants=list(participants))
        return str(made["id"])

    async def send(self, conversation_id: str, content: str) -> list[str]:
        """message.send as the local user; the ids of the jobs it queued."""
        sent = await messages.send(self.rt, conversation_id=conversation_id, content=content)
        return list(sent["jobs"])

    # -- looking at the database -----------------------------------------------------

    async def job(self, job_id: str) -> Job:
        job = await self.rt.db.read(store.get, job_id)
        assert job is not None
        return job

    async def messages(self, conversation_id: str) -> list[Message]:
        return await self.rt.db.read(messages.newest, conversation_id, 1000)

    async def llm_messages(self) -> dict[str, tuple[str, str]]:
        """message id -> (role, content) of every stored llm_message."""
        def q(conn: Connection) -> dict[str, tuple[str, str]]:
            rows = conn.execute(select(llm_messages)).all()
            return {r.message_id: (r.role, r.content) for r in rows}
        return await self.rt.db.read(q)

    async def agent_status(self, agent_id: str) -> str:
        return str((await agents.get(self.rt, agent_id))["status"])

    async def dump_text(self) -> str:
        """Every job and message column, as text: where a leaked secret would show."""
        def q(conn: Connection) -> str:
            rows = [*conn.execute(select(jobs_table)).all(),
                    *conn.execute(select(messages_table)).all(),
                    *conn.execute(select(llm_messages)).all()]
            return "\n".join(repr(tuple(r)) for r in rows)
        return await self.rt.db.read(q)


def _job_types(processors: dict[str, Processor] | None) -> JobTypes:
    return JOB_TYPES if processors is None else JobTypes.of(processors)


# The engine harness() runs on (see the module docstring), and this test's
# PostgreSQL databases by folder, dropped when the test ends (``finish_test``).
ENGINE = "sqlite"
_PG_URLS: dict[Path | str, str] = {}
_PG_DATABASES = contextlib.ExitStack()


async def _database_for(config: Config) -> Config:
    """``config`` with its database made ready on ``ENGINE``."""
    if ENGINE == "sqlite":
        await copy_migrated(config.db)
        return config
    url = _PG_URLS.get(config.db)
    if url is None:
        url = _PG_URLS[config.db] = _PG_DATABASES.enter_context(postgres.database())
    return dataclasses.replace(config, db=url)


def finish_test() -> None:
    """The test is over: back to SQLite, its PostgreSQL databases given back."""
    global ENGINE
    ENGINE = "sqlite"
    _PG_URLS.clear()
    _PG_DATABASES.close()


def config_for(path: Path, **settings: Any) -> Config:
    return Config(db=path / "data" / "wiz.db", socket=path / "run" / "wizd.sock",
                  backend=sniffio.current_async_library(), **settings)


@asynccontextmanager
async def harness(
    tmp_path: Path,
    *,
    processors: dict[str, Processor] | None = None,
    rng: random.Random | None = None,
    scheduler: bool = True,
    tallies: bool = False,
    **settings: Any,
) -> AsyncIterator[Harness]:
    """A runtime as wizd builds it (local user, built-in provider), its events
    recorded, and (unless ``scheduler=False``) a running scheduler; with
    ``tallies``, the figures kept at commit as wizd keeps them (the queue's
    counts: the scheduler then skips claims they say would find nothing)."""
    config = await _database_for(config_for(tmp_path, **settings))
    kept = Tallies()
    db = Database(config.db, watch=kept.watch if tallies else None)
    await db.open()
    rt = Runtime(config=config, db=db, hub=Hub(100_000), clock=QueueClock(), tallies=kept)
    if tallies:
        await kept.start(db)
    # As app.py does: the runtime has its scheduler before anything runs (the
    # queue finds job types through it), started below or by start_scheduler.
    rt.scheduler = Scheduler(rt, _job_types(processors), rng=rng or MaxRandom())
    try:
        await users.ensure_local_user(rt)
        await providers.ensure_builtin_provider(rt)
        async with anyio.create_task_group() as tg:
            clock = _autojump_clock()
            if clock is not None:
                clock.autojump_threshold = math.inf  # ours below takes over
                tg.start_soon(_autojump, clock, name=AUTOJUMP_TASK)
            log = EventLog(rt)
            await tg.start(log.run)
            h = Harness(rt, log, tg)
            if scheduler:
                await h.start_scheduler(processors, rng=rng)
            yield h
            tg.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await rt.llm_clients.aclose()
            await db.close()
