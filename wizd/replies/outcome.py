"""The reply job's outcome handler: the reply (or why there is none) is
stored in the transaction that finishes the job.

- success: the reply message (author = the agent's user, ``reply_to`` = the
  trigger; marked truncated if it was cut off at ``max_reply_bytes``) and its
  llm_message (with the model and the provider's token counts), the
  trigger's llm_message if missing, the job completed with
  ``{message_id, model, finish_reason, usage, truncated}``, the agent's
  status; then ``message.created``, ``job.updated``, ``agent.status``. If the
  reply exists already (a second run after a crash), the job just completes.
- skipped (the agent or the trigger is gone): the job completes with
  ``{skipped: reason}``.
- awaiting approval (a ``confirm`` tool): the job is parked, status waiting
  with the reason in ``failure_reason``, until ``job.approve``/``job.deny``;
  then ``tool.approval_requested`` for each call.
- final failure: an error message from the agent, in a plain sentence (the
  job's ``failure_reason`` says it in the queue's words), then the same.

Every move of a reply job in or out of the pending ones keeps its row in
``pending_replies`` (what makes its agent busy) and refreshes the agent's status.
"""

from __future__ import annotations

import logging

from sqlalchemy import Connection

from ..errors import (
    ProviderAuthError,
    ProviderBadRequest,
    ProviderError,
    ProviderProtocolError,
    ProviderRateLimited,
    ProviderTimeout,
    WizError,
)
from ..events.hub import Event
from ..jobs.outcome import Failure, OutcomeHandler, Transition, job_event
from ..llm.base import ChatMessage
from ..objects import Job, Message
from ..services import agents
from ..store import jobs as job_store
from ..store import replies as store
from ..store import steps as step_store
from .inputs import Skip
from .job import ReplyJobData, data_of
from .processor import ReplyResult
from .storing import store_error, store_reply
from .tool_loop import AwaitingApproval

log = logging.getLogger(__name__)


