"""When the forwarder writes, in virtual time (trio's MockClock): at once when
idle, gathered under load, early when its buffer gets half full."""

from __future__ import annotations

import json
from typing import Any

import pytest
import trio

from tests.events.test_feed import created, start, stored
from wizd.events.feed import COALESCE, Feed
from wizd.events.hub import Hub


class RecordingSink:
    """A connection that records when each write happened (virtual time)."""

    closed = False

    def __init__(self) -> None:
        self.writes: list[tuple[float, list[int]]] = []

    async def send_line(self, line: bytes) -> bool:
        seqs = [json.loads(x)["params"]["message"]["seq"] for x in line.splitlines()]
        self.writes.append((round(trio.current_time(), 6), seqs))
        return True


@pytest.mark.trio
async def test_events_arriving_together_are_written_together(autojump_clock: Any) -> None:
    hub = Hub(buffer=8)
    sub = start(hub, 0)
    sink = RecordingSink()
    feed = Feed(sink, hub, sub, split=0, after_seq=None, history=stored(range(0)))
    async with trio.open_nursery() as nursery:
        nursery.start_soon(feed.run)
        feed.ready.set()
        t0 = trio.current_time()
        await trio.sleep(1)  # idle
        hub.publish(created(1))  # an idle subscription writes at once
        for seq in (2, 3, 4):  # within COALESCE of that write: gathered
            await trio.sleep(0.001)
            hub.publish(created(seq))
        await trio.sleep(1)
        for seq in range(5, 10):  # a burst that half fills the buffer: written early
            hub.publish(created(seq))
            await trio.sleep(0.001)
        await trio.sleep(1)
        hub.detach(sub)
    assert [(round(t - t0, 6), seqs) for t, seqs in sink.writes] == [
        (1.0, [1]),
        (1.0 + COALESCE, [2, 3, 4]),
        (2.003, [5]),
        (2.007, [6, 7, 8, 9]),  # the 4th queued event of 8 hurried it
    ]
