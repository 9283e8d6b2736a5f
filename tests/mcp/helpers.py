"""The test MCP server (tests/support/mcp_server.py) as a command, and a
manager running in a task group, for the tests of wizd.mcp and services.mcp.

The command is ``mcp_launch.py``, which has this worker's MCP fork server
(``mcp_forkserver.py``, started on first use) fork the real server on the
launcher's own stdin, stdout and stderr: each start skips importing ``mcp``
(a second or more of CPU). WIZ_TESTS_EXEC=1 gives the plain command instead,
``python mcp_server.py`` (to rule the fork server out when a test fails
oddly); the e2e test always runs the plain command.
"""

from __future__ import annotations

import atexit
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio

from tests.support.perworker import PerWorker
from wizd.mcp import McpManager

SUPPORT = Path(__file__).resolve().parents[1] / "support"
SERVER = str(SUPPORT / "mcp_server.py")
LAUNCH = str(SUPPORT / "mcp_launch.py")

EXEC_ALWAYS = os.environ.get("WIZ_TESTS_EXEC") == "1"


class _ForkServer(PerWorker):
    """This worker's ``mcp_forkserver.py``: its socket listens before it starts
    (a launcher that comes while it imports waits in the backlog); it ends when
    its stdin (a pipe from here) closes, at this process's exit."""

    def __init__(self) -> None:
        self.folder = tempfile.mkdtemp(prefix="wiz-mcp-")
        self.socket = os.path.join(self.folder, "fork.sock")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.socket)
        listener.listen(64)
        self.proc = subprocess.Popen(
            [sys.executable, str(SUPPORT / "mcp_forkserver.py"), str(listener.fileno())],
            stdin=subprocess.PIPE, pass_fds=(listener.fileno(),),
            env={})  # a server's environment is its launcher's only, even as /proc shows it
        listener.close()
        atexit.register(self.close)

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)
        shutil.rmtree(self.folder, ignore_errors=True)


def server_command(tmp_path: Path, *extra: str) -> list[str]:
    """The command that runs the test server, its counter file and pid file in ``tmp_path``."""
    args = ["--counter", str(tmp_path / "counter"), "--pid-file", str(tmp_path / "server.pid"),
            *extra]
    if EXEC_ALWAYS:
        return [sys.executable, SERVER, *args]
    return [sys.executable, "-S", LAUNCH, _ForkServer.get().socket, *args]


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
