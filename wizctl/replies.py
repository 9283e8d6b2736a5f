"""Waiting for the replies to a sent message: ``send --wait``, and each line of ``chat``.

``message.send`` says which jobs it triggered; ``Replies`` decides which
messages answer them (pure, no I/O), and ``await_replies`` feeds it what a
``Follower`` hands out until every job has its answer, printing replies (and
their deltas, streaming) as they come and errors on stderr.
"""

from __future__ import annotations

import io
import sys
import time
from collections.abc import Callable
from typing import Any, Protocol, TextIO, cast

from . import exits
from .client import INVALID_PARAMS, Client, Notification, RpcError, WizClientError
from .exits import ReplyFailed
from .follow import Follower, newest_seq, notice
from .objects import Agent, Conversation, Job, Message, MessageDelta, OpenedDm, SentMessage
from .resolve import Lookup
from .text import clean, one_line, pretty_json, short_id
from .view import TOOL_EVENTS, View


class WaitTimeout(WizClientError, TimeoutError):
    """No reply arrived in time (exit 8, timed out)."""


# A job that ended (completed, or failed for good) stored its reply or its
# error message just before saying so; this long we still wait for that message.
_SETTLE = 2.0

# The most characters wizd stores in one message (MAX_CONTENT of
# wizd/services/messages.py; docs/protocol.md). Checked here so that longer
# content is refused in the daemon's own words, not as a line too long to read.
MAX_CONTENT = 100_000


def check_content(text: str) -> str:
    """``text`` if wizd would take it as a message's content; else raises the
    RpcError wizd answers (-32602 ``invalid content: longer than ...``)."""
    if len(text) > MAX_CONTENT:
        problem = f"longer than {MAX_CONTENT} characters"
        raise RpcError(INVALID_PARAMS, f"invalid content: {problem}",
                       {"field": "content", "problem": problem})
    return text


def send_message(call: Callable[..., Any], conversation_id: str, text: str) -> SentMessage:
    """``message.send`` of ``text`` (checked first): ``{message, jobs}``."""
    return cast(SentMessage, call("message.send", conversation_id=conversation_id,
                                  content=check_content(text)))


def open_dm(call: Callable[..., Any], agent: Agent) -> OpenedDm:
    """The open DM of the local user with exactly ``agent`` (the oldest), made if
    there is none."""
    return cast(OpenedDm, call("dm.create", participants=[agent["id"]], reuse=True))


def outcome(replies: list[Message], ok: bool, lookup: Lookup, *, json: bool,
            told: io.StringIO | None = None) -> int:
    """The exit code of a wait for replies: 0, 6 when a reply is an error, 1 when
    a job ended without one. With ``json`` a failure is raised instead, for main()
    to report: ReplyFailed, or a WizClientError saying what ``told`` collected."""
    errors = [r for r in replies if r.get("kind") == "error"]
    if errors and json:
        raise ReplyFailed(lookup.user_name(errors[0].get("author_id")), errors[0])
    if errors:
        return exits.PROVIDER
    if not ok and json:
        said = "; ".join(line.removeprefix("wizctl: ")
                         for line in (told.getvalue() if told else "").splitlines())
        raise WizClientError(said or "a reply job ended without a reply")
    return exits.OK if ok else exits.ERROR