class ReplyOutcome(OutcomeHandler):
    """Store the reply or the error message with the job's outcome."""

    def succeeded(
        self, conn: Connection, job: Job, result: object, now_ms: int
    ) -> Transition | None:
        data = data_of(job)
        if isinstance(result, Skip):
            done = job_store.complete(conn, job["id"], {"skipped": result.reason}, now_ms)
            return None if done is None else self._finish(conn, done, data, [])
        if isinstance(result, AwaitingApproval):
            return self._park(conn, job, data, result, now_ms)
        if not isinstance(result, ReplyResult):
            raise TypeError(f"the reply processor returned {type(result).__name__}")
        inputs, answer = result.inputs, result.completion
        if not job_store.held(conn, job["id"]):
            # Cancelled or finished meanwhile, or taken back by another node
            # (wizd.cluster): its result is dropped.
            return None
        reply = store_reply(
            conn, conversation=inputs.conversation, agent_user_id=inputs.agent_user_id,
            trigger_id=inputs.trigger_id, content=answer.content,
            trigger_llm=_user_turn(inputs.trigger_llm), now_ms=now_ms,
            truncated=answer.truncated, model=answer.model, usage=answer.usage,
        )
        message_id = reply["id"] if reply else store.existing_reply(
            conn, inputs.trigger_id, inputs.agent_user_id)
        outcome = {"message_id": message_id, "model": answer.model,
                   "finish_reason": answer.finish_reason, "usage": answer.usage,
                   "truncated": answer.truncated}
        if reply is None:
            outcome["duplicate"] = True
            log.info("job %s: agent %s had already replied to %s; not replying again",
                     job["id"], data["agent_id"], inputs.trigger_id)
        done = job_store.complete(conn, job["id"], outcome, now_ms)
        if done is None:  # cannot happen: checked above, and writes are serialised
            raise RuntimeError(f"job {job['id']} stopped being active mid-transaction")
        events = [] if reply is None else [_message_event(reply)]
        return self._finish(conn, done, data, events)

    def failed(
        self,
        conn: Connection,
        job: Job,
        failure: Failure,
        now_ms: int,
        from_statuses: tuple[str, ...],
    ) -> Transition | None:
        done = job_store.fail(conn, job["id"], failure.reason, now_ms,
                              from_statuses=from_statuses)
        if done is None:
            return None
        data = data_of(done)
        name = store.agent_name(conn, data["agent_id"]) or "the agent"
        verb = "did not reply" if failure.cancelled else "could not reply"
        error = store_error(
            conn, conversation_id=data["conversation_id"], agent_id=data["agent_id"],
            trigger_id=data["message_id"], now_ms=now_ms,
            content=f"Agent {name} {verb}: {plain_reason(failure)}.",
        )
        return self._finish(conn, done, data, [] if error is None else [_message_event(error)])

    def _park(self, conn: Connection, job: Job, data: ReplyJobData, result: AwaitingApproval,
              now_ms: int) -> Transition | None:
        """The job waits for the user's decision (it stays pending: the agent busy)."""
        if not step_store.park_job(conn, job["id"], result.reason(job["id"]), now_ms):
            return None  # cancelled meanwhile
        parked = job_store.get(conn, job["id"])
        assert parked is not None
        cid = data["conversation_id"]
        asked = [Event("tool.approval_requested", {
            "job_id": job["id"], "conversation_id": cid, "agent_id": data["agent_id"],
            "call_id": c.call_id, "name": c.name, "arguments": c.arguments},
            conversation_id=cid) for c in result.calls]
        return Transition(parked, [job_event(parked), *asked])

    def changed(self, conn: Connection, job: Job) -> list[Event]:
        # Delayed for a retry (pending still: a no-op) or retried after it
        # failed (pending again).
        data = data_of(job)
        store.add_pending(conn, job["id"], data["agent_id"])
        return self._status_events(conn, data)

    def _finish(
        self, conn: Connection, job: Job, data: ReplyJobData, events: list[Event]
    ) -> Transition:
        store.remove_pending(conn, job["id"])
        return Transition(job, [*events, job_event(job), *self._status_events(conn, data)])

    @staticmethod
    def _status_events(conn: Connection, data: ReplyJobData) -> list[Event]:
        status = agents.refresh_status(conn, data["agent_id"])
        if status is None:
            return []
        return [Event("agent.status", {"agent_id": data["agent_id"], "status": status},
                      conversation_id=data["conversation_id"])]


def _user_turn(message: ChatMessage | None) -> ChatMessage | None:
    return message if message is not None and message.role == "user" else None


def _message_event(message: Message) -> Event:
    return Event("message.created", {"message": message},
                 conversation_id=message["conversation_id"], seq=message["seq"])


def plain_reason(failure: Failure) -> str:
    """Why a reply job failed, as a plain phrase for the error message."""
    if failure.cancelled:
        return "the reply was cancelled"
    exc = failure.exc
    if exc is None:
        return failure.reason
    status = getattr(exc, "status", None)
    http = f" (HTTP {status})" if status is not None else ""
    if isinstance(exc, ProviderAuthError):
        if status is None:
            # Refused here, before any request (a key file others can read):
            # its own message says what to do.
            return exc.message
        if status == 403:
            return f"the provider refused access{http}"
        return f"the provider rejected the API key{http}"
    if isinstance(exc, ProviderBadRequest):
        if status == 404:
            return f"the provider does not know the model{http}"
        return f"the provider rejected the request{http}"
    if isinstance(exc, ProviderRateLimited):
        return f"the provider kept refusing with a rate limit{http}"
    if isinstance(exc, ProviderTimeout):
        return "the provider did not answer in time"
    if isinstance(exc, ProviderProtocolError):
        return "the provider's answer could not be understood"
    if isinstance(exc, ProviderError):
        return f"the provider failed{http}" if http else "the provider could not be reached"
    if isinstance(exc, WizError):
        return exc.message
    return "an internal error occurred"
