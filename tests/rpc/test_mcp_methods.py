"""mcp.add, mcp.list, mcp.remove and mcp.tools as JSON-RPC calls, in process:
a started runtime (real database) with its MCP manager running, each request
line dispatched through the real registry; the server is the test MCP server
(tests/support/mcp_server.py) in a subprocess."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.mcp.helpers import alive, running, server_command, server_pid
from tests.support.runtime import started_runtime
from wizd.rpc.dispatch import dispatch
from wizd.rpc.methods import registry
from wizd.rpc.server import Call
from wizd.services.runtime import Runtime

pytestmark = pytest.mark.anyio

# The manager's tests cover both backends; here only the first test runs on both.
trio_only = pytest.mark.parametrize("anyio_backend", ["trio"])


class Rpc:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.ids = 0

    async def request(self, method: str, **params: Any) -> dict[str, Any]:
        self.ids += 1
        line = json.dumps({"jsonrpc": "2.0", "id": self.ids, "method": method,
                           "params": params})
        out = await dispatch(registry, Call(self.rt, None), line,  # type: ignore[arg-type]
                             max_batch=10, in_flight=anyio.Semaphore(8))
        assert out is not None
        answer: dict[str, Any] = json.loads(out)
        return answer

    async def __call__(self, method: str, **params: Any) -> Any:
        answer = await self.request(method, **params)
        assert "result" in answer, answer
        return answer["result"]

    async def error(self, method: str, **params: Any) -> dict[str, Any]:
        answer = await self.request(method, **params)
        assert "error" in answer, answer
        error: dict[str, Any] = answer["error"]
        return error


@pytest.fixture
async def rpc(tmp_path: Path, anyio_backend: str) -> AsyncIterator[Rpc]:
    async with started_runtime(tmp_path, anyio_backend) as rt, running(rt.mcp):
        yield Rpc(rt)


async def test_add_list_get_tools_remove(rpc: Rpc, tmp_path: Path) -> None:
    command = server_command(tmp_path)
    added = await rpc("mcp.add", name="test", command=command)
    assert {k: added[k] for k in ("name", "transport", "command", "url", "env", "running")} == {
        "name": "test", "transport": "stdio", "command": command, "url": None, "env": {},
        "running": False}
    web = await rpc("mcp.add", name="web", url="http://127.0.0.1:9/mcp/")
    assert (web["transport"], web["url"], web["command"]) == ("http", "http://127.0.0.1:9/mcp",
                                                               None)
    listed = (await rpc("mcp.list"))["servers"]
    assert [s["name"] for s in listed] == ["test", "web"]
    assert listed[0] == added

    tools = await rpc("mcp.tools", server="test")
    assert tools["failures"] == []
    echo = next(t for t in tools["tools"] if t["name"] == "test.echo")
    assert (echo["server"], echo["tool"], echo["description"]) == ("test", "echo",
                                                                    "Say the text back.")
    assert echo["input_schema"]["properties"]["text"]["type"] == "string"
    assert [s["running"] for s in (await rpc("mcp.list"))["servers"]] == [True, False]

    # Every server: the one that cannot be reached is a failure, not the call's error.
    every = await rpc("mcp.tools")
    assert {t["name"] for t in every["tools"]} == {t["name"] for t in tools["tools"]}
    [failure] = every["failures"]
    assert failure["server"] == "web" and failure["error"].startswith("MCP server web: ")

    pid = server_pid(tmp_path)
    removed = await rpc("mcp.remove", name="test")
    assert (removed["name"], removed["deleted"], removed["running"]) == ("test", True, False)
    assert not alive(pid)
    await rpc("mcp.remove", id=web["id"])
    assert (await rpc("mcp.list"))["servers"] == []
    assert (await rpc.error("mcp.remove", name="test"))["code"] == -32001
    # The name is free again.
    assert (await rpc("mcp.add", name="test", command=command))["id"] != added["id"]


@trio_only
async def test_bad_params_are_refused_with_the_field_named(rpc: Rpc, tmp_path: Path) -> None:
    command = server_command(tmp_path)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": "x"}, "command"),
        ({"name": "x", "command": command, "url": "http://h/mcp"}, "command"),
        ({"name": "x", "command": []}, "command"),
        ({"name": "a.b", "command": command}, "name"),
        ({"name": "x", "url": "ftp://h"}, "url"),
        ({"name": "x", "url": "http://h/mcp", "env": {"A": "B"}}, "env"),
        ({"name": "x", "command": command, "env": {"A": "not a name"}}, "env"),
    ]
    for params, field in cases:
        error = await rpc.error("mcp.add", **params)
        assert (error["code"], error["data"]["field"]) == (-32602, field), params
    await rpc("mcp.add", name="x", command=command)
    assert (await rpc.error("mcp.add", name="x", command=command))["code"] == -32002
    assert (await rpc.error("mcp.remove"))["data"]["field"] == "id"
    assert (await rpc.error("mcp.tools", server="nope"))["code"] == -32001


@trio_only
async def test_a_server_that_cannot_start_is_a_clear_error(rpc: Rpc, tmp_path: Path) -> None:
    missing = str(tmp_path / "no-such-mcp-server")
    await rpc("mcp.add", name="broken", command=[missing, "--stdio"])
    error = await rpc.error("mcp.tools", server="broken")
    assert error["code"] == -32005  # not -32603: no bug of wizd's, a server that fails
    assert error["message"] == (f"MCP server broken: cannot start: No such file or directory "
                                f"(command: {missing} --stdio)")
    assert error["data"] == {"server": "broken",
                             "problem": error["message"].removeprefix("MCP server broken: ")}


@trio_only
async def test_env_secrets_never_appear_in_results_or_logs(
        rpc: Rpc, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("WIZ_TEST_SOURCE", "hunter2-secret")
    results = [await rpc("mcp.add", name="s", command=server_command(tmp_path),
                         env={"WIZ_TEST_SECRET": "WIZ_TEST_SOURCE"})]
    assert results[0]["env"] == {"WIZ_TEST_SECRET": "WIZ_TEST_SOURCE"}
    results += [await rpc("mcp.list"), await rpc("mcp.tools"), await rpc("mcp.tools", server="s")]
    # The server got the value: its "secret" tool says it is set (not what it is).
    from wizd.services import mcp
    spec = mcp.spec_of(await rpc.rt.db.read(lambda conn: mcp.resolve(conn, "s")))
    answer = await rpc.rt.mcp.call_tool(spec, "secret", {})
    assert answer.content[0].text == "set, 14 characters"  # type: ignore[union-attr]
    results.append(await rpc("mcp.remove", name="s"))
    assert "hunter2" not in json.dumps(results)
    assert "hunter2" not in caplog.text
    stored = await rpc.rt.db.read(lambda conn: conn.exec_driver_sql(
        "SELECT * FROM mcp_servers").fetchall())
    assert "hunter2" not in repr(stored)
