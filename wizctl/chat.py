"""``wizctl chat AGENT``: an interactive DM with one agent.

Uses the DM between the local user and exactly that agent (created on first
use), shows its last messages (on a terminal), then reads lines (with readline history kept in
``$XDG_STATE_HOME/wiz/chat_history``) and prints each reply as it streams.
Ctrl-D leaves (exit 0).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from .client import Client
from .follow import Follower, newest_seq, notice
from .render import View, clean
from .replies import await_replies
from .resolve import Lookup

HISTORY_LINES = 10


def history_file() -> Path:
    """Where chat input history lives: ``$XDG_STATE_HOME/wiz/chat_history``
    (``~/.local/state/wiz/chat_history`` without XDG_STATE_HOME)."""
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(Path.home(), ".local", "state")
    return Path(state) / "wiz" / "chat_history"


def _readline_history(path: Path) -> Callable[[], None]:
    """Load input history from ``path``; returns the function that saves it.
    Without a readline module this is a no-op."""
    try:
        import readline
    except ImportError:  # some Pythons are built without it
        return lambda: None
    try:
        readline.read_history_file(path)
    except OSError:
        pass  # first run, or unreadable: start empty
    readline.set_history_length(1000)

    def save() -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            readline.write_history_file(path)
            os.chmod(path, 0o600)  # what you told an agent is nobody else's business
        except OSError:
            pass
    return save


def open_dm(follower: Follower, lookup: Lookup, agent: dict[str, Any]) -> dict[str, Any]:
    """The DM with exactly the local user and ``agent``, created if there is none."""
    conv = lookup.dm_with(agent)
    if conv is None:
        conv = follower.call("dm.create", participants=[agent["id"]])
        lookup.forget("dms")
    return conv


def run(connect: Callable[[], Client], agent_ref: str, *, json: bool = False,
        stdin: TextIO | None = None, out: TextIO | None = None,
        err: TextIO | None = None) -> int:
    """Chat until end of input; returns 0. Raises ResolveError / WizClientError."""
    stdin, out, err = stdin or sys.stdin, out or sys.stdout, err or sys.stderr
    interactive = stdin.isatty() and out.isatty()

    views: list[View] = []
    follower = Follower(connect, client=connect(), on_reconnect=notice(err, views))
    lookup = Lookup(follower.call)
    try:
        agent = lookup.agent(agent_ref)
        conv = open_dm(follower, lookup, agent)
        view = View(lookup, out=out, json=json)
        views.append(view)
        follower.conversation_id = conv["id"]
        if interactive:  # some context for a person; a script wants only the replies
            recent = follower.call("message.list", conversation_id=conv["id"],
                                   limit=HISTORY_LINES)["messages"]
            for msg in recent:
                view.message(msg)
        follower.last_seq = newest_seq(follower.call, conv["id"])
        follower.start()
        save = _readline_history(history_file()) if interactive else (lambda: None)
        prompt = f"{clean(lookup.me().get('name') or 'you')}> " if interactive else ""
        if interactive:
            err.write(f"chatting with {agent.get('name')} (Ctrl-D to leave)\n")
        try:
            while True:
                line = _read_line(stdin, prompt, interactive)
                if line is None:
                    if interactive:
                        out.write("\n")
                    return 0
                if not line.strip():
                    continue
                result = follower.call("message.send", conversation_id=conv["id"], content=line)
                replies, _ = await_replies(follower, lookup, None if json else view, result,
                                           timeout=None, err=err, others=True)
                if json:  # one line per reply, shaped like tail --json
                    for msg in replies:
                        view.message(msg)
        finally:
            view.close()
            save()
    finally:
        follower.close()


def _read_line(stdin: TextIO, prompt: str, interactive: bool) -> str | None:
    """One line of input without its newline; None at end of input (Ctrl-D)."""
    if interactive:
        try:
            return input(prompt)  # input() is what uses readline
        except EOFError:
            return None
    line = stdin.readline()
    return line.rstrip("\n") if line else None
