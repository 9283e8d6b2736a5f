"""Following: resubscribe after a daemon restart or lag without gaps or
duplicates, for ``tail -f`` and ``events``. Against the scripted socket server,
for what a real wizd does not do on demand: replaying a message the client has
already seen, lag, a wizd without ``last_seq``, and the exact backoff delays.
``tail -f`` across real restarts is in tests/e2e/test_wizctl.py."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from tests.wizctl.fakewizd import FakeWizd, Peer
from tests.wizctl.scripted_dm import Store, msg, seqs
from wizctl import follow
from wizctl.client import Client


def test_follower_resumes_after_a_restart_without_gap_or_duplicate(fake: FakeWizd) -> None:
    store = Store(fake, [msg(1), msg(2), msg(3)])
    delays: list[float] = []

    def sleep(delay: float) -> None:
        delays.append(delay)
        if len(delays) == 3:  # the daemon is back after three failed attempts
            store.messages.append(msg(5))  # stored while we were away
            fake.start()

    follower = Follower = follow.Follower(lambda: Client(fake.path, timeout=2),
                                          conversation_id="dm-1", after_seq=2, sleep=sleep)
    Follower.start()
    got = [follower.next(timeout=2)]
    store.live("s1", msg(4))
    got.append(follower.next(timeout=2))
    fake.stop()
    got.append(follower.next(timeout=5))
    assert seqs(got) == [3, 4, 5]
    assert follower.next(timeout=0.05) is None
    assert delays == [0.1, 0.2, 0.4]
    subscribes = fake.calls("events.subscribe")
    assert subscribes[-1] == {"conversation_id": "dm-1", "after_seq": 4}
    follower.close()


def test_backoff_is_capped_at_two_seconds(fake: FakeWizd) -> None:
    store = Store(fake, [msg(1)])
    delays: list[float] = []

    def sleep(delay: float) -> None:
        delays.append(delay)
        if len(delays) == 8:
            store.messages.append(msg(2))
            fake.start()
    follower = follow.Follower(lambda: Client(fake.path), after_seq=0, sleep=sleep).start()
    assert seqs([follower.next()]) == [1]
    fake.stop()
    assert seqs([follower.next()]) == [2]
    assert delays == [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0]
    follower.close()


def test_lagged_resubscribes_after_the_last_seq_and_ignores_the_old_subscription(
        fake: FakeWizd) -> None:
    store = Store(fake, [msg(1)])
    follower = follow.Follower(lambda: Client(fake.path), conversation_id="dm-1",
                               after_seq=1).start()
    store.live("s1", msg(2))
    assert seqs([follower.next(timeout=2)]) == [2]
    store.messages.append(msg(3))
    store.peers["s1"].notify("events.lagged", subscription="s1", last_seq=2)
    store.peers["s1"].notify("message.created", subscription="s1", message=msg(9))  # stale sub
    lagged = follower.next(timeout=2)
    assert lagged is not None and lagged.method == "events.lagged"
    assert fake.calls("events.subscribe")[-1]["after_seq"] == 2
    assert seqs([follower.next(timeout=2)]) == [3]
    assert follower.next(timeout=0.05) is None
    follower.close()


class StopAfter(io.StringIO):
    """An output that interrupts (like Ctrl-C) once it has printed ``text``."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def write(self, s: str) -> int:
        n = super().write(s)
        if self.text in self.getvalue():
            raise KeyboardInterrupt
        return n


def test_events_resumes_exactly_after_a_restart_before_any_message(
        fake: FakeWizd, monkeypatch: pytest.MonkeyPatch) -> None:
    """events starts after daemon.status's last_seq, so a message stored while
    the daemon was away is printed once, even though none had been seen."""
    monkeypatch.setattr(follow, "FIRST_DELAY", 0.01)
    store = Store(fake, [msg(1), msg(2), msg(3)])

    def subscribe(params: dict[str, Any], peer: Peer) -> dict[str, Any]:
        result = store.subscribe(params, peer)  # replays m3, which events must drop
        if store.subs == 1:
            peer.notify("agent.status", subscription="s1", agent_id="a-1", status="busy")
        else:
            store.live(result["subscription"], msg(5))  # a live one after the restart
        return result
    fake.on("events.subscribe", fn=subscribe)

    class Restart(StopAfter):
        def write(self, s: str) -> int:
            n = super().write(s)
            if '"agent.status"' in s:  # seen an event, but no message yet
                fake.stop()
                store.messages.append(msg(4))  # stored while wizd was away
                fake.start()
            return n
    out, err = Restart("message 5"), io.StringIO()
    with pytest.raises(KeyboardInterrupt):
        follow.events(lambda: Client(fake.path), json=True, out=out, err=err)
    notes = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [n["method"] for n in notes] == ["agent.status", "message.created", "message.created"]
    assert [n["params"]["message"]["seq"] for n in notes[1:]] == [4, 5]
    assert fake.calls("daemon.status") == [{}]
    assert fake.calls("events.subscribe") == [{"after_seq": 3}, {"after_seq": 3}]
    assert err.getvalue() == ("wizctl: lost the connection to wizd; reconnecting\n"
                              "wizctl: reconnected\n")


def test_events_with_a_wizd_that_gives_no_last_seq_is_live_only(fake: FakeWizd) -> None:
    store = Store(fake, [msg(1)])
    fake.on("daemon.status", {"version": "old"})

    def subscribe(params: dict[str, Any], peer: Peer) -> dict[str, Any]:
        result = store.subscribe(params, peer)
        store.live(result["subscription"], msg(2))
        return result
    fake.on("events.subscribe", fn=subscribe)
    with pytest.raises(KeyboardInterrupt):
        follow.events(lambda: Client(fake.path), json=True, out=StopAfter("message 2"))
    assert fake.calls("events.subscribe") == [{}]
