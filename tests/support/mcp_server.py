"""A real MCP server for the tests, written with the ``mcp`` package's server API
and run as a subprocess over stdio (``python tests/support/mcp_server.py``; in
most tests a fork of ``mcp_forkserver.py`` runs ``main()`` on the pipes of
``mcp_launch.py``, the command wizd starts: see ``tests/mcp/helpers.py``).

Tools: ``echo`` (its text back), ``count`` (appends a line, its ``label``,
to the file named by ``--counter``, waits ``sleep`` seconds and answers how
many lines the file holds: a side effect a test can count), ``hang`` (never
answers), ``crash`` (the process exits at once, as a server that dies),
``big`` (5 MB of text), ``secret`` (whether the env var ``WIZ_TEST_SECRET``
is set in its environment, and its length, never its value).

Options: ``--pid-file PATH`` writes the server's pid there once it runs (a
test checks that the process is gone after wizd stops it); ``--hang-listing``
makes ``tools/list`` never answer; ``--http`` serves streamable HTTP at
``http://127.0.0.1:PORT/mcp`` instead of stdio, on a free port it prints as
the first line of its stdout (``port PORT``) once it listens.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

import anyio
from mcp.server.mcpserver import MCPServer

BIG = 5 * 1024 * 1024


def build(counter: Path | None, hang_listing: bool) -> MCPServer[Any]:
    class Server(MCPServer[Any]):
        async def list_tools(self) -> Any:
            if hang_listing:
                await anyio.sleep_forever()
            return await super().list_tools()

    server: MCPServer[Any] = Server("wiz-test")

    @server.tool()
    def echo(text: str) -> str:
        """Say the text back."""
        return text

    @server.tool()
    async def count(label: str = "x", sleep: float = 0.0) -> str:
        """Append a line (``label``) to the counter file, then wait ``sleep``
        seconds; answer how many lines it holds."""
        assert counter is not None, "start the server with --counter FILE"
        # A small local file, in a test server: blocking the loop is harmless.
        with counter.open("a") as f:  # noqa: ASYNC230
            f.write(f"{label}\n")
        if sleep:
            await anyio.sleep(sleep)
        return str(len(counter.read_text().splitlines()))  # noqa: ASYNC240

    @server.tool()
    async def hang() -> str:
        """Never answer."""
        await anyio.sleep_forever()
        return ""

    @server.tool()
    def crash() -> str:
        """End the server process at once."""
        os._exit(3)

    @server.tool()
    def big() -> str:
        """5 MB of text."""
        return "x" * BIG

    @server.tool()
    def secret() -> str:
        """Whether WIZ_TEST_SECRET is set, and its length (never its value)."""
        value = os.environ.get("WIZ_TEST_SECRET")
        return "unset" if value is None else f"set, {len(value)} characters"

    return server


async def serve_http(server: MCPServer[Any]) -> None:
    import socket

    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    app = server.streamable_http_app()
    # Listening already: a client that connects now waits in the backlog.
    print(f"port {sock.getsockname()[1]}", flush=True)
    await uvicorn.Server(uvicorn.Config(app, log_level="warning")).serve(sockets=[sock])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--counter", type=Path)
    parser.add_argument("--pid-file", type=Path)
    parser.add_argument("--hang-listing", action="store_true")
    parser.add_argument("--http", action="store_true")
    args = parser.parse_args()
    if args.pid_file:
        # Whole or not there: tests read it as soon as it exists.
        partial = args.pid_file.with_name(args.pid_file.name + ".partial")
        partial.write_text(str(os.getpid()))
        partial.replace(args.pid_file)
    server = build(args.counter, args.hang_listing)
    sys.stderr.write("wiz-test MCP server up\n")
    if args.http:
        anyio.run(serve_http, server)
    else:
        server.run("stdio")


if __name__ == "__main__":
    main()
