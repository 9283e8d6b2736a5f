"""``send --wait``: which messages answer the jobs a message triggered, and what
is printed. Against the scripted socket server (the order of the calls, and
error messages of shapes today's wizd does not store), and pure. Replies,
errors, timeouts, several agents and streaming on a terminal against a real
wizd are in tests/e2e/test_wizctl.py and test_wizctl_chat.py."""

from __future__ import annotations

import io
from typing import Any

import pytest

from tests.wizctl.fakewizd import FakeWizd, Peer
from tests.wizctl.scripted_dm import Store, msg
from wizctl import replies
from wizctl.client import Client

Note = tuple[str, dict[str, Any]]


def wait_setup(fake: FakeWizd, answers: list[dict[str, Any]], jobs: list[str],
               extra: list[Note] = (), then: list[Note] = ()) -> Store:  # type: ignore[assignment]
    """message.send stores the sent message (m3), notifies ``extra``, stores
    ``answers``, then notifies ``then``; all before its response, like a fast wizd."""
    store = Store(fake, [msg(1), msg(2)])

    def send(params: dict[str, Any], peer: Peer) -> dict[str, Any]:
        sent = msg(3, params["content"], author="u-me")
        sub = f"s{store.subs}"
        store.live(sub, sent)
        for method, p in extra:
            peer.notify(method, subscription=sub, **p)
        for r in answers:
            store.live(sub, r)
        for method, p in then:
            peer.notify(method, subscription=sub, **p)
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
    code = replies.send(lambda: Client(fake.path), "alice", "hello", wait=True, timeout=5,
                       json=False, out=out, err=err)
    assert (code, out.getvalue(), err.getvalue()) == (0, "Hi there\n", "")
    methods = [m for m, _ in fake.requests]
    assert methods.index("events.subscribe") < methods.index("message.send")
    assert fake.calls("events.subscribe") == [{"conversation_id": "dm-1", "after_seq": 2}]
    assert fake.calls("message.send") == [{"conversation_id": "dm-1", "content": "hello"}]


def test_send_wait_reports_a_job_that_failed_without_a_reply(
        fake: FakeWizd, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(replies, "_SETTLE", 0.05)
    job = {"id": "j1", "status": "failed", "failure_reason": "cancelled"}
    wait_setup(fake, [], ["j1"], [("job.updated", {"job": job})])
    err = io.StringIO()
    code = replies.send(lambda: Client(fake.path), "alice", "hello", wait=True, timeout=5,
                       json=False, out=io.StringIO(), err=err)
    assert code == 1
    assert err.getvalue() == "wizctl: job j1 failed: cancelled\n"


def test_send_without_wait_does_not_subscribe(fake: FakeWizd) -> None:
    wait_setup(fake, [], ["j1"])
    out = io.StringIO()
    assert replies.send(lambda: Client(fake.path), "alice", "hi", wait=False, timeout=5,
                       json=False, out=out) == 0
    assert fake.calls("events.subscribe") == []
    assert out.getvalue() == "sent m3 to @alice; 1 agent will reply\n"


# -- which messages answer which jobs (pure) -------------------------------------

def test_replies_match_by_reply_to_and_author() -> None:
    state = replies.Replies("m3", ["j1", "j2"], agent_user={"a-1": "u-alice"}.get)
    assert state.on_job({"id": "j1", "status": "waiting", "data": {"agent_id": "a-1"}}) == []
    assert state.on_message(msg(4, "unrelated")) is None
    assert state.on_message(msg(5, "from bob", author="u-bob", reply_to="m3")) == [
        msg(5, "from bob", author="u-bob", reply_to="m3")]
    assert not state.done  # j2 (agent unknown) took bob's reply; j1 waits for alice
    state.on_message(msg(6, "from alice", reply_to="m3"))
    assert state.done and set(state.answers) == {"j1", "j2"}


def test_an_error_without_reply_to_answers_the_failed_job_of_its_agent() -> None:
    state = replies.Replies("m3", ["j1"], agent_user={"a-1": "u-alice"}.get)
    state.on_job({"id": "j1", "status": "active", "data": {"agent_id": "a-1"}})
    error = msg(7, "could not reply", kind="error")
    assert state.on_message(error) == []  # held until the job is known to have failed
    assert not state.done
    assert state.on_job({"id": "j1", "status": "failed", "data": {"agent_id": "a-1"}}) == [error]
    assert state.done


def test_a_failed_job_waits_for_its_error_message() -> None:
    state = replies.Replies("m3", ["j1"], agent_user=lambda a: None)
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
    code = replies.send(lambda: Client(fake.path), "alice", "hello", wait=True, timeout=5,
                       json=False, out=out, err=err)
    assert (code, out.getvalue()) == (6, "")  # 6: a provider error
    assert err.getvalue() == "wizctl: alice: Agent alice could not reply\n"


def test_an_error_with_reply_to_answers_its_job_at_once() -> None:
    state = replies.Replies("m3", ["j1", "j2"], agent_user={"a-1": "u-alice"}.get)
    state.on_job({"id": "j1", "status": "active", "data": {"agent_id": "a-1"}})
    error = msg(7, "Agent alice could not reply: HTTP 401.", kind="error", reply_to="m3")
    assert state.on_message(error) == [error]
    assert state.answers == {"j1": error}  # alice's job, not the one of an unknown agent
    assert state.on_job({"id": "j1", "status": "failed", "data": {"agent_id": "a-1"}}) == []
    assert not state.done and state.unanswered() == []


def test_send_wait_with_an_error_reply_and_a_reply(fake: FakeWizd) -> None:
    """wizd stores a failed job's error message with reply_to, then says the job
    failed; the other agent's reply still comes, and both are shown."""
    failed = {"id": "j1", "status": "failed", "data": {"agent_id": "a-1"},
              "failure_reason": "HTTP 401"}
    done = {"id": "j2", "status": "completed", "data": {"agent_id": "a-2"}}
    answers = [msg(4, "Agent alice could not reply: the provider refused the key.",
                   kind="error", reply_to="m3"),
               msg(5, "hello from bob", author="u-bob", reply_to="m3")]
    wait_setup(fake, answers, ["j1", "j2"],
               then=[("job.updated", {"job": failed}), ("job.updated", {"job": done})])
    out, err = io.StringIO(), io.StringIO()
    code = replies.send(lambda: Client(fake.path), "alice", "hello", wait=True, timeout=5,
                        json=False, out=out, err=err)
    assert code == 6
    assert [line.split(" ", 1)[1] for line in out.getvalue().splitlines()] == [
        "bob: hello from bob"]
    assert err.getvalue() == (
        "wizctl: alice: Agent alice could not reply: the provider refused the key.\n")
