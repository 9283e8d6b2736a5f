"""SIGTERM with a job in flight: requeued at once, or finished within the grace period."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from tests.support.daemon import Conn, Wizd, wait_for
from tests.support.openai_server import Reply, ThreadedOpenAIServer, openai_server_in_thread


def converse(c: Conn, srv: ThreadedOpenAIServer) -> tuple[str, dict[str, Any]]:
    """An agent on the scripted server, a DM with it, and a message: (dm id, send result)."""
    provider = c.call("provider.create", name="scripted", type="openai", base_url=srv.base_url,
                      default_model="gpt-test", api_key="sk-test-0000", is_default=True)
    c.call("agent.create", name="ada", role="tester", backstory="b", goal="g",
           provider_id=provider["id"])
    dm = c.call("dm.create", participants=["ada"])
    return dm["id"], c.call("message.send", conversation_id=dm["id"], content="hello")


def replies(w: Wizd, dm: str, trigger: str) -> list[dict[str, Any]]:
    return [m for m in w.call("message.list", conversation_id=dm)["messages"]
            if m["reply_to"] == trigger]


def test_sigterm_mid_job_requeues_it_and_the_reply_comes_once_after_restart(wizd: Wizd) -> None:
    with openai_server_in_thread() as srv:
        srv.enqueue(Reply(hang=True))
        with wizd.connect() as c:
            dm, sent = converse(c, srv)
        srv.wait_for_requests(1)
        assert wizd.stop() == 0
        assert not wizd.socket.exists()
        srv.enqueue(Reply(text="the one reply"))
        wizd.start()
        job_id = sent["jobs"][0]
        job = wait_for(lambda: (j := wizd.call("job.get", id=job_id))["status"] == "completed"
                       and j)
        assert job["attempts"] == 1  # the interrupted attempt was given back
        assert [m["content"] for m in replies(wizd, dm, sent["message"]["id"])] == [
            "the one reply"]
        assert len(srv.requests) == 2


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
def test_the_grace_period_lets_a_running_job_finish(wizd_factory: type[Wizd],
                                                    backend: str) -> None:
    w = wizd_factory(extra_args=["--shutdown-grace", "20", "--backend", backend]).start()
    with openai_server_in_thread() as srv:
        srv.enqueue(Reply(text="finished in time", held=True))
        with w.connect() as c:
            dm, sent = converse(c, srv)
        srv.wait_for_requests(1)
        with w.connect() as open_conn:
            assert w.proc is not None
            w.proc.send_signal(signal.SIGTERM)
            wait_for(lambda: not w.socket.exists(), timeout=10)
            assert w.proc.poll() is None  # still finishing the job ...
            with pytest.raises(FileNotFoundError):  # ... refusing newcomers ...
                Conn(w.socket)
            # ... and serving the connections it has.
            assert open_conn.call("daemon.status")["queue"]["active"] == 1
            srv.release()  # the reply comes within the grace period
        assert w.proc.wait(timeout=30) == 0
        w.proc = None
        w.start()
        job = w.call("job.get", id=sent["jobs"][0])
        assert (job["status"], job["attempts"]) == ("completed", 1)
        assert len(replies(w, dm, sent["message"]["id"])) == 1
        assert len(srv.requests) == 1  # finished, not redone
