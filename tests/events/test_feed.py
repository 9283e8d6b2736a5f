"""The forwarder in-process over a real socket pair, on both anyio backends:
history then live without gap or duplicate, nothing before the response, the
lagged end, unsubscribe, and a slow client that costs nobody else anything."""

from __future__ import annotations

import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from anyio.abc import UNIXSocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

from wizd.events.feed import HISTORY_PAGE, Feed
from wizd.events.hub import Event, Hub, Subscription
from wizd.events.notifications import event_tail, head
from wizd.rpc.dispatch import encode
from wizd.rpc.server import ClientConnection

pytestmark = pytest.mark.anyio


@dataclass
class Client:
    """The client end: reads the lines the feed writes."""

    raw: socket.socket
    reader: BufferedByteReceiveStream

    async def note(self) -> dict[str, Any]:
        with anyio.fail_after(10):
            return json.loads(await self.reader.receive_until(b"\n", 1 << 20))  # type: ignore[no-any-return]

    def nothing_sent(self) -> bool:
        try:
            self.raw.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            return True
        return False


@asynccontextmanager
async def connection() -> AsyncIterator[tuple[ClientConnection, Client]]:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    server = await UNIXSocketStream.from_socket(a)
    client = await UNIXSocketStream.from_socket(b)
    async with server, client:
        yield ClientConnection(server, peer="test"), Client(b, BufferedByteReceiveStream(client))


def message(seq: int, conversation_id: str = "c1", content: str = "") -> dict[str, Any]:
    return {"id": f"m{seq}", "seq": seq, "conversation_id": conversation_id,
            "content": content or f"message {seq}"}


def created(seq: int, content: str = "") -> Event:
    return Event("message.created", {"message": message(seq, content=content)}, "c1", seq)


def stored(seqs: range) -> Any:
    """A history source over stored messages (what messages.history_after answers)."""
    rows = [message(s) for s in seqs]

    async def history(after: int, limit: int) -> list[dict[str, Any]]:
        await anyio.lowlevel.checkpoint()
        return [m for m in rows if m["seq"] > after][:limit]

    return history


def start(hub: Hub, split: int, scope: str | None = "c1") -> Subscription:
    sub = hub.create(scope)
    hub.attach(sub, split)
    return sub


async def test_notification_line_is_the_plain_encoding() -> None:
    for event in (created(3, content="héllo \"quoted\" \n ✓"),
                  Event("agent.status", {}, None),
                  Event("message.delta", {"job_id": "j", "index": 0, "delta": "\u2028x"}, "c1")):
        line = head(event.method, "sub-9") + event_tail(event)  # as the feed joins them
        plain = encode({"jsonrpc": "2.0", "method": event.method,
                        "params": {"subscription": "sub-9", **event.params}})
        assert json.loads(line) == json.loads(plain)
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        assert "tail" in event.memo  # the part every subscriber shares is kept
        assert line == head(event.method, "sub-9") + event_tail(event)


async def test_history_then_live_exactly_once_in_order() -> None:
    hub = Hub(buffer=64)
    split = 2 * HISTORY_PAGE + 200  # three pages of history
    # The database already holds ten messages newer than the split, which the
    # history query sees too: they must come once, from the live buffer.
    sub = start(hub, split)
    feed = Feed(None, hub, sub, split=split, after_seq=3,  # type: ignore[arg-type]
                history=stored(range(1, split + 11)))
    hub.publish(created(split))  # at or below the split: already covered by history
    for seq in range(split + 1, split + 11):
        hub.publish(created(seq))
    async with connection() as (conn, client), anyio.create_task_group() as tg:
        feed.sink = conn
        ended = anyio.Event()
        tg.start_soon(feed.run, ended.set)
        await anyio.wait_all_tasks_blocked()
        assert client.nothing_sent(), "a notification went out before the response"
        feed.ready.set()
        seqs: list[int] = []
        while not seqs or seqs[-1] < split + 10:
            note = await client.note()
            assert note["method"] == "message.created"
            assert note["params"]["subscription"] == sub.id
            seqs.append(note["params"]["message"]["seq"])
        assert seqs == list(range(4, split + 11))
        await anyio.wait_all_tasks_blocked()
        assert sub.last_seq == split + 10
        hub.detach(sub)  # unsubscribe
        await ended.wait()
        assert client.nothing_sent()
    assert sub.closed and len(hub) == 0


