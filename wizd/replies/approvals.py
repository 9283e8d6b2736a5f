"""Approving or denying the tool calls a reply job waits for (``job.approve``,
``job.deny``): the decision and the job made due again, in one transaction.

A call of a tool its server marks ``confirm`` parks its reply job (see
``tool_loop``); approving lets its next attempt run the call, denying gives
the model a refusal as the call's result. Either way the job goes on.
"""

from __future__ import annotations

from sqlalchemy import Connection

from ..errors import Conflict
from ..jobs.outcome import job_event
from ..objects import Job
from ..services.runtime import Runtime
from ..store import jobs as job_store
from ..store import steps as step_store
from .job import NAME

DENIED = "the user denied this call; it was not run"


async def decide(rt: Runtime, job_id: str, *, approve: bool, reason: str | None = None) -> Job:
    """Approve (or deny, with an optional ``reason`` the model is told) every
    call job ``job_id`` waits for, and make it due now.

    Raises NotFound, or Conflict if the job waits for no approval.
    """
    now = rt.clock.now_ms()
    content = DENIED + (f": {reason.strip()}" if reason and reason.strip() else "")

    def tx(conn: Connection) -> Job:
        job = job_store.require(conn, job_id)
        # "paused": parked, then queue.pause moved it with the other waiting jobs.
        parked = (job["name"] == NAME and job["status"] in ("waiting", "paused")
                  and job["run_at"] == step_store.PARKED_RUN_AT)
        if not parked or not step_store.decide(conn, job_id, approved=approve,
                                               content=content, now_ms=now):
            raise Conflict(f"job {job_id} is not waiting for an approval", status=job["status"])
        step_store.unpark_job(conn, job_id, now)
        due = job_store.get(conn, job_id)
        assert due is not None
        return due

    def after_commit(job: Job) -> None:
        rt.hub.publish(job_event(job))

    job = await rt.db.write(tx, after_commit=after_commit)
    rt.scheduler.wake()
    return job
