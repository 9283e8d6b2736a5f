"""No gap, no duplicate: subscribing with after_seq in the middle of a write
storm yields exactly the stored messages after that seq, in order."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from tests.events.helpers import channel, newest_seq, send_many, stored_after

WRITERS = 4
# Messages of channel a stored before the subscription's cursor (history) and
# live ones each subscription sees while the storm goes on: enough for both
# parts to be many writes long, so that the hand-over falls mid-storm.
HISTORY = 48
LIVE_BEFORE_STOP = 64


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
def test_subscribe_in_the_middle_of_a_write_storm(wizd_factory: Any, backend: str) -> None:
    w = wizd_factory(extra_args=["--backend", backend]).start()
    a, b = channel(w, "a"), channel(w, "b")
    stop = threading.Event()
    errors: list[BaseException] = []
    written = threading.Semaphore(0)

    def writer(k: int, cid: str) -> None:
        try:
            with w.connect() as c:
                batch = 0
                while not stop.is_set():
                    send_many(c, cid, [f"w{k} {batch} {i}" for i in range(16)], window=16)
                    batch += 1
                    written.release()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
            stop.set()

    threads = [threading.Thread(target=writer, args=(k, (a, b)[k % 2]), daemon=True)
               for k in range(WRITERS)]
    for t in threads:
        t.start()
    try:
        for _ in range(8):  # the storm is on: 128 messages stored
            assert written.acquire(timeout=20), errors
        cursor = newest_seq(w, a) - HISTORY  # in the middle of what the storm stored
        with w.connect() as sub:
            scoped = sub.call("events.subscribe", conversation_id=a, after_seq=cursor)
            everything = sub.call("events.subscribe", after_seq=cursor)
            got: dict[str, list[dict[str, Any]]] = {
                scoped["subscription"]: [], everything["subscription"]: []}

            def receive_until(done: Any) -> None:
                while not done():
                    note = sub.notification()
                    assert note["method"] == "message.created", note
                    got[note["params"]["subscription"]].append(note["params"]["message"])

            receive_until(lambda: min(map(len, got.values())) >= HISTORY + LIVE_BEFORE_STOP)
            stop.set()
            for t in threads:
                t.join(timeout=20)
            assert not errors, errors
            last_a, last_b = newest_seq(w, a), newest_seq(w, b)
            receive_until(lambda: bool(got[scoped["subscription"]])
                          and got[scoped["subscription"]][-1]["seq"] == last_a
                          and got[everything["subscription"]][-1]["seq"] == max(last_a, last_b))
            sub.call("daemon.status")  # a round trip: nothing more was on its way
            assert [n for n in sub.notifications if n["method"] == "message.created"] == []
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=20)
    want_a = stored_after(w, a, cursor)
    want_all = sorted(want_a + stored_after(w, b, cursor), key=lambda m: m["seq"])
    assert got[scoped["subscription"]] == want_a
    assert got[everything["subscription"]] == want_all
    seqs = [m["seq"] for m in got[everything["subscription"]]]
    assert all(x < y for x, y in zip(seqs, seqs[1:], strict=False))
    # History (HISTORY of channel a before the subscription) and live both
    # many, and the unscoped subscription saw channel b's messages too.
    assert len(want_a) >= HISTORY + LIVE_BEFORE_STOP
    assert len(want_all) > len(want_a) + LIVE_BEFORE_STOP