async def test_lagged_reports_the_last_delivered_seq() -> None:
    hub = Hub(buffer=4)
    sub = start(hub, 10, scope=None)
    async with connection() as (conn, client), anyio.create_task_group() as tg:
        feed = Feed(conn, hub, sub, split=10, after_seq=None, history=stored(range(0)))
        ended = anyio.Event()
        tg.start_soon(feed.run, ended.set)
        feed.ready.set()
        hub.publish(Event("agent.status", {"agent_id": "a", "status": "busy"}, "c1"))
        hub.publish(created(11))
        hub.publish(created(12))
        got = [await client.note() for _ in range(3)]
        assert [n["method"] for n in got] == ["agent.status", "message.created", "message.created"]
        await anyio.wait_all_tasks_blocked()
        # Four fill the buffer, the fifth overflows; all without yielding, as a
        # burst of commits can.
        for seq in range(13, 19):
            hub.publish(created(seq))
        assert sub.lagged and len(hub) == 0
        note = await client.note()
        assert note == {"jsonrpc": "2.0", "method": "events.lagged",
                        "params": {"subscription": sub.id, "last_seq": 12}}
        await ended.wait()
        assert client.nothing_sent()


async def test_lagged_before_history_resumes_from_the_clients_cursor() -> None:
    hub = Hub(buffer=2)
    sub = start(hub, 10)
    for seq in (11, 12, 13):
        hub.publish(created(seq))
    assert sub.lagged
    async with connection() as (conn, client), anyio.create_task_group() as tg:
        feed = Feed(conn, hub, sub, split=10, after_seq=5, history=stored(range(1, 14)))
        tg.start_soon(feed.run)
        feed.ready.set()
        note = await client.note()
        assert note["method"] == "events.lagged" and note["params"]["last_seq"] == 5


async def test_live_only_subscription_covers_up_to_the_split() -> None:
    """Without after_seq nothing stored is sent; if it lags at once, resuming from
    the split misses nothing that happened after subscribing."""
    hub = Hub(buffer=1)
    sub = start(hub, 42)
    async with connection() as (conn, client), anyio.create_task_group() as tg:
        feed = Feed(conn, hub, sub, split=42, after_seq=None, history=stored(range(1, 43)))
        tg.start_soon(feed.run)
        feed.ready.set()
        hub.publish(created(43))
        note = await client.note()
        assert note["params"]["message"]["seq"] == 43
        await anyio.wait_all_tasks_blocked()
        for seq in (44, 45):  # one buffered, one too many
            hub.publish(created(seq))
        note = await client.note()
        assert note["method"] == "events.lagged" and note["params"]["last_seq"] == 43


async def test_a_client_that_never_reads_costs_others_nothing() -> None:
    hub = Hub(buffer=64)
    big = "x" * 4000  # 2,000 of these overflow any socket buffer
    total = 2000
    async with connection() as (slow_conn, slow), connection() as (fast_conn, fast), \
            anyio.create_task_group() as tg:
        slow_sub, fast_sub = start(hub, 0, None), start(hub, 0, None)
        feeds = [Feed(c, hub, s, split=0, after_seq=None, history=stored(range(0)))
                 for c, s in ((slow_conn, slow_sub), (fast_conn, fast_sub))]
        for feed in feeds:
            tg.start_soon(feed.run)
            feed.ready.set()
        received: list[int] = []
        all_received = anyio.Event()

        async def read_fast() -> None:
            while len(received) < total:
                received.append((await fast.note())["params"]["message"]["seq"])
            all_received.set()

        tg.start_soon(read_fast)
        for seq in range(1, total + 1):
            hub.publish(created(seq, content=big))
            # Bounded: the slow subscription holds at most its buffer, then nothing.
            assert len(slow_sub.buffer) <= hub.buffer
            await anyio.lowlevel.checkpoint()  # the publisher yields, never waits
        with anyio.fail_after(10):
            await all_received.wait()
        assert received == list(range(1, total + 1))
        assert slow_sub.lagged and not fast_sub.lagged and not slow_sub.buffer
        # The slow client finally reads: an unbroken prefix, then the lagged note.
        seqs = []
        while True:
            note = await slow.note()
            if note["method"] == "events.lagged":
                break
            seqs.append(note["params"]["message"]["seq"])
        assert seqs == list(range(1, len(seqs) + 1)) and len(seqs) < total
        assert note["params"]["last_seq"] == len(seqs)
        hub.detach(fast_sub)

