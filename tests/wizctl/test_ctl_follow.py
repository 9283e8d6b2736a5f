"""Following: resubscribe after a daemon restart or lag without gaps or
duplicates, and ``send --wait``. Against the scripted socket server."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_ctl_fakewizd import FakeWizd, Peer, running

from wizctl import follow
from wizctl.client import Client

ME = {"id": "u-me", "name": "me"}
ALICE = {"id": "a-1", "user_id": "u-alice", "name": "alice"}
DM = {"id": "dm-1", "type": "dm", "name": None, "participants": ["u-me", "u-alice"]}


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeWizd]:
    with running(tmp_path / "wizd.sock") as server:
        yield server


def msg(seq: int, content: str = "", author: str = "u-alice", **extra: Any) -> dict[str, Any]:
    return {"id": f"m{seq}", "seq": seq, "conversation_id": "dm-1", "author_id": author,
            "content": content or f"message {seq}", "kind": "text", "reply_to": None,
            "created_at": 1_700_000_000_000 + seq * 1000, **extra}


class Store:
    """Stored messages and a subscribe handler that replays them, like wizd."""

    def __init__(self, fake: FakeWizd, messages: list[dict[str, Any]]) -> None:
        self.messages = messages
        self.subs = 0
        self.peers: dict[Any, Peer] = {}
        fake.on("events.subscribe", fn=self.subscribe)
        fake.on("user.me", ME)
        fake.on("user.list", {"users": [ME, {"id": "u-alice", "name": "alice"}]})
        fake.on("agent.list", {"agents": [ALICE]})
        fake.on("dm.list", {"conversations": [DM]})
        fake.on("message.list", fn=self.list)

    def subscribe(self, params: dict[str, Any], peer: Peer) -> dict[str, Any]:
        self.subs += 1
        sub = f"s{self.subs}"
        self.peers[sub] = peer
        after = params.get("after_seq")
        if after is not None:
            # Replay one already-seen message too: the client must drop it.
            for m in self.messages:
                if m["seq"] >= after:
                    peer.notify("message.created", subscription=sub, message=m)
        return {"subscription": sub}

    def list(self, params: dict[str, Any], peer: Peer) -> dict[str, Any]:
        return {"messages": self.messages[-params.get("limit", 50):]}

    def live(self, sub: str, m: dict[str, Any]) -> None:
        self.messages.append(m)
        if sub in self.peers:
            self.peers[sub].notify("message.created", subscription=sub, message=m)


def seqs(notes: list[Any]) -> list[int]:
    return [n.params["message"]["seq"] for n in notes if n.method == "message.created"]


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


def test_tail_prints_history_then_follows_and_ctrl_c_is_exit_0(fake: FakeWizd) -> None:
    store = Store(fake, [msg(1), msg(2), msg(3)])
    out = StopAfter("message 4")

    def send_later(params: dict[str, Any], peer: Peer) -> dict[str, Any]:
        result = store.subscribe(params, peer)
        store.live(result["subscription"], msg(4))
        return result
    fake.on("events.subscribe", fn=send_later)
    code = follow.tail(lambda: Client(fake.path), "alice", limit=2, follow=True, json=False,
                       out=out, err=io.StringIO())
    assert code == 0
    lines = out.getvalue().splitlines()
    assert [line.split(": ", 1)[1] for line in lines] == ["message 2", "message 3", "message 4"]
    assert fake.calls("message.list")[0] == {"conversation_id": "dm-1", "limit": 2}
    assert fake.calls("events.subscribe") == [{"conversation_id": "dm-1", "after_seq": 3}]


def test_tail_json_is_one_object_per_line(fake: FakeWizd) -> None:
    Store(fake, [msg(1)])
    out = io.StringIO()
    follow.tail(lambda: Client(fake.path), "dm-1", limit=5, follow=False, json=True, out=out)
    assert out.getvalue().startswith('{"method":"message.created","params":{"message":{"id":"m1"')


def wait_setup(fake: FakeWizd, replies: list[dict[str, Any]], jobs: list[str],
               extra: list[tuple[str, dict[str, Any]]] = ()) -> Store:  # type: ignore[assignment]
    store = Store(fake, [msg(1), msg(2)])

    def send(params: dict[str, Any], peer: Peer) -> dict[str, Any]:
        sent = msg(3, params["content"], author="u-me")
        sub = f"s{store.subs}"
        store.live(sub, sent)
        for method, p in extra:
            peer.notify(method, subscription=sub, **p)
        for r in replies:
            store.live(sub, r)
        return {"message": sent, "jobs": jobs}
    fake.on("message.send", fn=send)
    return store


def delta(index: int, text: str) -> tuple[str, dict[str, Any]]:
    return ("message.delta", {"job_id": "j1", "conversation_id": "dm-1", "author_id": "u-alice",
                              "index": index, "delta": text})


def test_send_wait_subscribes_first_and_prints_the_reply(fake: FakeWizd) -> None:
    wait_setup(fake, [msg(4, "Hi there", reply_to="m3")], ["j1"],
               [delta(0, "Hi"), delta(1, " there")])
    out, err = io.StringIO(), io.StringIO()
    code = follow.send(lambda: Client(fake.path), "alice", "hello", wait=True, timeout=5,
                       json=False, out=out, err=err)
    assert (code, out.getvalue(), err.getvalue()) == (0, "Hi there\n", "")
    methods = [m for m, _ in fake.requests]
    assert methods.index("events.subscribe") < methods.index("message.send")
    assert fake.calls("events.subscribe") == [{"conversation_id": "dm-1", "after_seq": 2}]
    assert fake.calls("message.send") == [{"conversation_id": "dm-1", "content": "hello"}]


def test_send_wait_streams_on_a_terminal(fake: FakeWizd) -> None:
    wait_setup(fake, [msg(4, "Hi there", reply_to="m3")], ["j1"],
               [delta(0, "Hi"), delta(1, " there")])

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True
    out = Tty()
    follow.send(lambda: Client(fake.path), "alice", "hello", wait=True, timeout=5, json=False,
                out=out, err=io.StringIO())
    # streamed piece by piece, then erased and replaced by the stored reply
    assert out.getvalue() == "Hi there\r\x1b[JHi there\n"


def test_send_wait_error_reply_goes_to_stderr_and_exits_1(fake: FakeWizd) -> None:
    wait_setup(fake, [msg(4, "provider: HTTP 401", reply_to="m3", kind="error")], ["j1"])
    out, err = io.StringIO(), io.StringIO()
    code = follow.send(lambda: Client(fake.path), "alice", "hello", wait=True, timeout=5,
                       json=False, out=out, err=err)
    assert (code, out.getvalue()) == (1, "")
    assert err.getvalue() == "wizctl: alice: provider: HTTP 401\n"


def test_send_wait_times_out(fake: FakeWizd) -> None:
    wait_setup(fake, [], ["j1"])
    with pytest.raises(follow.WaitTimeout, match="no reply within 0.2 s"):
        follow.send(lambda: Client(fake.path), "alice", "hello", wait=True, timeout=0.2,
                    json=False, out=io.StringIO(), err=io.StringIO())


def test_send_wait_reports_a_job_that_failed_without_a_reply(
        fake: FakeWizd, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(follow, "_SETTLE", 0.05)
    job = {"id": "j1", "status": "failed", "failure_reason": "cancelled"}
    wait_setup(fake, [], ["j1"], [("job.updated", {"job": job})])
    err = io.StringIO()
    code = follow.send(lambda: Client(fake.path), "alice", "hello", wait=True, timeout=5,
                       json=False, out=io.StringIO(), err=err)
    assert code == 1
    assert err.getvalue() == "wizctl: job j1 failed: cancelled\n"


def test_send_wait_with_two_agents_waits_for_both_and_names_them(fake: FakeWizd) -> None:
    replies = [msg(4, "one", reply_to="m3"), msg(5, "unrelated"), msg(6, "two", author="u-me",
                                                                       reply_to="m3")]
    wait_setup(fake, replies, ["j1", "j2"])
    out = io.StringIO()
    follow.send(lambda: Client(fake.path), "alice", "hello", wait=True, timeout=5, json=False,
                out=out, err=io.StringIO())
    assert [line.split(" ", 1)[1] for line in out.getvalue().splitlines()] == [
        "alice: one", "me: two"]


def test_send_wait_json_prints_result_and_replies(fake: FakeWizd) -> None:
    wait_setup(fake, [msg(4, "Hi", reply_to="m3")], ["j1"])
    out = io.StringIO()
    follow.send(lambda: Client(fake.path), "alice", "hello", wait=True, timeout=5, json=True,
                out=out, err=io.StringIO())
    import json
    doc = json.loads(out.getvalue())
    assert doc["jobs"] == ["j1"] and doc["replies"][0]["content"] == "Hi"


def test_send_without_agents_to_reply_does_not_wait(fake: FakeWizd) -> None:
    wait_setup(fake, [], [])
    err = io.StringIO()
    code = follow.send(lambda: Client(fake.path), "alice", "hello", wait=True, timeout=5,
                       json=False, out=io.StringIO(), err=err)
    assert code == 0 and "no agent was triggered" in err.getvalue()


def test_send_without_wait_does_not_subscribe(fake: FakeWizd) -> None:
    wait_setup(fake, [], ["j1"])
    out = io.StringIO()
    assert follow.send(lambda: Client(fake.path), "alice", "hi", wait=False, timeout=5,
                       json=False, out=out) == 0
    assert fake.calls("events.subscribe") == []
    assert out.getvalue() == "sent m3 to @alice; 1 agent will reply\n"


# -- which messages answer which jobs (pure) -------------------------------------

def test_replies_match_by_reply_to_and_author() -> None:
    state = follow.Replies("m3", ["j1", "j2"], agent_user={"a-1": "u-alice"}.get)
    assert state.on_job({"id": "j1", "status": "waiting", "data": {"agent_id": "a-1"}}) == []
    assert state.on_message(msg(4, "unrelated")) is None
    assert state.on_message(msg(5, "from bob", author="u-bob", reply_to="m3")) == [
        msg(5, "from bob", author="u-bob", reply_to="m3")]
    assert not state.done  # j2 (agent unknown) took bob's reply; j1 waits for alice
    state.on_message(msg(6, "from alice", reply_to="m3"))
    assert state.done and set(state.answers) == {"j1", "j2"}


def test_an_error_without_reply_to_answers_the_failed_job_of_its_agent() -> None:
    state = follow.Replies("m3", ["j1"], agent_user={"a-1": "u-alice"}.get)
    state.on_job({"id": "j1", "status": "active", "data": {"agent_id": "a-1"}})
    error = msg(7, "could not reply", kind="error")
    assert state.on_message(error) == []  # held until the job is known to have failed
    assert not state.done
    assert state.on_job({"id": "j1", "status": "failed", "data": {"agent_id": "a-1"}}) == [error]
    assert state.done


def test_a_failed_job_waits_for_its_error_message() -> None:
    state = follow.Replies("m3", ["j1"], agent_user=lambda a: None)
    assert state.on_delta({"job_id": "j1", "author_id": "u-alice"})
    assert not state.on_delta({"job_id": "other", "author_id": "u-alice"})
    assert state.on_job({"id": "j1", "status": "failed"}) == []
    assert state.unanswered() == [{"id": "j1", "status": "failed"}]
    error = msg(8, "nope", kind="error")
    assert state.on_message(error) == [error] and state.done


def test_send_wait_with_wizd_style_error_message(fake: FakeWizd) -> None:
    job = {"id": "j1", "status": "failed", "data": {"agent_id": "a-1"}, "failure_reason": "x"}
    wait_setup(fake, [msg(4, "Agent alice could not reply", kind="error")], ["j1"],
               [("job.updated", {"job": job})])
    out, err = io.StringIO(), io.StringIO()
    code = follow.send(lambda: Client(fake.path), "alice", "hello", wait=True, timeout=5,
                       json=False, out=out, err=err)
    assert (code, out.getvalue()) == (1, "")
    assert err.getvalue() == "wizctl: alice: Agent alice could not reply\n"
