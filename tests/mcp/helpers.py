"""The test MCP server (tests/support/mcp_server.py) as a command, and a
manager running in a task group, for the tests of wizd.mcp and services.mcp."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio

from wizd.mcp import McpManager

SERVER = str(Path(__file__).resolve().parents[1] / "support" / "mcp_server.py")


def server_command(tmp_path: Path, *extra: str) -> list[str]:
    """The command that runs the test server, its counter file and pid file in ``tmp_path``."""
    return [sys.executable, SERVER, "--counter", str(tmp_path / "counter"),
            "--pid-file", str(tmp_path / "server.pid"), *extra]


def server_pid(tmp_path: Path) -> int:
    return int((tmp_path / "server.pid").read_text())


def alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@asynccontextmanager
async def running(manager: McpManager) -> AsyncIterator[McpManager]:
    """``manager`` running in a task group; on the way out, cancelled as wizd's
    shutdown cancels it (it stops its servers before it returns)."""
    async with anyio.create_task_group() as tg:
        await tg.start(manager.run)
        yield manager
        tg.cancel_scope.cancel()


@asynccontextmanager
async def http_server(tmp_path: Path) -> AsyncIterator[str]:
    """The test server over streamable HTTP in a subprocess: its URL, once it listens."""
    async with await anyio.open_process(
            [*server_command(tmp_path), "--http"], stderr=None) as proc:
        assert proc.stdout is not None
        first = b""
        while not first.endswith(b"\n"):
            first += await proc.stdout.receive(1)
        port = int(first.decode().split()[1])
        try:
            yield f"http://127.0.0.1:{port}/mcp"
        finally:
            proc.terminate()
