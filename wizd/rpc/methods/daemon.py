"""daemon.status and rpc.discover."""

from __future__ import annotations

import functools
import os

import anyio

from ...config import Config
from ...objects import DaemonStatus, Settings
from ...version import VERSION
from ..openrpc import Discovered, discover_result
from ..registry import registry
from ..server import Call


@functools.lru_cache(maxsize=1)
def _settings(config: Config) -> Settings:
    # The config is frozen: its public form is built once, not on every call.
    return config.public()


@registry.method("daemon.status")
async def daemon_status(call: Call) -> DaemonStatus:
    """The daemon's version, pid, uptime, paths, queue counts and effective settings."""
    rt = call.rt
    # From memory (maintained at commit): no table is read.
    return {
        "version": VERSION,
        "pid": os.getpid(),
        "uptime_ms": int((anyio.current_time() - rt.started_at) * 1000),
        "db": rt.config.db_shown,
        "socket": str(rt.config.socket),
        "queue": rt.tallies.queue(),
        # The newest stored message: where a client following everything resumes.
        "last_seq": rt.tallies.last_seq,
        "subscriptions": len(rt.hub),
        "config": _settings(rt.config),
    }


@registry.method("rpc.discover")
async def rpc_discover(call: Call) -> Discovered:
    """The OpenRPC document of every method, generated from their signatures."""
    return discover_result(registry, VERSION)
