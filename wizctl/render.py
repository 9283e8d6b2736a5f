"""Turning daemon objects into text for people: tables, message lines, colour,
and streaming output (``View``: notifications as they come, replies growing
in a ``LiveArea`` on a terminal).

The formatting functions are pure; ``LiveArea`` and ``View`` write to the
stream they are given. Colour is a flag the caller decides once with
``use_color``: on when the stream is a terminal and ``NO_COLOR`` is unset.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TextIO

if TYPE_CHECKING:
    from .client import Notification


class Names(Protocol):
    """What a View needs to name things (``resolve.Lookup`` is one)."""

    def user_name(self, user_id: Any) -> str: ...
    def agent_name(self, agent_id: Any) -> str: ...
    def label_for_id(self, conversation_id: Any) -> str: ...

_CODES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33",
          "blue": "34", "magenta": "35", "cyan": "36"}

STATUS_COLORS = {
    # agents
    "active": "green", "busy": "yellow", "inactive": "dim",
    # jobs
    "completed": "green", "failed": "red", "waiting": "yellow", "delayed": "yellow",
    "paused": "dim",
}


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal that understands cursor movement."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and os.environ.get("TERM") != "dumb"


def use_color(stream: TextIO) -> bool:
    """Whether to colour what goes to ``stream``: a terminal, and NO_COLOR unset."""
    return is_terminal(stream) and not os.environ.get("NO_COLOR")


def paint(text: str, style: str | None, color: bool) -> str:
    """``text`` wrapped in the ANSI codes of ``style`` ("red", "bold red" ...) if ``color``."""
    if not color or not style or not text:
        return text
    codes = ";".join(_CODES[s] for s in style.split() if s in _CODES)
    return f"\x1b[{codes}m{text}\x1b[0m" if codes else text


# Control characters other than newline and tab: a model's output must not
# be able to move the cursor or retitle the terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def clean(text: Any) -> str:
    """``text`` as a string without terminal escapes or control characters (tabs
    become spaces; newlines stay)."""
    s = "" if text is None else str(text)
    return _CONTROL.sub("", _ANSI.sub("", s)).replace("\t", "    ")


def one_line(text: Any, limit: int | None = None) -> str:
    """``clean(text)`` on one line, cut to ``limit`` characters with an ellipsis."""
    s = " ".join(clean(text).split())
    if limit is not None and len(s) > limit:
        s = s[: max(limit - 1, 0)] + "…"
    return s


def width(text: str) -> int:
    """Columns ``text`` takes on a terminal (wide East Asian characters count two,
    combining marks none, ANSI colour codes none)."""
    text = _ANSI.sub("", text)
    if text.isascii():
        return len(text)
    cols = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        cols += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return cols


def clock(ms: Any) -> str:
    """``HH:MM:SS`` in local time for a timestamp in ms (now if missing)."""
    seconds = ms / 1000 if isinstance(ms, int | float) else time.time()
    return time.strftime("%H:%M:%S", time.localtime(seconds))


def when(ms: Any) -> str:
    """``YYYY-MM-DD HH:MM`` in local time, or "-" if missing."""
    if not isinstance(ms, int | float):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ms / 1000))


def short_id(value: Any, n: int = 8) -> str:
    """The first ``n`` characters of an id: enough to name it as a prefix."""
    return str(value)[:n] if value is not None else "-"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, color: bool = False,
          styles: Callable[[int, Any], str | None] | None = None) -> str:
    """Rows as aligned columns under a header; cells are made one-line.

    ``styles(column, value)`` may give a style per cell (used only with colour).
    Returns the text without a final newline; "(none)" for no rows.
    """
    cells = [[one_line(v if v is not None else "-") for v in row] for row in rows]
    if not cells:
        return "(none)"
    widths = [width(h) for h in headers]
    for row in cells:
        for i, v in enumerate(row):
            widths[i] = max(widths[i], width(v))
    lines = ["  ".join(paint(h.upper().ljust(widths[i]), "bold", color)
                       for i, h in enumerate(headers)).rstrip()]
    for row in cells:
        parts = []
        for i, v in enumerate(row):
            padded = v + " " * (widths[i] - width(v))
            style = styles(i, v) if styles else None
            parts.append(paint(padded, style, color) if style else padded)
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def fields(pairs: Iterable[tuple[str, Any]], *, color: bool = False) -> str:
    """``key: value`` lines with aligned values; multi-line values are indented."""
    items = [(k, "-" if v is None else clean(v)) for k, v in pairs]
    pad = max((len(k) for k, _ in items), default=0) + 1
    out = []
    for key, value in items:
        head = paint(f"{key}:".ljust(pad), "bold", color)
        out.append(f"{head} {indent(value, pad + 1)}")
    return "\n".join(out)


def indent(text: str, n: int) -> str:
    """Every line of ``text`` after the first indented by ``n`` spaces."""
    return text.replace("\n", "\n" + " " * n)


def message_line(msg: dict[str, Any], author: str, *, color: bool = False,
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


def dump_json(obj: Any) -> str:
    """Compact one-line JSON, UTF-8 kept as is (for ``--json`` and JSON lines)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def pretty_json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=2)


