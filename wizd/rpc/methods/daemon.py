"""daemon.status and rpc.discover."""

from __future__ import annotations

import os
from typing import Any

import anyio

from ...store import jobs as job_queries
from ...version import VERSION
from ..openrpc import document
from ..registry import registry
from ..server import Call


@registry.method("daemon.status")
async def daemon_status(call: Call) -> dict[str, Any]:
    """The daemon's version, pid, uptime, paths, queue counts and effective settings."""
    rt = call.rt
    counts = await rt.db.read(job_queries.count_by_status)
    return {
        "version": VERSION,
        "pid": os.getpid(),
        "uptime_ms": int((anyio.current_time() - rt.started_at) * 1000),
        "db": str(rt.config.db),
        "socket": str(rt.config.socket),
        "queue": counts,
        "subscriptions": len(rt.hub),
        "config": rt.config.public(),
    }


@registry.method("rpc.discover")
async def rpc_discover(call: Call) -> dict[str, Any]:
    """The OpenRPC document of every method, generated from their signatures."""
    return document(registry, VERSION)