def send(connect: Callable[[], Client], ref: str, text: str, *, wait: bool,
         timeout: float, json: bool, out: TextIO | None = None,
         err: TextIO | None = None) -> int:
    """Send ``text``; with ``wait``, print the replies of the jobs it triggered.

    Returns 0, 6 if a reply is an error (said on ``err``), 1 if a job ended
    without one (with ``json`` these are raised: see ``outcome``). Raises
    WaitTimeout after ``timeout`` seconds without every reply, and RpcError
    for content longer than wizd takes (before sending anything).
    """
    out, err = out or sys.stdout, err or sys.stderr
    check_content(text)
    views: list[View] = []
    follower = Follower(connect, client=connect(), on_reconnect=notice(err, views))
    lookup = Lookup(follower.call)
    told = io.StringIO() if json else None
    try:
        conv = lookup.conversation(ref)
        if wait:
            # Subscribe first: a fast reply must not slip between send and subscribe.
            follower.conversation_id = conv["id"]
            follower.last_seq = newest_seq(follower.call, conv["id"])
            follower.start()
        result = send_message(follower.call, conv["id"], text)
        if not wait:
            line = pretty_json(result) if json else _sent_line(lookup, conv, result)
            out.write(line + "\n")
            return 0
        view = None if json else View(lookup, out=out, bare=len(result.get("jobs") or ()) == 1)
        views.extend([view] if view is not None else [])
        try:
            replies, ok = await_replies(follower, lookup, view, result, timeout=timeout,
                                        err=told or err)
        finally:
            if view is not None:
                view.close()
    finally:
        follower.close()
    if json:
        out.write(pretty_json({**result, "replies": replies}) + "\n")
    return outcome(replies, ok, lookup, json=json, told=told)


def _sent_line(lookup: Lookup, conv: Conversation, result: SentMessage) -> str:
    n = len(result.get("jobs") or ())
    sent = result.get("message") or {}
    return (f"sent {short_id(sent.get('id'))} to {lookup.conversation_label(conv)}"
            + (f"; {n} agent{'s' if n != 1 else ''} will reply" if n else ""))


class Replies:
    """Which messages answer the jobs that one ``message.send`` triggered.

    A reply is a message whose ``reply_to`` is the sent message: the agent's
    answer, or the error message (``kind: "error"``) of a job that failed for
    good. A wizd that stores that error message without ``reply_to`` is also
    understood: then an error message from a job's agent answers that job once
    ``job.updated`` says it failed. A job's agent is learnt from its
    ``job.updated`` data, its deltas, or its reply.
    """

    def __init__(self, sent_id: str | None, jobs: list[str],
                 agent_user: Callable[[object], str | None]) -> None:
        self.sent_id = sent_id
        self.users: dict[str, str | None] = {j: None for j in jobs}  # job -> its agent's user
        self.answers: dict[str, Message] = {}
        self.ended: dict[str, Job] = {}
        self._errors: dict[str | None, Message] = {}  # author -> unclaimed error message
        self._agent_user = agent_user

    @property
    def done(self) -> bool:
        return len(self.answers) == len(self.users)

    def _open(self) -> list[str]:
        return [j for j in self.users if j not in self.answers]

    def on_message(self, msg: Message) -> list[Message] | None:
        """The replies ``msg`` completes (maybe none); None if it is not about our jobs."""
        author = msg.get("author_id")
        if self.sent_id is not None and msg.get("reply_to") == self.sent_id:
            open_jobs = self._open()
            mine = [j for j in open_jobs if self.users[j] == author] or \
                   [j for j in open_jobs if self.users[j] is None]
            if mine:
                self.users[mine[0]] = author
                self.answers[mine[0]] = msg
            return [msg]
        if msg.get("kind") == "error" and not msg.get("reply_to") and \
                author in {self.users[j] for j in self._open()}:
            self._errors[author] = msg
            return self._claim()
        return None

    def on_delta(self, params: MessageDelta) -> bool:
        """Whether a delta belongs to one of our jobs (noting its author)."""
        job = params.get("job_id")
        if job not in self.users:
            return False
        self.users[job] = self.users[job] or params.get("author_id")
        return True

    def on_job(self, job: Job) -> list[Message]:
        """The error replies a job update completes."""
        jid = job.get("id")
        if jid not in self.users:
            return []
        agent_id = (job.get("data") or {}).get("agent_id")
        if self.users[jid] is None and agent_id is not None:
            self.users[jid] = self._agent_user(agent_id)
        if job.get("status") in ("completed", "failed"):
            self.ended[jid] = job
        return self._claim()

    def _claim(self) -> list[Message]:
        out = []
        for jid in self._open():
            failed = jid in self.ended and self.ended[jid].get("status") == "failed"
            if failed and self.users[jid] in self._errors:
                self.answers[jid] = self._errors.pop(self.users[jid])
                out.append(self.answers[jid])
        return out

    def unanswered(self) -> list[Job]:
        """The jobs that ended without a reply (as the daemon last described them)."""
        return [self.ended[j] for j in self._open() if j in self.ended]


