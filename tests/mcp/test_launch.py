"""The launcher the MCP tests give wizd as the test server's command
(tests/support/mcp_launch.py, served by the worker's MCP fork server): to
wizd it must be the server process, in its exit and in its death."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.mcp.helpers import EXEC_ALWAYS, alive, server_command, server_pid
from tests.support.daemon import wait_for

pytestmark = pytest.mark.skipif(EXEC_ALWAYS, reason="WIZ_TESTS_EXEC=1: no launcher")


def launch(tmp_path: Path, name: str) -> tuple[subprocess.Popen[bytes], int]:
    """A launched server as mcp starts one (pipes, its own session); its pid once it runs."""
    tmp_path = tmp_path / name
    tmp_path.mkdir()
    proc = subprocess.Popen(server_command(tmp_path), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, start_new_session=True,
                            env={"WIZ_TEST_SECRET": "x"})
    pid = wait_for(lambda: (tmp_path / "server.pid").exists() and server_pid(tmp_path))
    assert pid != proc.pid and alive(pid)
    return proc, pid


def test_the_launcher_exits_as_its_server_does(tmp_path: Path) -> None:
    proc, pid = launch(tmp_path, "a")
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.close()  # a stdio server ends when its input does
    assert proc.wait(timeout=30) == 0
    assert not alive(pid)
    proc.stdout.close()

    proc, pid = launch(tmp_path, "b")
    os.kill(pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL
    assert proc.stdin is not None and proc.stdout is not None
    assert proc.stdout.read() == b""  # the launcher kept no copy of the server's pipes
    proc.stdin.close()
    proc.stdout.close()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_ending_the_launchers_group_ends_its_server(tmp_path: Path, sig: int) -> None:
    proc, pid = launch(tmp_path, "a")
    os.killpg(proc.pid, sig)
    assert proc.wait(timeout=30) == -sig
    if sig == signal.SIGTERM:  # passed on to the server, which the launcher outlives
        assert not alive(pid)
    else:  # the launcher is gone at once: the fork server's side kills the server
        wait_for(lambda: not alive(pid))
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.close()
    proc.stdout.close()
