"""daemon.status and rpc.discover."""

from __future__ import annotations

import os
from typing import Annotated

import anyio

from ...objects import DaemonStatus, Node
from ...services.runtime import Runtime
from ...version import VERSION
from ..dispatch import RawJSON, encode
from ..openrpc import Discovered, discover_result
from ..registry import registry
from ..server import Call


def _json(value: object) -> bytes:
    return encode(value)[:-1]  # without the line's "\n"


class _Fixed:
    """What ``daemon.status`` says that cannot change while the daemon runs (its
    version, pid, paths, settings and node id), encoded once: most of the result's bytes,
    and a client polling the status pays only for the live figures."""

    def __init__(self, rt: Runtime) -> None:
        self.runtime = rt
        self.head = (b'{"version":' + _json(VERSION) + b',"pid":' + _json(os.getpid())
                     + b',"uptime_ms":')
        self.paths = (b',"db":' + _json(rt.config.db_shown) + b',"socket":'
                      + _json(str(rt.config.socket)) + b',"queue":')
        self.nodes: list[Node] | None = None
        self.nodes_json = b"[]"
        self.config = b',"config":' + _json(rt.config.public()) + b',"node":' + _json(
            rt.cluster.node_id) + b',"nodes":'


_fixed: _Fixed | None = None


@registry.method("daemon.status")
async def daemon_status(call: Call) -> Annotated[RawJSON, DaemonStatus]:
    """The daemon's version, pid, uptime, paths, queue counts and effective settings."""
    global _fixed
    rt = call.rt
    if _fixed is None or _fixed.runtime is not rt:  # one runtime per process, but tests
        _fixed = _Fixed(rt)
    nodes = rt.cluster.nodes
    if nodes is not _fixed.nodes:  # a new list at each lease renewal
        _fixed.nodes, _fixed.nodes_json = nodes, _json(nodes)
    # The live figures from memory (maintained at commit): no table is read.
    uptime_ms = int((anyio.current_time() - rt.started_at) * 1000)
    return RawJSON(b"".join((
        _fixed.head, str(uptime_ms).encode(), _fixed.paths, _json(rt.tallies.queue()),
        # The newest stored message: where a client following everything resumes.
        b',"last_seq":', str(rt.tallies.last_seq).encode(),
        b',"subscriptions":', str(len(rt.hub)).encode(), _fixed.config,
        # As of the last lease renewal (wizd.cluster).
        _fixed.nodes_json, b"}")))


@registry.method("rpc.discover")
async def rpc_discover(call: Call) -> Discovered:
    """The OpenRPC document of every method, generated from their signatures."""
    return discover_result(registry, VERSION)
