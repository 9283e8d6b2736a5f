"""When the forwarder writes, in virtual time (trio's MockClock): at once when
idle, together when events queue up during a write, and under load (many
subscriptions with events waiting) at most once per pause."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio

from tests.events.test_feed import created, start, stored
from wizd.events.feed import Feed
from wizd.events.hub import BUSY, COALESCE, Hub


class RecordingSink:
    """A connection that records when each write happened (virtual time); each
    write takes ``takes`` seconds, as a send to a busy client does."""

    closed = False

    def __init__(self, takes: float = 0.0) -> None:
        self.takes = takes
        self.writes: list[tuple[float, list[int]]] = []

    async def send_line(self, line: bytes) -> bool:
        seqs = [json.loads(x)["params"]["message"]["seq"] for x in line.splitlines()]
        self.writes.append((round(trio.current_time(), 6), seqs))
        await trio.sleep(self.takes)
        return True


@pytest.mark.trio
async def test_no_timer_holds_an_event_back(autojump_clock: Any) -> None:
    """Each event goes out as soon as the previous write is done: at once when
    the connection is idle, one by one when they come one at a time (a
    streamed reply), together when they come together (one commit's events)
    or while a write is in flight."""
    hub = Hub(buffer=64)
    sub = start(hub, 0)
    sink = RecordingSink(takes=0.002)
    feed = Feed(sink, hub, sub, split=0, after_seq=None, history=stored(range(0)))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(feed.run)
        feed.ready.set()
        t0 = trio.current_time()
        await trio.sleep(1)  # idle
        for seq in (1, 2, 3):  # one at a time, slower than the writes
            hub.publish(created(seq))
            await trio.sleep(0.003)
        for seq in (4, 5, 6):  # together
            hub.publish(created(seq))
        await trio.sleep(0.0005)
        for seq in (7, 8):  # while the write of 4-6 is in flight
            hub.publish(created(seq))
            await trio.sleep(0.0005)
        await trio.sleep(1)
        hub.publish(created(9))  # idle again
        await trio.sleep(1)
        hub.detach(sub)
    assert [(round(t - t0, 6), seqs) for t, seqs in sink.writes] == [
        (1.0, [1]),
        (1.003, [2]),
        (1.006, [3]),
        (1.009, [4, 5, 6]),
        (1.011, [7, 8]),
        (2.0105, [9]),
    ]


@pytest.mark.trio
async def test_under_load_writes_coalesce_yet_an_idle_subscription_writes_at_once(
    autojump_clock: Any,
) -> None:
    """With BUSY subscriptions following one conversation (a message is BUSY
    writes), each write that carried events is followed by a COALESCE pause,
    shared by all of them: the messages published meanwhile go out together,
    in order, none lost. A subscription waiting idle still writes at once."""
    hub = Hub(buffer=64)
    subs = [start(hub, 0) for _ in range(BUSY)]
    sinks = [RecordingSink() for _ in subs]
    feeds = [Feed(sink, hub, sub, split=0, after_seq=None, history=stored(range(0)))
             for sink, sub in zip(sinks, subs, strict=True)]
    async with trio.open_nursery() as nursery:
        for feed in feeds:
            nursery.start_soon(feed.run)
            feed.ready.set()
        await trio.sleep(1)
        t0 = trio.current_time()
        hub.publish(created(1))  # idle: at once
        for seq in (2, 3, 4):  # while paused: together, at the end of the pause
            await trio.sleep(COALESCE / 5)
            hub.publish(created(seq))
        await trio.sleep(COALESCE / 5 * 2.5)
        hub.publish(created(5))  # after that write: in the next one
        await trio.sleep(1)
        t1 = trio.current_time()
        hub.publish(created(6))  # idle again: at once
        await trio.sleep(1)
        for sub in subs:
            hub.detach(sub)
    for sink in sinks:
        assert [(round(t - t0, 6), seqs) for t, seqs in sink.writes] == [
            (0.0, [1]),
            (COALESCE, [2, 3, 4]),
            (2 * COALESCE, [5]),
            (round(t1 - t0, 6), [6]),
        ]
