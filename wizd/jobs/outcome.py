"""A job's outcome and what it means: the generic handler, routed by job name.

The queue calls a job type's handler inside the transaction that moves the
job (finishes it, delays it, queues it again), so the move and its side
effects commit together or not at all; the events the handler returns are
published after the commit. A job type with side effects (wizd.replies: the
reply message, the agent's status) subclasses ``OutcomeHandler``; the
scheduler and the queue need no change for it (see ``registry``).

A failure reason is stored with the job and shown to clients (``job.get``):
it is a plain sentence, never an internal exception's text, whose traceback
goes to the log instead (``client_reason``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection

from ..errors import WizError
from ..events.hub import Event
from ..objects import Job
from ..store import jobs as store

# What a client is told of an error that is not ours to explain (a bug): the
# same words as an RPC call's internal error (wizd.rpc.dispatch).
INTERNAL_ERROR = "internal error; see the wizd log"


def client_reason(exc: BaseException) -> str:
    """``exc`` as a job's failure_reason: a WizError's own message, else
    ``INTERNAL_ERROR`` (the caller logs the traceback)."""
    if isinstance(exc, WizError):
        return exc.message
    return INTERNAL_ERROR


class JobLost(Exception):
    """A running job's node no longer holds it: another node took it back
    (wizd.cluster), and runs it. Raised by a processor's write that found
    so; the scheduler drops the run, records nothing."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} was taken back by another node")
        self.job_id = job_id


@dataclass(frozen=True)
class Failure:
    """Why a job failed for good: ``reason`` is stored as its failure_reason
    (plain, for clients); ``exc`` is what raised, for the handler's own words."""

    reason: str
    exc: BaseException | None = None
    cancelled: bool = False


@dataclass(frozen=True)
class Transition:
    """A job's new state and the events to publish once it is committed."""

    job: Job
    events: list[Event] = field(default_factory=list)


def job_event(job: Job) -> Event:
    """``job.updated``, routed to the job's conversation if its data names one
    (a subscriber to one conversation sees that conversation's jobs)."""
    conversation_id = job["data"].get("conversation_id")
    return Event("job.updated", {"job": job},
                 conversation_id=conversation_id if isinstance(conversation_id, str) else None)


class OutcomeHandler:
    """The generic handler: the job's own row is all there is to update."""

    def succeeded(
        self, conn: Connection, job: Job, result: object, now_ms: int
    ) -> Transition | None:
        """Complete the active job with ``result`` (JSON); None if it is not active."""
        done = store.complete(conn, job["id"], result, now_ms)
        return None if done is None else Transition(done, [job_event(done)])

    def failed(
        self,
        conn: Connection,
        job: Job,
        failure: Failure,
        now_ms: int,
        from_statuses: tuple[str, ...],
    ) -> Transition | None:
        """Fail the job for good; None if its status is not in ``from_statuses``."""
        done = store.fail(conn, job["id"], failure.reason, now_ms, from_statuses=from_statuses)
        return None if done is None else Transition(done, [job_event(done)])

    def changed(self, conn: Connection, job: Job) -> list[Event]:
        """The job moved without an outcome (retried, delayed): extra events, if any."""
        return []


GENERIC = OutcomeHandler()
