"""Completion handlers: what a job's outcome means, routed by job name.

The queue calls a handler inside the transaction that finishes the job, so a
job's outcome and its side effects commit together or not at all; the events
the handler returns are published after the commit. A new job type registers
a handler here (or lives with the generic one) and needs no change to the
scheduler or the queue.

``response_generator`` (an agent's reply):
- success: the reply message (author = the agent's user, ``reply_to`` = the
  trigger; marked truncated if it was cut off at ``max_reply_bytes``) and its
  llm_message (with the model and the provider's token counts), the
  trigger's llm_message if missing, the job completed with
  ``{message_id, model, finish_reason, usage, truncated}``, the agent's
  status; then ``message.created``, ``job.updated``, ``agent.status``. If the
  reply exists already (a second run after a crash), the job just completes.
- final failure: an error message from the agent, in a plain sentence (the
  details stay in the job's ``failure_reason``), then the same.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

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
from ..llm.base import ChatMessage, Completion
from ..objects import Message
from ..services import agents, replies
from ..store import jobs as store

log = logging.getLogger(__name__)

Job = dict[str, Any]


@dataclass(frozen=True)
class Failure:
    """Why a job failed for good: ``reason`` is stored as its failure_reason."""

    reason: str
    exc: BaseException | None = None
    cancelled: bool = False


@dataclass(frozen=True)
class Transition:
    """A job's new state and the events to publish once it is committed."""

    job: Job
    events: list[Event] = field(default_factory=list)


def job_event(job: Job) -> Event:
    data = job.get("data")
    conversation_id = data.get("conversation_id") if isinstance(data, dict) else None
    return Event("job.updated", {"job": job}, conversation_id=conversation_id)


class Handler:
    """The generic handler: the job's own row is all there is to update."""

    def succeeded(self, conn: Connection, job: Job, result: Any, now_ms: int) -> Transition | None:
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


@dataclass(frozen=True)
class ReplyResult:
    """What the response_generator processor hands to its completion handler."""

    inputs: replies.ReplyInputs
    completion: Completion


@dataclass(frozen=True)
class Skipped:
    reason: str


class ReplyHandler(Handler):
    """response_generator: store the reply or the error message with the job's outcome."""

    def succeeded(self, conn: Connection, job: Job, result: Any, now_ms: int) -> Transition | None:
        data = job["data"]
        if isinstance(result, Skipped):
            done = store.complete(conn, job["id"], {"skipped": result.reason}, now_ms)
            return None if done is None else self._finish(conn, done, [])
        if not isinstance(result, ReplyResult):
            raise TypeError(f"response_generator returned {type(result).__name__}")
        inputs, answer = result.inputs, result.completion
        current = store.get(conn, job["id"])
        if current is None or current["status"] != "active":
            return None  # cancelled or finished meanwhile: its result is dropped
        reply = replies.store_reply(
            conn, conversation=inputs.conversation, agent_user_id=inputs.agent_user_id,
            trigger_id=inputs.trigger_id, content=answer.content,
            trigger_llm=_user_turn(inputs.trigger_llm), now_ms=now_ms,
            truncated=answer.truncated, model=answer.model, usage=answer.usage,
        )
        message_id = reply["id"] if reply else replies.existing_reply(
            conn, inputs.trigger_id, inputs.agent_user_id)
        outcome = {"message_id": message_id, "model": answer.model,
                   "finish_reason": answer.finish_reason, "usage": answer.usage,
                   "truncated": answer.truncated}
        if reply is None:
            outcome["duplicate"] = True
            log.info("job %s: agent %s had already replied to %s; not replying again",
                     job["id"], data["agent_id"], inputs.trigger_id)
        done = store.complete(conn, job["id"], outcome, now_ms)
        if done is None:  # cannot happen: checked above, and writes are serialised
            raise RuntimeError(f"job {job['id']} stopped being active mid-transaction")
        events = [] if reply is None else [_message_event(reply)]
        return self._finish(conn, done, events)

    def failed(
        self,
        conn: Connection,
        job: Job,
        failure: Failure,
        now_ms: int,
        from_statuses: tuple[str, ...],
    ) -> Transition | None:
        done = store.fail(conn, job["id"], failure.reason, now_ms, from_statuses=from_statuses)
        if done is None:
            return None
        data = done["data"]
        name = replies.agent_name(conn, data["agent_id"]) or "the agent"
        verb = "did not reply" if failure.cancelled else "could not reply"
        error = replies.store_error(
            conn, conversation_id=data["conversation_id"], agent_id=data["agent_id"],
            trigger_id=data["message_id"], now_ms=now_ms,
            content=f"Agent {name} {verb}: {plain_reason(failure)}.",
        )
        return self._finish(conn, done, [] if error is None else [_message_event(error)])

    def changed(self, conn: Connection, job: Job) -> list[Event]:
        return self._status_events(conn, job)

    def _finish(self, conn: Connection, job: Job, events: list[Event]) -> Transition:
        return Transition(job, [*events, job_event(job), *self._status_events(conn, job)])

    @staticmethod
    def _status_events(conn: Connection, job: Job) -> list[Event]:
        data = job["data"]
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
    """Why a job failed, as a plain phrase for people (details stay in the job)."""
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


GENERIC = Handler()
HANDLERS: dict[str, Handler] = {"response_generator": ReplyHandler()}


def handler_for(name: str) -> Handler:
    """The completion handler of job ``name`` (the generic one if it has none)."""
    return HANDLERS.get(name, GENERIC)
