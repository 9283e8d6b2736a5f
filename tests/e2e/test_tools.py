"""Tool calls end to end: a real wizd, the test MCP server as its subprocess,
the scripted OpenAI-compatible server on a thread, and a ``kill -9`` between
a tool call's end and the model's next answer."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from tests.e2e.test_replies import replies_in, subscribed, wait_job
from tests.e2e.test_wizctl import ok, wizctl
from tests.mcp.helpers import server_command
from tests.support.openai_server import Call, Reply, openai_server_in_thread

SECRET = "mcp-secret-NEVER-STORED-5521"


def test_kill_9_after_a_tool_call_then_restart_runs_it_once_and_replies_once(
        tmp_path: Path, wizd_factory: Any) -> None:
    with openai_server_in_thread() as srv:
        w = wizd_factory(env={"WIZ_TOOLS_SECRET": SECRET}).start()
        w.call("mcp.add", name="t", command=server_command(tmp_path),
               env={"WIZ_TEST_SECRET": "WIZ_TOOLS_SECRET"})
        provider = w.call("provider.create", name="local", type="openai",
                          default_model="gpt-test", base_url=srv.base_url, api_key="sk-x")
        agent = w.call("agent.create", name="ada", role="r", backstory="b", goal="g",
                       provider_id=provider["id"])
        ok(wizctl(w, "agent", "update", "ada", "--tools", "t.count,t.secret"))
        dm = w.call("dm.create", participants=[agent["id"]])["id"]
        srv.enqueue(Reply(tool_calls=[Call("t__count", id="c1"), Call("t__secret", id="c2")]),
                    Reply(hang=True),  # the model's next answer never comes: wizd dies first
                    Reply(text="Counted once."))
        [job_id] = w.call("message.send", conversation_id=dm, content="count")["jobs"]
        second = srv.wait_for_requests(2)[1]
        assert [m["content"] for m in second.body["messages"] if m["role"] == "tool"] == [
            "1", f"set, {len(SECRET)} characters"]
        w.kill()

        w.start()
        with subscribed(w, dm) as conn:
            done = wait_job(conn, job_id, "completed")
        assert (tmp_path / "counter").read_text() == "x\n"  # the tool ran exactly once
        assert [r["content"] for r in replies_in(w, dm, agent)] == ["Counted once."]
        assert done["result"]["message_id"] == replies_in(w, dm, agent)[0]["id"]
        third = srv.requests[2]
        assert [m["role"] for m in third.body["messages"]] == [
            "system", "user", "assistant", "tool", "tool"]

        steps = w.call("job.get", id=job_id)["steps"]
        assert [(s["step"], s["role"], s["state"]) for s in steps] == [
            (1, "assistant", None), (1, "tool", "done"), (1, "tool", "done")]
        shown = ok(wizctl(w, "job", "show", job_id))
        assert "step 1: calls t__count({}), t__secret({})" in shown
        assert "  t.count: 1" in shown

        # send --wait: the answer on stdout, each call on stderr as it runs.
        srv.enqueue(Reply(tool_calls=[Call("t__secret")]), Reply(text="Still secret."))
        sent = wizctl(w, "send", "ada", "again", "--wait")
        assert (sent.returncode, sent.stdout) == (0, "Still secret.\n"), sent.stderr
        started, finished = sent.stderr.splitlines()
        assert started == "  → t.secret {}"
        assert finished.startswith("  ← t.secret ")
        assert finished.endswith(f" ms: set, {len(SECRET)} characters")

        # A tool marked confirm: the job waits until `wizctl approve`.
        w.call("mcp.add", name="c", command=server_command(tmp_path), confirm=["count"])
        ok(wizctl(w, "agent", "update", "ada", "--tools", "c.*"))
        srv.enqueue(Reply(tool_calls=[Call("c__count")]), Reply(text="Approved, counted."))
        with subscribed(w, dm) as conn:
            [job_id] = conn.call("message.send", conversation_id=dm, content="c")["jobs"]
            asked = conn.notification("tool.approval_requested")["params"]
            assert (asked["job_id"], asked["name"]) == (job_id, "c.count")
            assert wait_job(conn, job_id, "waiting")["failure_reason"].startswith(
                "waiting for approval: c.count")
            assert (tmp_path / "counter").read_text() == "x\n"
            assert ok(wizctl(w, "approve", job_id[:8])) == f"approved: job {job_id[:8]} goes on\n"
            wait_job(conn, job_id, "completed")
        assert (tmp_path / "counter").read_text() == "x\nx\n"
        assert replies_in(w, dm, agent)[-1]["content"] == "Approved, counted."
        denied = wizctl(w, "deny", job_id)
        assert denied.returncode != 0 and "is not waiting for an approval" in denied.stderr

        with sqlite3.connect(w.db) as db:
            rows = [repr(r) for t in ("jobs", "messages", "llm_messages", "mcp_servers")
                    for r in db.execute(f"SELECT * FROM {t}")]
        assert not any(SECRET in r for r in rows)
        assert SECRET not in w.log_text()
