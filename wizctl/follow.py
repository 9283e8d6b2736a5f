"""Following conversations as they happen: ``tail -f``, ``events`` and ``send --wait``.

``Follower`` owns a subscription that survives the daemon: on a lost
connection it reconnects with exponential backoff and resubscribes with
``after_seq`` = the last message it handed out, and it drops
``message.created`` it has already handed out, so a reader sees every stored
message exactly once, in order. The commands below print what it hands out
through ``render.View``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from . import render
from .client import Client, ConnectionLost, Notification, RpcError, WizClientError
from .render import View
from .resolve import Lookup

FIRST_DELAY = 0.1
MAX_DELAY = 2.0


class Follower:
    """A subscription (one conversation, or everything) that outlives reconnects.

    ``connect()`` returns a new connected Client. ``after_seq``: stored messages
    after this seq are replayed first. With None (``events``, which cannot know
    the newest seq of everything) it is live only until the first message is
    seen, so a reconnect before that may miss messages stored meanwhile.
    ``client`` may be given to reuse an open connection.
    """

    def __init__(self, connect: Callable[[], Client], *, conversation_id: str | None = None,
                 after_seq: int | None = None, client: Client | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 on_reconnect: Callable[[str], None] | None = None) -> None:
        self.connect = connect
        self.conversation_id = conversation_id
        self.last_seq = after_seq
        self.client = client
        self.subscription: Any = None
        self.sleep = sleep
        self.on_reconnect = on_reconnect

    def start(self) -> Follower:
        """Connect (if needed) and subscribe. Raises DaemonNotRunning, RpcError."""
        if self.client is None or self.client.closed:
            self.client = self.connect()
        self._subscribe()
        return self

    def _subscribe(self) -> None:
        assert self.client is not None
        self.subscription = self.client.subscribe(self.conversation_id, self.last_seq)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()

    def call(self, method: str, /, **params: Any) -> Any:
        """A call on the current connection (for Lookup and message.send)."""
        assert self.client is not None, "start() first"
        return self.client.call(method, **params)

    def next(self, timeout: float | None = None) -> Notification | None:
        """The next notification of this subscription; None once ``timeout`` seconds
        pass without one. Reconnects as needed (while time remains)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else max(deadline - time.monotonic(), 0)
            try:
                assert self.client is not None, "start() first"
                note = self.client.next_notification(remaining)
            except ConnectionLost:
                if not self._reconnect(deadline):
                    return None
                continue
            if note is None:
                return None
            if note.subscription != self.subscription:
                continue  # from a subscription we replaced (after events.lagged)
            if note.method == "events.lagged":
                if self.last_seq is None and isinstance(note.params.get("last_seq"), int):
                    self.last_seq = note.params["last_seq"]
                self._subscribe()
                return note
            if note.method == "message.created":
                seq = (note.params.get("message") or {}).get("seq")
                if isinstance(seq, int):
                    if self.last_seq is not None and seq <= self.last_seq:
                        continue  # already handed out before a reconnect
                    self.last_seq = seq
            return note

    def _reconnect(self, deadline: float | None) -> bool:
        """Connect and subscribe again, backing off 0.1 s doubling to 2 s.
        False if ``deadline`` passes first. An RpcError (the conversation is gone)
        is raised, not retried."""
        if self.client is not None:
            self.client.close()
        if self.on_reconnect:
            self.on_reconnect("lost the connection to wizd; reconnecting")
        delay = FIRST_DELAY
        while True:
            pause = delay
            if deadline is not None:
                pause = min(delay, deadline - time.monotonic())
                if pause <= 0:
                    return False
            self.sleep(pause)
            try:
                self.client = self.connect()
                self._subscribe()
            except RpcError:
                raise
            except WizClientError:
                # Not running yet, refused, or dropped again mid-restart.
                delay = min(delay * 2, MAX_DELAY)
                continue
            if self.on_reconnect:
                self.on_reconnect("reconnected")
            return True

    def __iter__(self) -> Follower:
        return self

    def __next__(self) -> Notification:
        note = self.next()
        assert note is not None  # no timeout: next() only returns notifications
        return note