class Shows(Protocol):
    """Where ``await_replies`` shows replies: a ``view.View``, or ``ask``'s stream."""

    def delta(self, p: MessageDelta) -> None: ...
    def message(self, msg: Message) -> None: ...
    def settle(self, msg: Message, *, redraw: bool = True) -> None: ...
    def tool(self, note: Notification) -> None: ...


def await_replies(follower: Follower, lookup: Lookup, view: Shows | None,
                  result: SentMessage, *, timeout: float | None, err: TextIO,
                  others: bool = False) -> tuple[list[Message], bool]:
    """Wait for the replies to the message ``result`` (of message.send) reports,
    one per job it lists, showing them in ``view`` (deltas included) as they come.

    Error replies go to ``err``. ``others``: also show other new messages of the
    conversation (not the sent one). Returns (replies, ok): ok is False if a reply
    is an error or a job ended without one. Raises WaitTimeout.
    """
    sent_id = (result.get("message") or {}).get("id")
    jobs = list(result.get("jobs") or ())
    if not jobs:
        err.write("wizctl: no agent was triggered, so no reply will come (in a channel, "
                  "mention one as @name; in a DM, are its agents active?)\n")
        return [], True

    def agent_user(agent_id: object) -> str | None:
        return next((a.get("user_id") for a in lookup.agents() if a.get("id") == agent_id), None)

    state = Replies(sent_id, jobs, agent_user)
    replies: list[Message] = []
    deadline = None if timeout is None else time.monotonic() + timeout
    settle_by: float | None = None
    while not state.done:
        if settle_by is None and len(state.ended) == len(jobs):
            settle_by = time.monotonic() + _SETTLE
        until = min((t for t in (deadline, settle_by) if t is not None), default=None)
        note = follower.next(None if until is None else max(until - time.monotonic(), 0))
        if note is None:
            if settle_by is not None and time.monotonic() >= settle_by:
                _report_ended(state.unanswered(), err)
                return replies, False
            raise WaitTimeout(f"no reply within {timeout:g} s; it will still be stored "
                              "(see `wizctl tail`)")
        p = note.params
        got: list[Message] | None = []
        if note.method == "message.created":
            msg = cast(Message, p.get("message") or {})
            got = state.on_message(msg)
            if got is None and others and view is not None and msg.get("id") != sent_id:
                view.message(msg)
        elif note.method == "message.delta":
            delta = cast(MessageDelta, p)
            if state.on_delta(delta) and view is not None:
                view.delta(delta)
        elif note.method in TOOL_EVENTS:
            if p.get("job_id") in jobs and view is not None:
                view.tool(note)
        elif note.method == "job.updated":
            got = state.on_job(cast(Job, p.get("job") or {}))
        for msg in got or ():
            replies.append(msg)
            if msg.get("kind") == "error":
                if view is not None:
                    view.settle(msg)
                who = lookup.user_name(msg.get("author_id"))
                err.write(f"wizctl: {who}: {clean(msg.get('content'))}\n")
            elif view is not None:
                view.message(msg)
    return replies, all(r.get("kind") != "error" for r in replies)


def _report_ended(jobs: list[Job], err: TextIO) -> None:
    """Say why these jobs ended without a reply."""
    for job in jobs:
        reason = one_line(job.get("failure_reason") or "no reply was stored", 300)
        err.write(f"wizctl: job {short_id(job.get('id'))} {job.get('status')}: {reason}\n")
