"""Text for people: terminal-safe strings, colour, times, ids, ``key: value``
fields and JSON.

It imports the standard library only, because ``wizctl status``'s fast path
(``wizctl.quick``) prints with it; ``width`` loads rich's cell widths the
first time it meets text that is not ASCII. Tables (``wizctl.table``), the
live area (``wizctl.live``) and message lines (``wizctl.view``) build on it.

Colour is a flag the caller decides once with ``use_color``: on when the
stream is a terminal and ``NO_COLOR`` is unset.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterable
from typing import TextIO

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
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def clean(text: object) -> str:
    """``text`` as a string without terminal escapes or control characters (tabs
    become spaces; newlines stay)."""
    s = "" if text is None else str(text)
    return _CONTROL.sub("", ANSI.sub("", s)).replace("\t", "    ")


def one_line(text: object, limit: int | None = None) -> str:
    """``clean(text)`` on one line, cut to ``limit`` characters with an ellipsis."""
    s = " ".join(clean(text).split())
    if limit is not None and len(s) > limit:
        s = s[: max(limit - 1, 0)] + "…"
    return s


def width(text: str) -> int:
    """Columns ``text`` takes on a terminal: wide East Asian characters count two,
    combining marks and ANSI colour codes none."""
    text = ANSI.sub("", text)
    if text.isascii():
        return len(text)  # one column a character: no need to load rich's tables
    from rich.cells import cell_len

    return cell_len(text)


def indent(text: str, n: int) -> str:
    """Every line of ``text`` after the first indented by ``n`` spaces."""
    return text.replace("\n", "\n" + " " * n)


def clock(ms: object) -> str:
    """``HH:MM:SS`` in local time for a timestamp in ms (now if missing)."""
    seconds = ms / 1000 if isinstance(ms, int | float) else time.time()
    return time.strftime("%H:%M:%S", time.localtime(seconds))


def when(ms: object) -> str:
    """``YYYY-MM-DD HH:MM`` in local time, or "-" if missing."""
    if not isinstance(ms, int | float):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ms / 1000))


def short_id(value: object, n: int = 8) -> str:
    """The first ``n`` characters of an id: enough to name it as a prefix."""
    return str(value)[:n] if value is not None else "-"


def fields(pairs: Iterable[tuple[str, object]], *, color: bool = False) -> str:
    """``key: value`` lines with aligned values; multi-line values are indented."""
    items = [(k, "-" if v is None else clean(v)) for k, v in pairs]
    pad = max((len(k) for k, _ in items), default=0) + 1
    out = []
    for key, value in items:
        head = paint(f"{key}:".ljust(pad), "bold", color)
        out.append(f"{head} {indent(value, pad + 1)}")
    return "\n".join(out)


def dump_json(obj: object) -> str:
    """Compact one-line JSON, UTF-8 kept as is (for ``--json`` and JSON lines)."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def pretty_json(obj: object) -> str:
    """Indented JSON, UTF-8 kept as is (a command's ``--json`` result)."""
    return json.dumps(obj, ensure_ascii=False, indent=2)
