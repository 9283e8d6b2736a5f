"""``wizctl ask AGENT QUESTION``: one question, its answer streamed, then exit.

The question goes to the DM of the local user with exactly that agent (made
on first use, reused after: ``dm.create`` with ``reuse``), and the answer is
written to stdout piece by piece as the model produces it, like
``llm "prompt"``. To a terminal the pieces are cleaned of control characters;
to a pipe or file they are written as they are, so ``> answer.md`` holds
exactly the stored reply.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from typing import TextIO

from .client import CONFLICT, Client, Notification, RpcError
from .follow import Follower, newest_seq, notice
from .objects import Agent, Message, MessageDelta
from .replies import (
    WaitTimeout,
    await_replies,
    check_content,
    open_dm,
    outcome,
    send_message,
)
from .resolve import Lookup
from .text import clean, is_terminal, pretty_json, use_color
from .view import View, tool_line


class Streamed:
    """An answer written as it comes: each ``message.delta`` appended, the stored
    reply completing (or, if the pieces went astray, replacing) what was written.
    Shows what ``await_replies`` hands it (see ``replies.Shows``)."""

    def __init__(self, out: TextIO, err: TextIO, *, raw: bool) -> None:
        self.out = out
        self.err = err
        self.raw = raw
        self.text = ""  # what this reply's pieces have said so far
        self.index = -1

    def _write(self, text: str) -> None:
        self.out.write(text if self.raw else clean(text))
        self.out.flush()

    def delta(self, p: MessageDelta) -> None:
        index = p.get("index")
        if index == 0 and self.text:
            # The job is being run again (a retry): what was written is void.
            self._write("\n")
            self.err.write("wizctl: the answer was interrupted; it starts again\n")
            self.err.flush()
            self.text, self.index = "", -1
        if isinstance(index, int) and index <= self.index:
            return  # a piece we have
        piece = str(p.get("delta") or "")
        self.text += piece
        self.index = index if isinstance(index, int) else self.index + 1
        self._write(piece)

    def message(self, msg: Message) -> None:
        content = str(msg.get("content") or "")
        if content.startswith(self.text):
            rest = content[len(self.text):]
        else:  # pieces were lost (a reconnect): the whole answer, on a line of its own
            rest = ("\n" if self.text else "") + content
        self._write(rest + "\n")
        self.text, self.index = "", -1

    def settle(self, msg: Message, *, redraw: bool = True) -> None:
        """An error reply ends the answer (the error itself goes to stderr)."""
        self.end()

    def tool(self, note: Notification) -> None:
        """A tool call of the answer, on stderr (stdout is the answer alone)."""
        self.err.write(tool_line(note, color=use_color(self.err)) + "\n")
        self.err.flush()

    def end(self) -> None:
        """End the answer's line, if it has begun."""
        if self.text:
            self._write("\n")
        self.text, self.index = "", -1


def ask(connect: Callable[[], Client], agent_ref: str, question: str, *, timeout: float,
        json: bool, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Ask ``agent_ref`` ``question`` in your DM with it and print the answer.

    Returns 0, or 6 if the answer is an error message (said on ``err``); with
    ``json`` prints the reply message object and raises ReplyFailed for an
    error. Raises ResolveError (no such agent), RpcError (content too long; a
    conflict if the agent is inactive), WaitTimeout after ``timeout`` seconds.
    """
    out, err = out or sys.stdout, err or sys.stderr
    check_content(question)
    views: list[View] = []
    follower = Follower(connect, client=connect(), on_reconnect=notice(err, views))
    lookup = Lookup(follower.call)
    told = io.StringIO() if json else None
    try:
        agent = lookup.agent(agent_ref)
        if agent.get("status") == "inactive":
            raise _inactive(agent)
        conv = open_dm(follower.call, agent)
        # Subscribe first: a fast answer must not slip between send and subscribe.
        follower.conversation_id = conv["id"]
        follower.last_seq = newest_seq(follower.call, conv["id"])
        follower.start()
        result = send_message(follower.call, conv["id"], question)
        if not result.get("jobs"):
            raise _inactive(agent)  # deactivated meanwhile
        view = None if json else Streamed(out, err, raw=not is_terminal(out))
        try:
            replies, ok = await_replies(follower, lookup, view, result, timeout=timeout,
                                        err=told or err)
        except WaitTimeout:
            if view is not None:
                view.end()  # end the half answer's line before the error
            raise
    finally:
        follower.close()
    if json and replies:
        out.write(pretty_json(replies[0]) + "\n")
    return outcome(replies, ok, lookup, json=json, told=told)


def _inactive(agent: Agent) -> RpcError:
    name = agent.get("name")
    return RpcError(CONFLICT, f"agent {name} is inactive, so it will not answer "
                              f"(`wizctl agent activate {name}`)", {"status": "inactive"})
