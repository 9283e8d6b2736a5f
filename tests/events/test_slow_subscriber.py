"""A subscriber that never reads while 3,000 messages are sent: the sender keeps
its pace, a reading subscriber gets everything, the lazy one gets
events.lagged (and resumes with after_seq), and the daemon's memory stays bounded."""

from __future__ import annotations

import threading
import time
from typing import Any

from tests.events.helpers import channel, send_many, vm_rss_kib
from tests.support.daemon import Wizd

MESSAGES = 3000
CONTENT = "z" * 4000  # 12 MB in all: far more than the buffers may hold


def timed_run(w: Wizd, cid: str, label: str, count: int) -> tuple[float, list[dict[str, Any]]]:
    """Send ``count`` messages while a subscriber reads them all; (msg/s, sent messages)."""
    with w.connect() as reader, w.connect() as sender:
        sub = reader.call("events.subscribe", conversation_id=cid)["subscription"]
        seqs: list[int] = []

        def read() -> None:
            while len(seqs) < count:
                note = reader.notification("message.created")
                assert note["params"]["subscription"] == sub
                seqs.append(note["params"]["message"]["seq"])

        t = threading.Thread(target=read, daemon=True)
        t.start()
        start = time.perf_counter()
        sent = send_many(sender, cid, (f"{label} {i} {CONTENT}" for i in range(count)))
        rate = count / (time.perf_counter() - start)
        t.join(timeout=30)
        assert seqs == [m["seq"] for m in sent]  # the reading subscriber lost nothing
    return rate, sent


def test_a_subscriber_that_never_reads_hurts_nobody(wizd_factory: Any) -> None:
    w = wizd_factory(env={"WIZ_SUBSCRIBER_BUFFER": "256"}).start()
    cid = channel(w)
    assert w.proc is not None
    baseline, _ = timed_run(w, cid, "baseline", 600)  # also warms SQLite's page caches
    rss_before = vm_rss_kib(w.proc.pid)
    with w.connect() as lazy:
        lazy.call("events.subscribe", conversation_id=cid)  # ...and never reads
        lazy_rate, sent = timed_run(w, cid, "lazy", MESSAGES)
        rss_after = vm_rss_kib(w.proc.pid)
        print(f"\n4 KB messages: {baseline:.0f} msg/s alone, "
              f"{lazy_rate:.0f} msg/s with a subscriber that never reads; "
              f"daemon RSS {rss_before / 1024:.1f} -> {rss_after / 1024:.1f} MiB")
        # Generous: a publisher that waited for the lazy reader would never finish.
        assert lazy_rate > baseline / 3
        # Bounded: a buffer of 256 events plus socket buffers, not 12 MB of messages.
        assert rss_after - rss_before < 8 * 1024
        # Reading at last: an unbroken run of messages, then events.lagged.
        seqs = []
        while (note := lazy.notification())["method"] != "events.lagged":
            assert note["method"] == "message.created"
            seqs.append(note["params"]["message"]["seq"])
        assert seqs == [m["seq"] for m in sent[:len(seqs)]] and len(seqs) < MESSAGES
        last = note["params"]["last_seq"]
        assert last == (seqs[-1] if seqs else sent[0]["seq"] - 1)
        assert w.call("daemon.status")["subscriptions"] == 0
        # ...and resumes where it was dropped: the rest, exactly.
        lazy.call("events.subscribe", conversation_id=cid, after_seq=last)
        rest = [lazy.notification("message.created")["params"]["message"]
                for _ in range(MESSAGES - len(seqs))]
        assert seqs + [m["seq"] for m in rest] == [m["seq"] for m in sent]
