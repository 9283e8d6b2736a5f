"""Messages and notifications as people read them: ``message_line``, and
``View``, which prints what a subscription hands out (``tail``, ``events``,
``send --wait``, ``chat`` line by line), streaming replies in a
``live.LiveArea`` on a terminal.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TextIO, cast

from .live import LiveArea
from .objects import Job, Message, MessageDelta
from .text import (
    STATUS_COLORS,
    clean,
    clock,
    dump_json,
    indent,
    is_terminal,
    one_line,
    paint,
    short_id,
    use_color,
    width,
)

if TYPE_CHECKING:
    from .client import Notification


class Names(Protocol):
    """What a View needs to name things (``resolve.Lookup`` is one)."""

    def user_name(self, user_id: object) -> str: ...
    def agent_name(self, agent_id: object) -> str: ...
    def label_for_id(self, conversation_id: object) -> str: ...


def message_line(msg: Mapping[str, object], author: str, *, color: bool = False,
                 where: str | None = None) -> str:
    """``HH:MM:SS name: content`` (``where`` goes before the name, e.g. ``#general``);
    continuation lines are aligned under the content; errors are marked."""
    stamp = clock(msg.get("created_at"))
    place = f"{where} " if where else ""
    prefix = f"{stamp} {place}{author}: "
    content = clean(msg.get("content", ""))
    if msg.get("kind") == "error":
        body = paint(f"error: {indent(content, width(prefix) + 7)}", "red", color)
    else:
        body = indent(content, width(prefix))
    return (paint(stamp, "dim", color) + " " + place
            + paint(author, "bold", color) + ": " + body)


TOOL_EVENTS = ("tool.started", "tool.finished", "tool.approval_requested")


def tool_line(note: Notification, *, color: bool = False) -> str:
    """One dim line for ``tool.started`` (``→ fs.read_file {"path": ...}``) or
    ``tool.finished`` (``← fs.read_file 12 ms: result``); a yellow one for
    ``tool.approval_requested``, saying how to answer it."""
    p = note.params
    name = str(p.get("name"))
    if note.method == "tool.started":
        text = f"  → {name} {one_line(dump_json(p.get('arguments') or {}), 120)}"
    elif note.method == "tool.approval_requested":
        job = short_id(p.get("job_id"))
        text = (f"  ? {name} {one_line(dump_json(p.get('arguments') or {}), 120)} waits for "
                f"approval: wizctl approve {job} (or deny {job})")
        return paint(text, "yellow", color)
    else:
        outcome = p.get("outcome")
        mark = "" if outcome == "ok" else f" [{outcome}]"
        text = (f"  ← {name} {p.get('duration_ms', 0)} ms{mark}: "
                f"{one_line(str(p.get('result') or ''), 120)}")
    return paint(text, "dim", color)


@dataclass
class _Stream:
    """A reply being streamed: what its pieces said so far."""

    conversation_id: str | None
    author_id: str | None
    text: str = ""
    index: int = -1
    started_ms: int = 0


class View:
    """Prints notifications for a person or a script.

    Modes: ``json`` (one JSON object per line for every notification), ``live``
    (a terminal: deltas stream into a LiveArea that the stored message then
    replaces), or plain (only stored messages, one rendered line each).
    ``where``: also show which conversation each message is in (``events``).
    ``everything``: also print agent/job events (``events``).
    ``bare``: messages are their content alone (``send --wait`` with one reply).
    """

    def __init__(self, lookup: Names, *, out: TextIO | None = None, json: bool = False,
                 live: bool | None = None, color: bool | None = None, where: bool = False,
                 everything: bool = False, bare: bool = False) -> None:
        self.out = out or sys.stdout
        self.lookup = lookup
        self.json = json
        # Streaming in place needs a terminal, not colour: NO_COLOR keeps it.
        self.live = (not json and is_terminal(self.out)) if live is None else live
        self.color = use_color(self.out) if color is None else color
        self.where = where
        self.everything = everything
        self.bare = bare
        self.area = LiveArea(self.out) if self.live else None
        self.streams: dict[str | None, _Stream] = {}  # by job id

    # -- entry points ------------------------------------------------------
    def message(self, msg: Message) -> None:
        """Print one stored message (history or live), settling its stream."""
        if self.json:
            self._line(dump_json({"method": "message.created", "params": {"message": msg}}))
            return
        self.settle(msg, redraw=False)  # _line redraws what still streams
        if self.bare:
            self._line(clean(msg.get("content", "")))
            return
        where = self.lookup.label_for_id(msg.get("conversation_id")) if self.where else None
        author = self.lookup.user_name(msg.get("author_id"))
        self._line(message_line(msg, author, color=self.color, where=where))

    def settle(self, msg: Message, *, redraw: bool = True) -> None:
        """Forget the stream that produced ``msg`` (the oldest of its author there)."""
        for key, st in list(self.streams.items()):
            if (st.author_id == msg.get("author_id")
                    and st.conversation_id == msg.get("conversation_id")):
                del self.streams[key]
                if self.area is not None and redraw:
                    self.area.clear()
                    self._redraw()
                return

    def notification(self, note: Notification) -> None:
        """Print what ``note`` means in this mode."""
        if self.json:
            self._line(dump_json(note.to_json()))
            return
        p = note.params
        if note.method == "message.created":
            self.message(cast(Message, p.get("message") or {}))
        elif note.method == "message.delta":
            self.delta(cast(MessageDelta, p))
        elif note.method in TOOL_EVENTS:
            self.tool(note)
        elif self.everything:
            self._line(self._event_line(note))

    def delta(self, p: MessageDelta) -> None:
        """Add a ``message.delta`` piece to its job's stream and show it (live mode;
        ``everything`` mode when not live prints each piece as a line)."""
        key = p.get("job_id")
        stream = self.streams.get(key)
        index = p.get("index")
        if stream is None or index == 0:
            # index 0 again: the job is being retried; its earlier pieces are void.
            stream = self.streams[key] = _Stream(p.get("conversation_id"), p.get("author_id"),
                                                 started_ms=int(time.time() * 1000))
        elif isinstance(index, int) and index <= stream.index:
            return  # a piece we already have
        stream.text += str(p.get("delta") or "")
        stream.index = index if isinstance(index, int) else stream.index + 1
        if self.area is not None:
            self._redraw()
        elif self.everything:
            who = self.lookup.user_name(p.get("author_id"))
            self._line(f"{clock(None)} {who} … {one_line(p.get('delta'))}")

    def tool(self, note: Notification) -> None:
        """One dim line for a ``tool.started`` or ``tool.finished``."""
        if self.bare:  # stdout is the answer alone (scripts): the calls go beside it
            self.aside(sys.stderr, tool_line(note, color=use_color(sys.stderr)))
        else:
            self._line(tool_line(note, color=self.color))

    def close(self) -> None:
        """Erase whatever is still streaming (it was never stored)."""
        if self.area is not None:
            self.area.clear()
        self.streams.clear()

    # -- output --------------------------------------------------------------
    def aside(self, stream: TextIO, text: str) -> None:
        """Write a line on another stream (stderr) without garbling a reply that is
        streaming on this terminal: clear the live area, write, redraw it."""
        if self.area is not None:
            self.area.clear()
            self.out.flush()
        stream.write(text + "\n")
        stream.flush()
        if self.area is not None:
            self._redraw()
            self.out.flush()

    def _line(self, text: str) -> None:
        if self.area is not None:
            self.area.clear()
        self.out.write(text + "\n")
        if self.area is not None:
            self._redraw()
        self.out.flush()

    def _redraw(self) -> None:
        assert self.area is not None
        parts = []
        for s in self.streams.values():
            if self.bare:
                parts.append(clean(s.text))
                continue
            msg = {"created_at": s.started_ms, "content": s.text}
            where = self.lookup.label_for_id(s.conversation_id) if self.where else None
            parts.append(message_line(msg, self.lookup.user_name(s.author_id), where=where))
        self.area.show("\n".join(parts))

    def _event_line(self, note: Notification) -> str:
        p = note.params
        stamp = paint(clock(None), "dim", self.color)
        if note.method == "agent.status":
            status = str(p.get("status"))
            shown = paint(status, STATUS_COLORS.get(status), self.color)
            return f"{stamp} agent {self.lookup.agent_name(p.get('agent_id'))} is {shown}"
        if note.method == "job.updated":
            job = cast(Job, p.get("job") or {})
            status = str(job.get("status"))
            text = (f"{stamp} job {short_id(job.get('id'))} {job.get('name', '')} "
                    + paint(status, STATUS_COLORS.get(status), self.color)
                    + f" (attempt {job.get('attempts', 0)}/{job.get('max_attempts', '?')})")
            if job.get("failure_reason"):
                text += f": {one_line(job['failure_reason'], 120)}"
            return text
        if note.method == "events.lagged":
            return f"{stamp} fell behind; resubscribed after seq {p.get('last_seq')}"
        params = {k: v for k, v in p.items() if k != "subscription"}
        return f"{stamp} {note.method} {one_line(dump_json(params), 200)}"
