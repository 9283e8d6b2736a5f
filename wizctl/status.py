"""What ``wizctl status`` prints for a person (typer-free: the fast path uses it)."""

from __future__ import annotations

from . import text
from .objects import DaemonStatus, Node


def duration(ms: object) -> str:
    """``ms`` milliseconds as ``1d 2h 3m 4s`` (leading zero units left out); ``-`` if
    not a number."""
    if not isinstance(ms, int | float):
        return "-"
    s = int(ms // 1000)
    d, h, m = s // 86400, s // 3600 % 24, s // 60 % 60
    parts = [f"{d}d"] * bool(d) + [f"{h}h"] * bool(h) + [f"{m}m"] * bool(m) + [f"{s % 60}s"]
    return " ".join(parts)


def describe(r: DaemonStatus, *, color: bool) -> str:
    """``daemon.status``'s result as aligned ``key: value`` lines."""
    queue = r.get("queue") or {}
    lines: list[tuple[str, object]] = [
        ("wizd", f"{r.get('version')} (pid {r.get('pid')}, up {duration(r.get('uptime_ms'))})"),
        ("socket", r.get("socket")), ("database", r.get("db")),
        ("queue", ", ".join(f"{k} {v}" for k, v in queue.items()) or "-"),
    ]
    nodes = r.get("nodes") or []
    if len(nodes) > 1:  # several wizd on one PostgreSQL (docs/scale-out.md)
        lines.append(("nodes", ", ".join(_node(n, r.get("node")) for n in nodes)))
    return text.fields(lines, color=color)


def _node(n: Node, this: object) -> str:
    notes = ["this one"] * (n.get("id") == this) + ["lease lapsed"] * (not n.get("alive"))
    return str(n.get("id")) + (f" ({', '.join(notes)})" if notes else "")
