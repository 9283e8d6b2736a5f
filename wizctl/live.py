"""A live area: text at the bottom of a terminal, replaced in place as it
changes (a reply that streams in, piece by piece).

Why not rich's ``Live``: it redraws the whole area on every change where this
one appends what was added, it keeps the top of a text taller than the screen
where a growing reply needs its end, it runs a refresh thread, and it costs
``tail -f`` and ``send --wait`` a measurable start-up (bench/README.md).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import TextIO

from .text import width


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


def terminal_size() -> tuple[int, int]:
    """(columns, lines) of the terminal; COLUMNS and LINES win, 80x24 if unknown."""
    size = shutil.get_terminal_size((80, 24))
    return size.columns, size.lines


class LiveArea:
    """Text at the bottom of a terminal that can be replaced in place.

    ``show(text)`` makes the area display ``text`` (appending when it only grew,
    redrawing otherwise); ``clear()`` erases it so that settled output can be
    printed where it was. Text longer than the screen shows its end.
    ``size()`` gives the terminal's (columns, lines).
    """

    def __init__(self, out: TextIO, size: Callable[[], tuple[int, int]] = terminal_size) -> None:
        self.out = out
        self.size = size
        self.shown = ""

    def show(self, text: str) -> None:
        cols, lines = self.size()
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
        cols, _ = self.size()
        rows = rows_needed(self.shown, cols)
        # A line that exactly fills the width leaves the cursor on its last
        # column (pending wrap), so ceil(width/cols) rows is right.
        up = f"\x1b[{rows - 1}A" if rows > 1 else ""
        self.out.write(f"\r{up}\x1b[J")
        self.out.flush()
        self.shown = ""
