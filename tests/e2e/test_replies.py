"""Agent replies end to end: a real wizd process, its Unix socket, and a real
OpenAI-compatible HTTP server on a thread, through kills and restarts."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import Conn, RpcFailure, Wizd
from tests.support.openai_server import Reply, ThreadedOpenAIServer, openai_server_in_thread

SECRET = "sk-e2e-NEVER-IN-JOBS-7731"


@pytest.fixture
def srv() -> Iterator[ThreadedOpenAIServer]:
    with openai_server_in_thread() as server:
        yield server


@pytest.fixture(params=["trio", "asyncio"])
def daemon(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Wizd]:
    """A wizd on each backend (asyncio runs the database through aiosqlite)."""
    # Fast retries, so a retry in these tests costs milliseconds.
    w = Wizd(tmp_path / "wizd", env={"WIZ_BACKOFF_BASE": "0.01", "WIZ_BACKOFF_CAP": "0.05",
                                     "WIZ_BACKEND": request.param})
    try:
        yield w.start()
    finally:
        w.close()


def setup_dm(w: Wizd, srv: ThreadedOpenAIServer) -> tuple[dict[str, Any], str]:
    provider = w.call("provider.create", name="local", type="openai", default_model="gpt-test",
                      base_url=srv.base_url, api_key=SECRET)
    agent = w.call("agent.create", name="ada", role="Researcher", backstory="b", goal="g",
                   provider_id=provider["id"])
    dm = w.call("dm.create", participants=[agent["id"]])
    return agent, dm["id"]


def subscribed(w: Wizd, conversation_id: str) -> Conn:
    conn = w.connect()
    conn.call("events.subscribe", conversation_id=conversation_id)
    return conn


def wait_job(conn: Conn, job_id: str, *statuses: str) -> dict[str, Any]:
    """The job once in one of ``statuses``; ``conn`` is subscribed already, so
    looking first and then listening leaves no gap."""
    job = conn.call("job.get", id=job_id)
    if job["status"] in statuses:
        return dict(job)
    while True:
        job = conn.notification("job.updated")["params"]["job"]
        if job["id"] == job_id and job["status"] in statuses:
            return job


def replies_in(w: Wizd, dm: str, agent: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in w.call("message.list", conversation_id=dm)["messages"]
            if m["author_id"] == agent["user_id"]]


def job_rows(db: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT id, status, attempts, data, result, failure_reason "
                            "FROM jobs ORDER BY created_at").fetchall()


def test_a_reply_over_the_socket(daemon: Wizd, srv: ThreadedOpenAIServer) -> None:
    agent, dm = setup_dm(daemon, srv)
    srv.enqueue(Reply(text="Hi, I am Ada."))
    with subscribed(daemon, dm) as conn:
        sent = conn.call("message.send", conversation_id=dm, content="hello")
        [job_id] = sent["jobs"]
        deltas, reply = conn.streamed_reply(agent["user_id"])
        done = wait_job(conn, job_id, "completed")
    assert reply["reply_to"] == sent["message"]["id"] and reply["content"] == "Hi, I am Ada."
    assert "".join(deltas) == reply["content"]
    assert done["result"]["message_id"] == reply["id"]
    assert daemon.call("job.get", id=job_id)["status"] == "completed"
    [request] = srv.requests
    assert [m["role"] for m in request.body["messages"]] == ["system", "user"]
    assert request.body["messages"][1]["content"] == "hello"
    assert daemon.call("agent.get", id=agent["id"])["status"] == "active"
    # Job data holds references only; the key is in no job and in no log line.
    [row] = job_rows(daemon.db)
    assert SECRET not in repr(row)
    assert set(done["data"]) == {"conversation_id", "message_id", "agent_id"}
    assert SECRET not in daemon.log_text()


def test_kill_9_during_the_llm_call_then_restart_replies_once(
    daemon: Wizd, srv: ThreadedOpenAIServer
) -> None:
    agent, dm = setup_dm(daemon, srv)
    srv.enqueue(Reply(hang=True))
    [job_id] = daemon.call("message.send", conversation_id=dm, content="hello")["jobs"]
    srv.wait_for_requests(1)
    daemon.kill()
    [(_, status, attempts, *_)] = job_rows(daemon.db)
    assert (status, attempts) == ("active", 1)  # what the dead daemon left behind

    daemon.start()
    with subscribed(daemon, dm) as conn:
        done = wait_job(conn, job_id, "completed")
    assert done["attempts"] == 1  # the interrupted attempt was given back
    assert [r["content"] for r in replies_in(daemon, dm, agent)] == ["echo: hello"]
    srv.wait_idle()

    # Killed again after the reply committed: nothing runs twice.
    daemon.kill()
    daemon.start()
    assert daemon.call("daemon.status")["queue"]["completed"] == 1
    assert len(srv.requests) == 2
    assert len(replies_in(daemon, dm, agent)) == 1


def test_sigterm_mid_job_requeues_it_without_losing_an_attempt(
    daemon: Wizd, srv: ThreadedOpenAIServer
) -> None:
    agent, dm = setup_dm(daemon, srv)
    srv.enqueue(Reply(hang=True))
    [job_id] = daemon.call("message.send", conversation_id=dm, content="hello")["jobs"]
    srv.wait_for_requests(1)
    assert daemon.stop() == 0
    [(_, status, attempts, *_)] = job_rows(daemon.db)
    assert (status, attempts) == ("waiting", 0)
    srv.wait_idle()  # the daemon hung up on the provider on its way out

    daemon.start()
    with subscribed(daemon, dm) as conn:
        done = wait_job(conn, job_id, "completed")
    assert done["attempts"] == 1
    assert [r["content"] for r in replies_in(daemon, dm, agent)] == ["echo: hello"]


def test_cancel_retry_pause_and_resume_over_rpc(daemon: Wizd, srv: ThreadedOpenAIServer) -> None:
    agent, dm = setup_dm(daemon, srv)
    srv.enqueue(Reply(hang=True))
    [job_id] = daemon.call("message.send", conversation_id=dm, content="first")["jobs"]
    srv.wait_for_requests(1)
    cancelled = daemon.call("job.cancel", id=job_id)
    assert (cancelled["status"], cancelled["failure_reason"]) == ("failed", "cancelled")
    with pytest.raises(RpcFailure) as conflict:
        daemon.call("job.cancel", id=job_id)
    assert conflict.value.code == -32002
    with pytest.raises(RpcFailure) as missing:
        daemon.call("job.get", id="no-such-job")
    assert missing.value.code == -32001
    assert daemon.call("agent.get", id=agent["id"])["status"] == "active"

    # Paused, across a restart: nothing starts.
    assert daemon.call("queue.pause") == {"paused": True}
    retried = daemon.call("job.retry", id=job_id)
    assert (retried["status"], retried["attempts"]) == ("paused", 0)
    daemon.stop()
    daemon.start()
    assert daemon.call("job.get", id=job_id)["status"] == "paused"
    assert [j["id"] for j in daemon.call("job.list", status="paused")["jobs"]] == [job_id]
    assert len(srv.requests) == 1

    with subscribed(daemon, dm) as conn:
        assert conn.call("queue.resume") == {"paused": False}
        done = wait_job(conn, job_id, "completed")
    assert done["attempts"] == 1
    contents = [m["content"] for m in daemon.call("message.list", conversation_id=dm)["messages"]]
    assert contents == ["first", "Agent ada did not reply: the reply was cancelled.", "echo: first"]


def test_a_rejected_key_is_reported_once_in_plain_words(
    daemon: Wizd, srv: ThreadedOpenAIServer
) -> None:
    agent, dm = setup_dm(daemon, srv)
    srv.enqueue(Reply(status=401, error=f"Incorrect API key provided: {SECRET}"))
    with subscribed(daemon, dm) as conn:
        [job_id] = conn.call("message.send", conversation_id=dm, content="hello")["jobs"]
        failed = wait_job(conn, job_id, "failed")
    assert failed["attempts"] == 1 and len(srv.requests) == 1
    [error] = replies_in(daemon, dm, agent)
    assert (error["kind"], error["content"]) == (
        "error", "Agent ada could not reply: the provider rejected the API key (HTTP 401).")
    assert daemon.call("agent.get", id=agent["id"])["status"] == "active"
    assert SECRET not in repr(job_rows(daemon.db)) and SECRET not in daemon.log_text()


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [0.0, 0.015, 0.03, 0.06])
def test_kill_9_at_any_moment_of_a_reply_leaves_exactly_one(
    daemon: Wizd, srv: ThreadedOpenAIServer, kill_after: float
) -> None:
    """The server answers 20 ms after the request, so the kill lands before,
    during or after the reply's completion transaction. The pause only spreads
    the moment of the kill; the outcome must be the same at any moment."""
    agent, dm = setup_dm(daemon, srv)
    srv.enqueue(Reply(text="only once", delay=0.02))
    [job_id] = daemon.call("message.send", conversation_id=dm, content="hello")["jobs"]
    srv.wait_for_requests(1)
    time.sleep(kill_after)
    daemon.kill()
    daemon.start()
    with subscribed(daemon, dm) as conn:
        wait_job(conn, job_id, "completed")
    replies = replies_in(daemon, dm, agent)
    assert len(replies) == 1 and replies[0]["kind"] == "text"
    [(_, status, *_)] = job_rows(daemon.db)
    assert status == "completed"
