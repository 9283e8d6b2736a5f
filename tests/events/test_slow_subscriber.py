"""A subscriber that never reads while 1,000 messages of 4 KB are sent, against
a real wizd: every send is answered (the publisher never waits for a reader),
a reading subscriber gets everything in order, the lazy one gets an unbroken
run of messages then events.lagged with its last seq and is dropped, and it
resumes from that seq with nothing missing.

Deterministic: 4 MB is far more than the lazy subscription's buffer (256
events) and its socket's buffers hold, whatever the machine's speed. What it
costs the others in time and memory is a figure: bench/fanout.py prints it.
"""

from __future__ import annotations

import threading
from typing import Any

from tests.events.helpers import channel, send_many
from tests.support.daemon import Wizd

MESSAGES = 1000
CONTENT = "z" * 4000


def test_a_subscriber_that_never_reads_hurts_nobody(wizd_factory: Any) -> None:
    w: Wizd = wizd_factory(env={"WIZ_SUBSCRIBER_BUFFER": "256"}).start()
    cid = channel(w)
    with w.connect() as lazy, w.connect() as reader, w.connect() as sender:
        lazy.call("events.subscribe", conversation_id=cid)  # ...and never reads
        sub = reader.call("events.subscribe", conversation_id=cid)["subscription"]
        seen: list[int] = []

        def read() -> None:
            while len(seen) < MESSAGES:
                note = reader.notification("message.created")
                assert note["params"]["subscription"] == sub
                seen.append(note["params"]["message"]["seq"])

        t = threading.Thread(target=read, daemon=True)
        t.start()
        sent = send_many(sender, cid, (f"{i} {CONTENT}" for i in range(MESSAGES)))
        t.join(timeout=60)
        assert seen == [m["seq"] for m in sent]  # the reading subscriber lost nothing
        assert w.call("daemon.status")["subscriptions"] == 1  # the lazy one was dropped
        # Reading at last: an unbroken run of messages, then events.lagged.
        seqs = []
        while (note := lazy.notification())["method"] != "events.lagged":
            assert note["method"] == "message.created"
            seqs.append(note["params"]["message"]["seq"])
        assert seqs == [m["seq"] for m in sent[:len(seqs)]] and len(seqs) < MESSAGES
        last = note["params"]["last_seq"]
        assert last == (seqs[-1] if seqs else sent[0]["seq"] - 1)
        # ...and resumes where it was dropped: the rest, exactly.
        lazy.call("events.subscribe", conversation_id=cid, after_seq=last)
        rest = [lazy.notification("message.created")["params"]["message"]
                for _ in range(MESSAGES - len(seqs))]
        assert seqs + [m["seq"] for m in rest] == [m["seq"] for m in sent]
