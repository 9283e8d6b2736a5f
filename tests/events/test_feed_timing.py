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
        for seq in (1, 2, 3):  # one at a time (a streamed reply): each written at once
            hub.publish(created(seq))
            await trio.sleep(0.001)
        for seq in (4, 5, 6):  # ready together: one write, at once
            hub.publish(created(seq))
        await trio.sleep(0.001)
        hub.publish(created(7))  # after a write of several: gathered for COALESCE
        await trio.sleep(0.001)
        hub.publish(created(8))
        await trio.sleep(1)
        for seq in (9, 10):  # idle again: at once
            hub.publish(created(seq))
        for seq in range(11, 16):  # a burst that half fills the buffer: written early
            await trio.sleep(0.001)
            hub.publish(created(seq))
        await trio.sleep(1)
        hub.detach(sub)
    expected = [
        (1.0, [1]),
        (1.001, [2]),
        (1.002, [3]),
        (1.003, [4, 5, 6]),
        (1.003 + COALESCE, [7, 8]),
        (2.005, [9, 10]),
        (2.009, [11, 12, 13, 14]),  # the 4th queued event of 8 hurried it
        (2.009 + 2 * COALESCE, [15]),  # the window doubled: writes carry several
    ]
    assert [(round(t - t0, 6), seqs) for t, seqs in sink.writes] == [
        (round(t, 6), seqs) for t, seqs in expected
    ]
