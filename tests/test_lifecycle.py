"""Stopping to accept while open connections go on, on both backends."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from anyio.abc import SocketStream

from wizd.lifecycle import GatedListener


async def echo_until_closed(stream: SocketStream, done: anyio.Event) -> None:
    async with stream:
        try:
            while True:
                await stream.send(await stream.receive())
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            pass
    done.set()


@pytest.mark.anyio
async def test_stop_accepting_refuses_newcomers_and_keeps_open_connections(
        tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    listener = GatedListener(await anyio.create_unix_listener(path))
    served = []
    ended = anyio.Event()

    async def serve() -> None:  # the shape of RpcServer.run's accept loop
        async with anyio.create_task_group() as conns:
            while True:
                stream = await listener.accept()
                served.append(stream)
                conns.start_soon(echo_until_closed, stream, ended)

    async with anyio.create_task_group() as tg:
        tg.start_soon(serve)
        client = await anyio.connect_unix(path)
        await client.send(b"one")
        assert await client.receive() == b"one"
        await listener.stop_accepting()  # while serve() waits in accept()
        with pytest.raises(ConnectionRefusedError):
            await anyio.connect_unix(path)
        await client.send(b"two")  # the open connection is still served
        assert await client.receive() == b"two"
        await client.aclose()
        # (Cancelling while the server side still reads hits an asyncio race in
        # anyio's UNIX streams, anyio#1267; let it see the end of stream first.)
        await ended.wait()
        assert len(served) == 1
        tg.cancel_scope.cancel()  # accept() waits until then, raising nothing else
    await listener.aclose()
