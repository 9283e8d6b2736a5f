"""Following conversations as they happen: ``tail -f`` and ``events``.

``Follower`` owns a subscription that survives the daemon: on a lost
connection it reconnects with exponential backoff and resubscribes with
``after_seq`` = the last message it handed out, and it drops
``message.created`` it has already handed out, so a reader sees every stored
message exactly once, in order. The commands below print what it hands out
through ``view.View``; ``wizctl.replies`` waits on one for ``send --wait``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from .client import Client, ConnectionLost, Notification, RpcError, WizClientError
from .resolve import Lookup
from .view import View

FIRST_DELAY = 0.1
MAX_DELAY = 2.0


class Follower:
    """A subscription (one conversation, or everything) that outlives reconnects.

    ``connect()`` returns a new connected Client. ``after_seq``: stored messages
    after this seq are replayed first. With None it is live only until the
    first message is seen, so a reconnect before that may miss messages stored
    meanwhile: give the newest seq of the scope (``newest_seq``, or
    ``daemon_last_seq`` for everything) to resume exactly. ``client`` may be
    given to reuse an open connection.
    """

    def __init__(self, connect: Callable[[], Client], *, conversation_id: str | None = None,
                 after_seq: int | None = None, client: Client | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 on_reconnect: Callable[[str], None] | None = None) -> None:
        self.connect = connect
        self.conversation_id = conversation_id
        self.last_seq = after_seq
        self.client = client
        self.subscription: str | None = None
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


def daemon_last_seq(call: Callable[..., Any]) -> int | None:
    """The newest stored seq across the daemon (``daemon.status``'s ``last_seq``);
    None from a wizd too old to say."""
    last = call("daemon.status").get("last_seq")
    return last if isinstance(last, int) and not isinstance(last, bool) else None


def notice(err: TextIO, views: Sequence[View] = ()) -> Callable[[str], None]:
    """An ``on_reconnect`` that tells the person on ``err`` (``wizctl: ...``).

    ``views`` (filled in once they exist) get their streaming lines cleared
    first and redrawn after, so the notice never lands in the middle of a reply.
    """
    def say(text: str) -> None:
        line = f"wizctl: {text}"
        if views:
            views[0].aside(err, line)
        else:
            err.write(line + "\n")
            err.flush()
    return say


def tail(connect: Callable[[], Client], ref: str, *, limit: int, follow: bool, json: bool,
         out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Print the last ``limit`` messages of a conversation; with ``follow``, keep
    printing new ones (and streaming replies on a terminal) until Ctrl-C (exit 0)."""
    out, err = out or sys.stdout, err or sys.stderr
    views: list[View] = []
    follower = Follower(connect, client=connect(), on_reconnect=notice(err, views))
    lookup = Lookup(follower.call)
    view = View(lookup, out=out, json=json)
    views.append(view)
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
    """Print every notification of every conversation until interrupted.

    Starts after the newest stored message, so a reconnect resumes exactly
    where it left off even before the first message arrives."""
    out, err = out or sys.stdout, err or sys.stderr
    views: list[View] = []
    follower = Follower(connect, client=connect(), on_reconnect=notice(err, views))
    view = View(Lookup(follower.call), out=out, json=json, where=True, everything=True)
    views.append(view)
    try:
        follower.last_seq = daemon_last_seq(follower.call)
        follower.start()
        for note in follower:
            view.notification(note)
    finally:
        view.close()
        follower.close()
    return 0
