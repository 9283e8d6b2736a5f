"""``--since`` values: how far back (``30m``, ``2h``, ``2d``, ``1w``) or a local
date (``2026-11-30``, ``2026-11-30T14:00``), as a timestamp in ms."""

from __future__ import annotations

import re
import time
from datetime import datetime

__all__ = ["HELP", "parse_since"]

HELP = ("Only since then: an age (30m, 2h, 2d, 1w) or a local date "
        "(2026-11-30 or 2026-11-30T14:00).")

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_AGE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])\Z")


def parse_since(text: str, *, now: float | None = None) -> int:
    """Milliseconds since the epoch that ``text`` names; ``now`` (seconds) defaults
    to the wall clock. Raises ValueError with a sentence for a person."""
    value = text.strip().lower()
    age = _AGE.match(value)
    if age is not None:
        seconds = float(age[1]) * _UNITS[age[2]]
        return max(0, int(((time.time() if now is None else now) - seconds) * 1000))
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is neither an age (30m, 2h, 2d, 1w) nor a date "
                         "(2026-11-30)") from None
    return max(0, int(moment.timestamp() * 1000))  # naive: local time
