"""What the rest of wizd knows of the cluster: this node's id and the nodes
as of the last lease renewal (daemon.status reads it, never a table)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from ..config import Config
from ..objects import Node
from ..version import VERSION


def node_id(config: Config) -> str:
    """``config.node``, else ``<host>:<socket>``: one wizd per socket on a
    machine (the socket lock), so the default is unique, and the same after a
    restart (which then takes back its own jobs at once)."""
    return config.node or f"{socket.gethostname()}:{config.socket}"


def this_node(config: Config, started_ms: int) -> Node:
    """This wizd as a node, from what it knows of itself (SQLite's one node)."""
    return {"id": node_id(config), "host": socket.gethostname(), "pid": os.getpid(),
            "socket": str(config.socket), "version": VERSION, "started_at": started_ms,
            "seen_at": started_ms, "lease_until": started_ms, "alive": True}


@dataclass
class ClusterView:
    node_id: str = ""
    nodes: list[Node] = field(default_factory=list)
    # On PostgreSQL, set by the bus: ask node (first argument) to cancel the
    # job (second) it runs.
    request_cancel: Callable[[str, str], None] | None = None

    @property
    def others_alive(self) -> bool:
        """Another node was alive at the last lease renewal."""
        return any(n["alive"] and n["id"] != self.node_id for n in self.nodes)