def rows_needed(text: str, cols: int) -> int:
    """Terminal rows ``text`` occupies when written from column 0 on ``cols`` columns."""
    cols = max(cols, 1)
    return sum(max(1, -(-width(line) // cols)) for line in text.split("\n"))


def fit(text: str, cols: int, max_rows: int) -> str:
    """The end of ``text`` that fits in ``max_rows`` rows (cut lines start with "…")."""
    if rows_needed(text, cols) <= max_rows:
        return text
    kept: list[str] = []
    budget = max_rows
    for line in reversed(text.split("\n")):
        need = rows_needed(line, cols)
        if need <= budget:
            kept.append(line)
            budget -= need
            continue
        if budget > 0:
            room = budget * cols - 1
            tail = line
            while tail and width(tail) > room:
                tail = tail[1:]
            kept.append("…" + tail)
        break
    return "\n".join(reversed(kept))


class LiveArea:
    """Text at the bottom of a terminal that can be replaced in place.

    ``show(text)`` makes the area display ``text`` (appending when it only grew,
    redrawing otherwise); ``clear()`` erases it so that settled output can be
    printed where it was. Text longer than the screen shows its end.
    """

    def __init__(self, out: TextIO, size: Callable[[], tuple[int, int]] | None = None) -> None:
        self.out = out
        self._size = size or (lambda: tuple(shutil.get_terminal_size((80, 24))))  # type: ignore[return-value]
        self.shown = ""

    def show(self, text: str) -> None:
        cols, lines = self._size()
        text = fit(text, cols, max(lines - 1, 1))
        if text.startswith(self.shown):
            self.out.write(text[len(self.shown):])
        else:
            self.clear()
            self.out.write(text)
        self.shown = text
        self.out.flush()

    def clear(self) -> None:
        if not self.shown:
            return
        cols, _ = self._size()
        rows = rows_needed(self.shown, cols)
        # A line that exactly fills the width leaves the cursor on its last
        # column (pending wrap), so ceil(width/cols) rows is right.
        up = f"\x1b[{rows - 1}A" if rows > 1 else ""
        self.out.write(f"\r{up}\x1b[J")
        self.out.flush()
        self.shown = ""


@dataclass
class _Stream:
    conversation_id: Any
    author_id: Any
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
        self.streams: dict[Any, _Stream] = {}

    # -- entry points ------------------------------------------------------
    def message(self, msg: dict[str, Any]) -> None:
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

    def settle(self, msg: dict[str, Any], *, redraw: bool = True) -> None:
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
            self.message(p.get("message") or {})
        elif note.method == "message.delta":
            self.delta(p)
        elif self.everything:
            self._line(self._event_line(note))

    def delta(self, p: dict[str, Any]) -> None:
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
            job = p.get("job") or {}
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
