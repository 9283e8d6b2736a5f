"""job.list, job.get, job.retry, job.cancel, queue.pause, queue.resume."""

from __future__ import annotations

from typing import Any

from ...jobs import queue
from ..registry import registry
from ..server import Call


@registry.method("job.list")
async def job_list(call: Call, status: str | None = None, limit: int = 50) -> dict[str, Any]:
    """The newest jobs first, optionally of one status (waiting, active, delayed,
    failed, completed, paused)."""
    return {"jobs": await queue.list_jobs(call.rt, status=status, limit=limit)}


@registry.method("job.get")
async def job_get(call: Call, id: str) -> dict[str, Any]:
    """One job by id."""
    return await queue.get(call.rt, id)


@registry.method("job.retry")
async def job_retry(call: Call, id: str) -> dict[str, Any]:
    """Queue a failed job again with fresh attempts (conflict unless it failed)."""
    return await queue.retry(call.rt, id)


@registry.method("job.cancel")
async def job_cancel(call: Call, id: str) -> dict[str, Any]:
    """Cancel a waiting, delayed or running job: it fails with reason "cancelled".

    A running job is cancelled where it is (its provider call is abandoned) and
    the result comes back once that is recorded. Conflict if it has finished.
    """
    return await queue.cancel(call.rt, id)


@registry.method("queue.pause")
async def queue_pause(call: Call) -> dict[str, Any]:
    """Start no new job until queue.resume (running ones finish); survives restarts."""
    return {"paused": await queue.set_paused(call.rt, True)}


@registry.method("queue.resume")
async def queue_resume(call: Call) -> dict[str, Any]:
    """Start jobs again after queue.pause."""
    return {"paused": await queue.set_paused(call.rt, False)}