# -- commands ------------------------------------------------------------------

def newest_seq(call: Callable[..., Any], conversation_id: str) -> int:
    """The seq of the newest stored message of a conversation, 0 if it has none."""
    msgs = call("message.list", conversation_id=conversation_id, limit=1)["messages"]
    return int(msgs[-1]["seq"]) if msgs else 0


def _notice(err: TextIO) -> Callable[[str], None]:
    def say(text: str) -> None:
        err.write(f"wizctl: {text}\n")
        err.flush()
    return say


def tail(connect: Callable[[], Client], ref: str, *, limit: int, follow: bool, json: bool,
         out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Print the last ``limit`` messages of a conversation; with ``follow``, keep
    printing new ones (and streaming replies on a terminal) until Ctrl-C (exit 0)."""
    out, err = out or sys.stdout, err or sys.stderr
    follower = Follower(connect, client=connect(), on_reconnect=_notice(err))
    lookup = Lookup(follower.call)
    view = View(lookup, out=out, json=json)
    try:
        conv = lookup.conversation(ref)
        msgs = (follower.call("message.list", conversation_id=conv["id"], limit=limit)["messages"]
                if limit > 0 else [])
        for msg in msgs:
            view.message(msg)
        if not follow:
            return 0
        follower.conversation_id = conv["id"]
        follower.last_seq = msgs[-1]["seq"] if msgs else newest_seq(follower.call, conv["id"])
        follower.start()
        for note in follower:
            view.notification(note)
    except KeyboardInterrupt:
        if not follow:
            raise
        return 0  # the way out of tail -f, not a failure
    finally:
        view.close()
        follower.close()
    return 0


def events(connect: Callable[[], Client], *, json: bool, out: TextIO | None = None,
           err: TextIO | None = None) -> int:
    """Print every notification of every conversation until interrupted."""
    out, err = out or sys.stdout, err or sys.stderr
    follower = Follower(connect, on_reconnect=_notice(err)).start()
    view = View(Lookup(follower.call), out=out, json=json, where=True, everything=True)
    try:
        for note in follower:
            view.notification(note)
    finally:
        view.close()
        follower.close()
    return 0


class WaitTimeout(WizClientError):
    """No reply arrived in time (``send --wait`` exits 2)."""


# A job that ended (completed, or failed for good) stored its reply or its
# error message just before saying so; this long we still wait for that message.
_SETTLE = 2.0


def send(connect: Callable[[], Client], ref: str, text: str, *, wait: bool,
         timeout: float, json: bool, out: TextIO | None = None,
         err: TextIO | None = None) -> int:
    """Send ``text``; with ``wait``, print the replies of the jobs it triggered.

    Returns 0, or 1 if a reply is an error (printed to ``err``) or a job failed
    without one. Raises WaitTimeout after ``timeout`` seconds without every reply.
    """
    out, err = out or sys.stdout, err or sys.stderr
    follower = Follower(connect, client=connect(), on_reconnect=_notice(err))
    lookup = Lookup(follower.call)
    try:
        conv = lookup.conversation(ref)
        if wait:
            # Subscribe first: a fast reply must not slip between send and subscribe.
            follower.conversation_id = conv["id"]
            follower.last_seq = newest_seq(follower.call, conv["id"])
            follower.start()
        result = follower.call("message.send", conversation_id=conv["id"], content=text)
        if not wait:
            line = render.pretty_json(result) if json else _sent_line(lookup, conv, result)
            out.write(line + "\n")
            return 0
        view = None if json else View(lookup, out=out, bare=len(result.get("jobs") or ()) == 1)
        try:
            replies, ok = await_replies(follower, lookup, view, result, timeout=timeout, err=err)
        finally:
            if view is not None:
                view.close()
    finally:
        follower.close()
    if json:
        out.write(render.pretty_json({**result, "replies": replies}) + "\n")
    return 0 if ok else 1


def _sent_line(lookup: Lookup, conv: dict[str, Any], result: dict[str, Any]) -> str:
    n = len(result.get("jobs") or ())
    sent = result.get("message") or {}
    return (f"sent {render.short_id(sent.get('id'))} to {lookup.conversation_label(conv)}"
            + (f"; {n} agent{'s' if n != 1 else ''} will reply" if n else ""))


class Replies:
    """Which messages answer the jobs that one ``message.send`` triggered.

    A reply is a message whose ``reply_to`` is the sent message. wizd stores the
    error message of a job that failed for good without ``reply_to`` (the
    (trigger, agent) slot stays free for a retry), so an error message from a
    job's agent answers that job once ``job.updated`` says it failed. A job's
    agent is learnt from its ``job.updated`` data or its deltas.
    """

    def __init__(self, sent_id: Any, jobs: list[Any],
                 agent_user: Callable[[Any], Any]) -> None:
        self.sent_id = sent_id
        self.users: dict[Any, Any] = {j: None for j in jobs}
        self.answers: dict[Any, dict[str, Any]] = {}
        self.ended: dict[Any, dict[str, Any]] = {}
        self._errors: dict[Any, dict[str, Any]] = {}  # author -> unclaimed error message
        self._agent_user = agent_user

    @property
    def done(self) -> bool:
        return len(self.answers) == len(self.users)

    def _open(self) -> list[Any]:
        return [j for j in self.users if j not in self.answers]

    def on_message(self, msg: dict[str, Any]) -> list[dict[str, Any]] | None:
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

    def on_delta(self, params: dict[str, Any]) -> bool:
        """Whether a delta belongs to one of our jobs (noting its author)."""
        job = params.get("job_id")
        if job not in self.users:
            return False
        self.users[job] = self.users[job] or params.get("author_id")
        return True

    def on_job(self, job: dict[str, Any]) -> list[dict[str, Any]]:
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

    def _claim(self) -> list[dict[str, Any]]:
        out = []
        for jid in self._open():
            failed = (self.ended.get(jid) or {}).get("status") == "failed"
            if failed and self.users[jid] in self._errors:
                self.answers[jid] = self._errors.pop(self.users[jid])
                out.append(self.answers[jid])
        return out

    def unanswered(self) -> list[dict[str, Any]]:
        """The jobs that ended without a reply (as the daemon last described them)."""
        return [self.ended[j] for j in self._open() if j in self.ended]


def await_replies(follower: Follower, lookup: Lookup, view: View | None,
                  result: dict[str, Any], *, timeout: float | None, err: TextIO,
                  others: bool = False) -> tuple[list[dict[str, Any]], bool]:
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

    def agent_user(agent_id: Any) -> Any:
        return next((a.get("user_id") for a in lookup.agents() if a.get("id") == agent_id), None)

    state = Replies(sent_id, jobs, agent_user)
    replies: list[dict[str, Any]] = []
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
        got: list[dict[str, Any]] | None = []
        if note.method == "message.created":
            msg = p.get("message") or {}
            got = state.on_message(msg)
            if got is None and others and view is not None and msg.get("id") != sent_id:
                view.message(msg)
        elif note.method == "message.delta":
            if state.on_delta(p) and view is not None:
                view.delta(p)
        elif note.method == "job.updated":
            got = state.on_job(p.get("job") or {})
        for msg in got or ():
            replies.append(msg)
            if msg.get("kind") == "error":
                if view is not None:
                    view.settle(msg)
                who = lookup.user_name(msg.get("author_id"))
                err.write(f"wizctl: {who}: {render.clean(msg.get('content'))}\n")
            elif view is not None:
                view.message(msg)
    return replies, all(r.get("kind") != "error" for r in replies)


def _report_ended(jobs: list[dict[str, Any]], err: TextIO) -> None:
    """Say why these jobs ended without a reply."""
    for job in jobs:
        reason = render.one_line(job.get("failure_reason") or "no reply was stored", 300)
        err.write(f"wizctl: job {render.short_id(job.get('id'))} {job.get('status')}: {reason}\n")
