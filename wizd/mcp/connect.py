"""One connection to an MCP server through the official ``mcp`` package: a
subprocess over stdio, or streamable HTTP; initialized, ready for requests.

Imported by the manager on first use only: ``mcp`` takes about a second to
import, which a wizd that runs no MCP server should not pay at each start.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED

__all__ = ["CONNECTION_CLOSED", "ClientSession", "MCPError", "connect"]


@asynccontextmanager
async def connect(transport: str, command: tuple[str, ...], url: str | None,
                  env: Mapping[str, str]) -> AsyncIterator[ClientSession]:
    """An initialized session; the server (process) stops when the block ends.

    A stdio server gets ``env`` over the few variables ``mcp`` passes on
    (HOME, LOGNAME, PATH, SHELL, TERM, USER): nothing else of wizd's
    environment reaches it. Its stderr goes to wizd's. On the way out, ``mcp``
    closes its stdin, waits 2 s, then ends its process group (shielded from
    cancellation, every wait bounded). Raises OSError (the command cannot be
    run), MCPError (the server closed the connection or refused).
    """
    if transport == "stdio":
        params = StdioServerParameters(command=command[0], args=list(command[1:]), env=dict(env))
        streams = stdio_client(params, errlog=sys.stderr)
    else:
        assert url is not None
        streams = streamable_http_client(url)
    async with streams as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        yield session
