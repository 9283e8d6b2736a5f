"""The tools one agent may call: its allow-list matched against the tools of
the registered MCP servers.

An allow-list holds ``server.tool`` patterns (``fnmatch``: ``git.*``,
``fs.read_file``, ``*.search``). A server's own marks, ``idempotent`` and
``confirm``, are patterns of its tool names (``*``: all of them).

OpenAI wants function names of letters, digits, ``_`` and ``-``; a tool is
offered to the model as ``server__tool`` (other characters become ``_``)
and found again through the toolset's map, never by parsing the name.
"""

from __future__ import annotations

import fnmatch
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import anyio

from ..errors import WizError
from ..llm.base import ToolSpec, function_name
from ..mcp import ServerSpec, ToolInfo
from ..services.mcp import spec_of
from ..services.runtime import Runtime
from ..store import mcp_servers as server_store
from ..store.mcp_servers import McpServerRow

log = logging.getLogger(__name__)

def allowed(patterns: Sequence[str], name: str) -> bool:
    """Whether ``server.tool`` ``name`` matches one of ``patterns``."""
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def marked(patterns: Sequence[str], tool: str) -> bool:
    """Whether tool ``tool`` (its name on its server) matches a mark's patterns."""
    return any(fnmatch.fnmatchcase(tool, p) for p in patterns)


def may_use_server(patterns: Sequence[str], server: str) -> bool:
    """Whether some pattern could match a tool of ``server``."""
    return any(fnmatch.fnmatchcase(server, p.split(".", 1)[0]) for p in patterns)


@dataclass(frozen=True)
class Tool:
    """One tool the agent may call."""

    name: str  # server.tool
    function: str  # as offered to the model
    server: ServerSpec
    tool: str  # its name on its server
    idempotent: bool
    confirm: bool
    spec: ToolSpec


@dataclass
class Toolset:
    """The agent's tools by function name, and the servers that failed to list theirs."""

    tools: dict[str, Tool] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)  # server -> why

    def specs(self) -> tuple[ToolSpec, ...]:
        return tuple(t.spec for t in self.tools.values())


def tools_of(row: McpServerRow, infos: list[ToolInfo], patterns: Sequence[str]) -> list[Tool]:
    """The tools of server ``row`` that ``patterns`` allow."""
    idempotent = json.loads(row["idempotent"])
    confirm = json.loads(row["confirm"])
    spec = spec_of(row)
    found = []
    for info in infos:
        name = f"{row['name']}.{info['name']}"
        if not allowed(patterns, name):
            continue
        function = function_name(row["name"], info["name"])
        found.append(Tool(
            name=name, function=function, server=spec, tool=info["name"],
            idempotent=marked(idempotent, info["name"]), confirm=marked(confirm, info["name"]),
            spec=ToolSpec(function, info["description"] or name,
                          info["input_schema"] or {"type": "object", "properties": {}})))
    return found


async def load(rt: Runtime, patterns: Sequence[str]) -> Toolset:
    """The tools ``patterns`` allow, asking each server that may hold one for
    its tools (starting it if need be). A server that fails is left out, with
    a warning: the model is offered the others."""
    toolset = Toolset()
    if not patterns:
        return toolset
    rows = [r for r in await rt.db.read(server_store.list_live)
            if may_use_server(patterns, r["name"])]

    async def one(row: McpServerRow) -> None:
        try:
            infos = await rt.mcp.tools(spec_of(row))
        except WizError as exc:
            log.warning("MCP server %s: its tools are not offered: %s", row["name"], exc.message)
            toolset.failures[row["name"]] = exc.message
            return
        for tool in tools_of(row, infos, patterns):
            other = toolset.tools.setdefault(tool.function, tool)
            if other is not tool:  # e.g. a-b.x and a_b.x, or names cut at 64 characters
                log.warning("MCP tools %s and %s have the same function name %s for the "
                            "model; only one is offered", other.name, tool.name, tool.function)

    async with anyio.create_task_group() as tg:
        for row in rows:
            tg.start_soon(one, row)
    toolset.tools = dict(sorted(toolset.tools.items()))  # the same order whoever answered first
    return toolset
