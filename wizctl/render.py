"""Turning daemon objects into text for people: tables, message lines, colour,
and the live area where a reply streams on a terminal.

Pure functions of their inputs (no I/O) except ``LiveArea``, which writes to
the stream it is given. Colour is a flag the caller decides once with
``use_color``: on when the stream is a terminal and ``NO_COLOR`` is unset.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TextIO

_CODES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33",
          "blue": "34", "magenta": "35", "cyan": "36"}

STATUS_COLORS = {
    # agents
    "active": "green", "busy": "yellow", "inactive": "dim",
    # jobs
    "completed": "green", "failed": "red", "waiting": "yellow", "delayed": "yellow",
    "paused": "dim",
}


def use_color(stream: TextIO) -> bool:
    """Whether to colour what goes to ``stream``: a terminal, NO_COLOR unset, TERM not dumb."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


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
