"""daemon.status and rpc.discover."""

from __future__ import annotations

import os
from typing import Any

import anyio
from sqlalchemy import Connection

from ...services import messages
from ...store import jobs as job_queries
from ...version import VERSION
from ..dispatch import RawJSON
from ..openrpc import discover_result
from ..registry import registry
from ..server import Call


def _counts_and_last_seq(conn: Connection) -> tuple[dict[str, int], int]:
    return job_queries.count_by_status(conn), messages.max_seq(conn)


@registry.method("daemon.status")
async def daemon_status(call: Call) -> dict[str, Any]:
    """The daemon's version, pid, uptime, paths, queue counts and effective settings."""
    rt = call.rt
    counts, last_seq = await rt.db.read(_counts_and_last_seq)
    return {
        "version": VERSION,
        "pid": os.getpid(),
        "uptime_ms": int((anyio.current_time() - rt.started_at) * 1000),
        "db": str(rt.config.db),
        "socket": str(rt.config.socket),
        "queue": counts,
        # The newest stored message: where a client following everything resumes.
        "last_seq": last_seq,
        "subscriptions": len(rt.hub),
        "config": rt.config.public(),
    }


@registry.method("rpc.discover")
async def rpc_discover(call: Call) -> RawJSON:
    """The OpenRPC document of every method, generated from their signatures."""
    return discover_result(registry, VERSION)
