"""``wizctl mcp ...`` end to end: the real wizctl against a real wizd, which
runs the test MCP server (tests/support/mcp_server.py) as its subprocess."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tests.e2e.test_wizctl import ok, wizctl
from tests.mcp.helpers import SERVER, alive, server_pid
from tests.support.daemon import wait_for


def test_add_list_tools_remove_and_shutdown(tmp_path: Path, wizd_factory: Any) -> None:
    w = wizd_factory(env={"WIZ_TEST_SOURCE": "hunter2-secret"}).start()
    command = [sys.executable, SERVER, "--counter", str(tmp_path / "counter"),
               "--pid-file", str(tmp_path / "server.pid")]
    added = ok(wizctl(w, "mcp", "add", "test", "--env", "WIZ_TEST_SECRET=WIZ_TEST_SOURCE",
                      "--idempotent", "echo,big", "--", *command))
    assert added == f"added MCP server test ({' '.join(command)})\n"
    listed = ok(wizctl(w, "mcp", "list")).splitlines()
    assert listed[0].split() == ["NAME", "TRANSPORT", "COMMAND", "/", "URL", "ENV", "MARKS",
                                 "RUNNING"]
    assert listed[1].split()[:2] == ["test", "stdio"]
    assert listed[1].split()[-3:] == ["WIZ_TEST_SECRET=$WIZ_TEST_SOURCE", "idempotent=echo,big",
                                      "no"]

    tools = ok(wizctl(w, "mcp", "tools", "test")).splitlines()
    assert tools[0].split() == ["TOOL", "DESCRIPTION"]
    assert "test.echo    Say the text back." in tools
    assert {line.split()[0] for line in tools[1:]} == {
        f"test.{t}" for t in ("echo", "count", "hang", "crash", "big", "secret")}
    [server] = json.loads(ok(wizctl(w, "mcp", "list", "--json")))["servers"]
    assert server["running"] is True and server["env"] == {"WIZ_TEST_SECRET": "WIZ_TEST_SOURCE"}

    # A server that cannot start: a clear one-line error, its command shown.
    ok(wizctl(w, "mcp", "add", "bad", "--", str(tmp_path / "no-such-server")))
    failed = wizctl(w, "mcp", "tools", "bad")
    assert (failed.returncode, failed.stdout) == (9, "")
    assert failed.stderr == ("wizctl: error: MCP server bad: cannot start: No such file or "
                             f"directory (command: {tmp_path / 'no-such-server'})\n")
    # Every server: the others' tools are listed, the failure told, exit 9.
    every = wizctl(w, "mcp", "tools")
    assert every.returncode == 9 and "test.echo" in every.stdout
    assert every.stderr.startswith("wizctl: MCP server bad: cannot start:")
    listing = json.loads(ok(wizctl(w, "mcp", "tools", "--json")))
    assert [f["server"] for f in listing["failures"]] == ["bad"]
    assert ok(wizctl(w, "mcp", "remove", "bad")) == "removed MCP server bad\n"

    bad_env = wizctl(w, "mcp", "add", "x", "--env", "NOVALUE", "--", "true")
    assert bad_env.returncode == 2 and "'NOVALUE' is not NAME=VAR" in bad_env.stderr

    # Shutdown stops the server process: no orphan left behind.
    pid = server_pid(tmp_path)
    assert alive(pid)
    assert w.stop() == 0
    wait_for(lambda: not alive(pid))
    assert "hunter2" not in w.log_text()
