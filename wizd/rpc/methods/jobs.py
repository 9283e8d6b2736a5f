"""job.list, job.get, job.retry, job.cancel, queue.pause, queue.resume."""

from __future__ import annotations

from ...jobs import queue
from ...objects import Job, JobDetail, JobList, QueueState
from ...replies.steps import public as public_steps
from ...store import steps as step_store
from ..registry import registry
from ..server import Call


@registry.method("job.list")
async def job_list(
    call: Call, status: str | None = None, limit: int = 50, before: str | None = None
) -> JobList:
    """The newest jobs first, optionally of one status (waiting, active, delayed,
    failed, completed, paused); ``before``: the ``next`` of the previous page."""
    page, cursor = await queue.list_jobs(call.rt, status=status, limit=limit, before=before)
    return {"jobs": page, "next": cursor}


@registry.method("job.get")
async def job_get(call: Call, id: str) -> JobDetail:
    """One job by id, with ``steps``: what a tool-using reply stored, step by
    step (the model's turns with their tool calls, each call's result)."""
    job = await queue.get(call.rt, id)
    rows = await call.rt.db.read(step_store.of_job, id)
    return {**job, "steps": public_steps(rows)}


@registry.method("job.retry")
async def job_retry(call: Call, id: str) -> Job:
    """Queue a failed job again with fresh attempts (conflict unless it failed)."""
    return await queue.retry(call.rt, id)


@registry.method("job.cancel")
async def job_cancel(call: Call, id: str) -> Job:
    """Cancel a waiting, delayed or running job: it fails with reason "cancelled".

    A running job is cancelled where it is (its provider call is abandoned) and
    the result comes back once that is recorded. Conflict if it has finished.
    """
    return await queue.cancel(call.rt, id)


@registry.method("queue.pause")
async def queue_pause(call: Call) -> QueueState:
    """Start no new job until queue.resume (running ones finish); survives restarts."""
    return {"paused": await queue.set_paused(call.rt, True)}


@registry.method("queue.resume")
async def queue_resume(call: Call) -> QueueState:
    """Start jobs again after queue.pause."""
    return {"paused": await queue.set_paused(call.rt, False)}
