"""``wizctl chat AGENT``: a conversation with an agent, in its DM with you.

On a terminal the chat is live (``wizctl.chat_tty``): messages and replies
appear above the prompt as they happen, while you type. With input or output
that is not a terminal (a script, ``--json``) it is line by line: each line
read is sent and its replies printed before the next is read.

Either way a line that starts with ``/`` is a command (``COMMANDS``); ``//``
sends a line that starts with ``/``. The DM used is the open DM of the local
user with exactly that agent, made on first use (``dm.create`` with ``reuse``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO, cast

from .client import Client
from .follow import Follower, newest_seq, notice
from .objects import Agent, Message, MessageList, OpenedDm
from .replies import await_replies, open_dm, send_message
from .resolve import Lookup
from .text import clean
from .view import View

HISTORY_LINES = 10

COMMANDS = """\
/agent NAME   talk with another agent (in your DM with it)
/history [N]  show the last N messages here (default 10)
/help         this list
/quit         leave (Ctrl-D too)
//text        send a line that starts with /"""


def history_file() -> Path:
    """Where chat input history lives: ``$XDG_STATE_HOME/wiz/chat_history``
    (``~/.local/state/wiz/chat_history`` without XDG_STATE_HOME)."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return Path(state) / "wiz" / "chat_history"


@dataclass(frozen=True)
class Command:
    """A parsed input line: ``name`` is "send", "agent", "history", "help", "quit",
    or "bad" (then ``arg`` says what is wrong)."""

    name: str
    arg: str = ""
    count: int = HISTORY_LINES


def parse(line: str) -> Command | None:
    """What ``line`` asks for; None for a blank line."""
    if not line.strip():
        return None
    if not line.startswith("/") or line.startswith("//"):
        return Command("send", line[1:] if line.startswith("//") else line)
    word, _, rest = line[1:].strip().partition(" ")
    rest = rest.strip()
    if word in ("quit", "exit", "q"):
        return Command("quit")
    if word in ("help", "?"):
        return Command("help")
    if word == "agent":
        return Command("agent", rest) if rest else Command("bad", "/agent needs a name")
    if word == "history":
        if not rest:
            return Command("history")
        if rest.isdigit() and int(rest) > 0:
            return Command("history", count=min(int(rest), 1000))
        return Command("bad", "/history takes a number of messages, e.g. /history 20")
    return Command("bad", f"unknown command /{word} (/help lists them; // sends a '/')")


class Session:
    """What the chat talks to: an agent and its DM, resolved through ``lookup``."""

    def __init__(self, lookup: Lookup) -> None:
        self.lookup = lookup
        self.agent: Agent | None = None
        self.conv: OpenedDm | None = None

    def switch(self, agent_ref: str) -> None:
        """Talk with ``agent_ref`` from now on (its DM made if needed). Raises ResolveError."""
        self.lookup.forget("agents")  # one created since we started
        agent = self.lookup.agent(agent_ref)
        self.conv = open_dm(self.lookup.call, agent)
        self.agent = agent
        self.lookup.forget("dms")

    @property
    def conversation_id(self) -> str:
        """The DM talked in (``switch`` first)."""
        assert self.conv is not None, "switch() first"
        return self.conv["id"]

    def recent(self, n: int) -> list[Message]:
        """The last ``n`` messages of the conversation."""
        listed = self.lookup.call("message.list", conversation_id=self.conversation_id, limit=n)
        return cast(MessageList, listed)["messages"]

    @property
    def name(self) -> str:
        return clean(self.agent["name"] if self.agent else "")


def run(connect: Callable[[], Client], agent_ref: str, *, json: bool = False,
        stdin: TextIO | None = None, out: TextIO | None = None,
        err: TextIO | None = None) -> int:
    """Chat until /quit or end of input; returns 0. Raises ResolveError for an
    unknown agent, WizClientError when wizd cannot be reached."""
    stdin, out, err = stdin or sys.stdin, out or sys.stdout, err or sys.stderr
    if stdin.isatty() and out.isatty() and not json:
        from . import chat_tty  # prompt_toolkit is loaded only here

        return chat_tty.run(connect, agent_ref, history=history_file())
    return run_lines(connect, agent_ref, json=json, stdin=stdin, out=out, err=err)


def run_lines(connect: Callable[[], Client], agent_ref: str, *, json: bool, stdin: TextIO,
              out: TextIO, err: TextIO) -> int:
    """The chat line by line: send each line, print its replies (as JSON lines
    with ``json``), then read the next. Returns 0 at /quit or end of input."""
    views: list[View] = []
    follower = Follower(connect, client=connect(), on_reconnect=notice(err, views))
    session = Session(Lookup(follower.call))
    view = View(session.lookup, out=out, json=json)
    views.append(view)
    try:
        session.switch(agent_ref)
        follower.conversation_id = session.conversation_id
        follower.last_seq = newest_seq(follower.call, session.conversation_id)
        follower.start()
        for line in stdin:
            cmd = parse(line.rstrip("\r\n"))
            if cmd is None:
                continue
            if cmd.name == "quit":
                break
            if cmd.name == "send":
                result = send_message(follower.call, session.conversation_id, cmd.arg)
                replies, _ = await_replies(follower, session.lookup, None if json else view,
                                           result, timeout=None, err=err, others=True)
                if json:  # one line per reply, shaped like tail --json
                    for msg in replies:
                        view.message(msg)
            elif cmd.name == "agent":
                session.switch(cmd.arg)
                # A new subscription, for that DM, from its newest message on.
                follower.call("events.unsubscribe", subscription=follower.subscription)
                follower.conversation_id = session.conversation_id
                follower.last_seq = newest_seq(follower.call, session.conversation_id)
                follower.start()
            elif cmd.name == "history":
                for msg in session.recent(cmd.count):
                    view.message(msg)
            elif cmd.name == "help":
                err.write(COMMANDS + "\n")
            else:
                err.write(f"wizctl: {cmd.arg}\n")
    finally:
        view.close()
        follower.close()
    return 0
