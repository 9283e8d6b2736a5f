"""mcp.*: MCP servers registered in wizd, and their tools.

The params of mcp.add are the fields of ``services.mcp.McpServerCreate``.
Results never carry a secret: ``env`` holds names of wizd's variables only."""

from __future__ import annotations

from typing import Any

from ...errors import InvalidInput
from ...objects import DeletedMcpServer, McpServer, McpServerList, McpToolList
from ...services import mcp
from ...services.mcp import McpServerCreate
from ..registry import registry
from ..server import Call
from .params import params_of


def _ref(id: str | None, name: str | None) -> str:
    if (id is None) == (name is None):
        raise InvalidInput("id", "give the server's id or its name (one of the two)")
    return id if id is not None else name  # type: ignore[return-value]


@registry.method("mcp.add")
@params_of(McpServerCreate)
async def mcp_add(call: Call, **fields: Any) -> McpServer:
    """Register an MCP server: ``command`` (the program, then its arguments) for a
    stdio server, or ``url`` for streamable HTTP. It starts on first use.

    ``env`` (stdio only) maps a variable of the server's environment to the
    name of a variable of wizd's, whose value it gets when it starts: secrets
    stay out of the database. Names: letters, digits, ``_`` and ``-``.
    """
    return await mcp.add(call.rt, McpServerCreate(**fields))


@registry.method("mcp.list")
async def mcp_list(call: Call) -> McpServerList:
    """Every MCP server, by name, with ``running`` true once wizd has started it."""
    return {"servers": await mcp.list_servers(call.rt)}


@registry.method("mcp.remove")
async def mcp_remove(call: Call, id: str | None = None, name: str | None = None
                     ) -> DeletedMcpServer:
    """Remove an MCP server (by ``id`` or ``name``); a running one is stopped."""
    return await mcp.remove(call.rt, _ref(id, name))


@registry.method("mcp.tools")
async def mcp_tools(call: Call, server: str | None = None, agent: str | None = None
                    ) -> McpToolList:
    """The tools of one MCP server (``server``: id or name) or of every one, as
    ``server.tool`` names; servers not running are started. With ``agent`` (id
    or name): only the tools that agent may call.

    With ``server``, its failure is the error (it cannot start, or answers
    nothing in time). Without, each server that fails is in ``failures``
    and the others' tools are listed.
    """
    return await mcp.tools(call.rt, server, agent)
