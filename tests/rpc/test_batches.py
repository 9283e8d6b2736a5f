"""Batches: bounded in size, and their calls share a connection's bound on calls in
flight with pipelined ones, so one big batch is no worse for other clients than
the same calls sent one by one. Dispatch as a pure function, then the server on
a real socket; both backends, no clock."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

from tests.rpc.serving import serving
from wizd.config import Config
from wizd.rpc.dispatch import dispatch
from wizd.rpc.registry import Registry
from wizd.rpc.server import MAX_IN_FLIGHT

pytestmark = pytest.mark.anyio


class Gate:
    """Calls that wait until the gate opens, counting how many wait at once."""

    def __init__(self) -> None:
        self.opened = anyio.Event()
        self.running = 0
        self.peak = 0
        self.ran: list[int] = []

    async def pass_(self, n: int) -> int:
        self.running += 1
        self.peak = max(self.peak, self.running)
        try:
            await self.opened.wait()
        finally:
            self.running -= 1
        self.ran.append(n)
        return n


reg = Registry()
# The gate of the running test: Events belong to the event loop that made them.
gates: list[Gate] = []


@reg.method("gate.pass")
async def gate_pass(call: Any, n: int) -> int:
    return await gates[-1].pass_(n)


@reg.method("ping")
async def ping(call: Any) -> str:
    return "pong"


@pytest.fixture
def gate(anyio_backend: str) -> Gate:
    gates.append(Gate())
    return gates[-1]


def batch(count: int, start: int = 0) -> str:
    return json.dumps([{"jsonrpc": "2.0", "id": i, "method": "gate.pass", "params": {"n": i}}
                       for i in range(start, start + count)])


async def answer(line: str, *, max_batch: int = 100, in_flight: int = MAX_IN_FLIGHT,
                 slots: anyio.Semaphore | None = None) -> Any:
    out = await dispatch(reg, None, line, max_batch=max_batch,
                         in_flight=slots or anyio.Semaphore(in_flight))
    return None if out is None else json.loads(out)


async def test_a_batch_over_the_limit_is_refused_whole_and_nothing_runs(gate: Gate) -> None:
    gate.opened.set()
    resp = await answer(batch(4), max_batch=3)
    assert resp == {"jsonrpc": "2.0", "id": None, "error": {
        "code": -32600, "message": "Invalid request", "data": "batch of 4 calls; at most 3"}}
    assert gate.ran == []
    assert [r["result"] for r in await answer(batch(3), max_batch=3)] == [0, 1, 2]


async def test_the_limit_is_checked_before_the_calls_are(gate: Gate) -> None:
    # A huge batch of junk costs a length check, not a validation per item.
    resp = await answer(json.dumps([1] * 101), max_batch=100)
    assert resp["error"]["data"] == "batch of 101 calls; at most 100"


async def test_a_batch_runs_at_most_in_flight_calls_at_once(gate: Gate) -> None:
    results: list[Any] = []

    async def send() -> None:
        results.append(await answer(batch(100), in_flight=MAX_IN_FLIGHT))

    async with anyio.create_task_group() as tg:
        tg.start_soon(send)
        await anyio.wait_all_tasks_blocked()
        assert gate.running == MAX_IN_FLIGHT  # and 36 wait for a place
        gate.opened.set()
    assert gate.peak == MAX_IN_FLIGHT
    assert [r["result"] for r in results[0]] == list(range(100))


async def test_pipelined_calls_and_batches_share_the_places(gate: Gate) -> None:
    slots = anyio.Semaphore(4)
    results: dict[str, Any] = {}

    async def send(name: str, line: str) -> None:
        results[name] = await answer(line, slots=slots)

    async with anyio.create_task_group() as tg:
        tg.start_soon(send, "batch", batch(6))
        await anyio.wait_all_tasks_blocked()
        tg.start_soon(send, "single",
                      '{"jsonrpc":"2.0","id":"s","method":"gate.pass","params":{"n":99}}')
        await anyio.wait_all_tasks_blocked()
        assert gate.running == 4
        gate.opened.set()
    assert gate.peak == 4
    assert results["single"]["result"] == 99
    assert [r["result"] for r in results["batch"]] == list(range(6))


# -- the server, on a real socket ----------------------------------------------------


class Client:
    def __init__(self, stream: SocketStream) -> None:
        self.stream = stream
        self.reader = BufferedByteReceiveStream(stream)

    async def send(self, line: str) -> None:
        await self.stream.send(line.encode() + b"\n")

    async def read(self) -> Any:
        return json.loads(await self.reader.receive_until(b"\n", 1 << 20))


async def test_a_big_batch_is_bounded_and_leaves_other_clients_served(
        tmp_path: Path, anyio_backend: str, gate: Gate) -> None:
    async with serving(tmp_path, anyio_backend, reg) as server:
        big = Client(await anyio.connect_unix(server.rt.config.socket))
        other = Client(await anyio.connect_unix(server.rt.config.socket))
        await big.send(batch(Config().max_batch))
        await anyio.wait_all_tasks_blocked()
        assert gate.running == MAX_IN_FLIGHT
        # The batch's other calls wait their turn; another connection is served.
        await other.send('{"jsonrpc":"2.0","id":1,"method":"ping"}')
        assert (await other.read())["result"] == "pong"
        assert gate.running == MAX_IN_FLIGHT
        gate.opened.set()
        answers = await big.read()
        assert [a["result"] for a in answers] == list(range(Config().max_batch))
        assert gate.peak == MAX_IN_FLIGHT
        await big.send(batch(Config().max_batch + 1))
        assert (await big.read())["error"]["code"] == -32600
        for client in (big, other):
            await client.stream.aclose()
