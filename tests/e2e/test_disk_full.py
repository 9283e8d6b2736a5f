"""A disk that fills up under a running wizd (a small tmpfs holds its
database): writes answer -32004 in plain words, nothing is logged with a
traceback, and once space is freed the replies that were waiting are stored
and new ones flow, without a restart. Root only (mounts)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_replies import setup_dm, subscribed, wait_job
from tests.support.daemon import RpcFailure, Wizd, wait_for
from tests.support.openai_server import Reply, ThreadedOpenAIServer, openai_server_in_thread
from tests.support.tmpfs import fill, tmpfs


@pytest.fixture
def srv() -> Iterator[ThreadedOpenAIServer]:
    with openai_server_in_thread() as server:
        yield server


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
def test_replies_resume_without_a_restart_once_space_is_freed(
    tmp_path: Path, srv: ThreadedOpenAIServer, backend: str
) -> None:
    base = tmp_path / "wizd"
    w = Wizd(base, env={"WIZ_BACKEND": backend})
    with tmpfs(base / "data", "8m") as disk:
        try:
            w.start()
            assert w.proc is not None
            pid = w.proc.pid
            agent, dm = setup_dm(w, srv)
            srv.enqueue(Reply(hang=True))
            with subscribed(w, dm) as conn, w.connect() as canceller:
                [first] = conn.call("message.send", conversation_id=dm, content="first")["jobs"]
                srv.wait_for_requests(1)
                # Queued behind the first: the same conversation and agent.
                [second] = conn.call("message.send", conversation_id=dm,
                                     content="second")["jobs"]
                filler = fill(disk)

                with pytest.raises(RpcFailure) as full:
                    conn.call("message.send", conversation_id=dm, content="never stored")
                assert (full.value.code, full.value.message) == (
                    -32004, "storage unavailable: disk full")
                assert full.value.data == {"cause": "disk full"}

                # The first reply is cancelled; that outcome cannot be stored
                # either, so its worker keeps trying and the second waits.
                canceller.send({"jsonrpc": "2.0", "id": 1, "method": "job.cancel",
                                "params": {"id": first}})
                wait_for(lambda: "could not record" in w.log_text())
                assert conn.call("job.get", id=second)["status"] == "waiting"

                filler.unlink()
                cancelled = canceller.response(1)["result"]
                assert (cancelled["status"], cancelled["failure_reason"]) == (
                    "failed", "cancelled")
                wait_job(conn, second, "completed")
                [third] = conn.call("message.send", conversation_id=dm, content="third")["jobs"]
                wait_job(conn, third, "completed")
            contents = [m["content"] for m in
                        w.call("message.list", conversation_id=dm)["messages"]]
            assert contents == ["first", "second",
                                "Agent ada did not reply: the reply was cancelled.",
                                "echo: second", "third", "echo: third"]
            assert w.call("agent.get", id=agent["id"])["status"] == "active"
            assert w.proc.pid == pid  # the same process all along
            assert w.stop() == 0
        finally:
            w.close()
    log = w.log_text()
    assert "Traceback" not in log and "internal error" not in log, log
    # One line for the failing writes, not one per request.
    assert log.count("storage unavailable: disk full") <= 3, log
