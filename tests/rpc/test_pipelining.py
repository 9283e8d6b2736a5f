"""Pipelined calls on one connection, through a real socket: at most
MAX_IN_FLIGHT run at once, every one is answered, and the connection's
answering tasks go on serving lines after a burst."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from tests.rpc.serving import serving
from wizd.rpc.registry import Registry
from wizd.rpc.server import MAX_IN_FLIGHT

pytestmark = pytest.mark.anyio

reg = Registry()
# The running test's gate and counts (Events belong to the loop that made them).
state: dict[str, Any] = {}


@reg.method("gate.pass")
async def gate_pass(call: Any, n: int) -> int:
    state["running"] += 1
    state["peak"] = max(state["peak"], state["running"])
    try:
        await state["opened"].wait()
    finally:
        state["running"] -= 1
    return n


def line(n: int) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": n, "method": "gate.pass",
                       "params": {"n": n}}).encode() + b"\n"


async def test_pipelined_calls_are_bounded_then_all_answered(
        tmp_path: Path, anyio_backend: str) -> None:
    state.update(opened=anyio.Event(), running=0, peak=0)
    async with serving(tmp_path, anyio_backend, reg):
        stream = await anyio.connect_unix(tmp_path / "s.sock")
        reader = BufferedByteReceiveStream(stream)
        calls = 2 * MAX_IN_FLIGHT + 10
        await stream.send(b"".join(line(n) for n in range(calls)))
        await anyio.wait_all_tasks_blocked()
        assert state["running"] == MAX_IN_FLIGHT  # the others wait to be read
        state["opened"].set()
        answers = [json.loads(await reader.receive_until(b"\n", 1 << 20))
                   for _ in range(calls)]
        assert sorted(a["result"] for a in answers) == list(range(calls))
        assert state["peak"] == MAX_IN_FLIGHT
        # After the burst, one call at a time, as a lone client does.
        for n in range(calls, calls + 3):
            await stream.send(line(n))
            assert json.loads(await reader.receive_until(b"\n", 1 << 20)) == {
                "jsonrpc": "2.0", "result": n, "id": n}
        await stream.aclose()
