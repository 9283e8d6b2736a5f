"""Retention in a real wizd (issue 10): finished jobs beyond the newest
``keep_finished_jobs`` are pruned by the daemon's periodic task; job.get then
says the job was pruned, job.list pages what is left, daemon.status counts it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.daemon import RpcFailure, wait_for

from .shared import private_wizd


def test_a_pruned_reply_job_is_reported_as_pruned(tmp_path: Path) -> None:
    w = private_wizd(tmp_path, env={"WIZ_KEEP_FINISHED_JOBS": "1",
                                    "WIZ_PRUNE_INTERVAL": "0.05"})
    w.start()
    try:
        with w.connect() as c:
            agent = c.call("agent.create", name="ada", role="r", backstory="b", goal="g")
            dm = c.call("dm.create", participants=[agent["id"]])["id"]
            c.call("events.subscribe", conversation_id=dm)
            jobs = [c.call("message.send", conversation_id=dm, content=f"hi {i}")["jobs"][0]
                    for i in range(3)]
            replies = 0
            while replies < 3:
                note = c.notification("message.created")
                replies += note["params"]["message"]["author_id"] == agent["user_id"]
            # Polling the daemon's own figure: the periodic task's rounds are its business.
            wait_for(lambda: c.call("daemon.status")["queue"]["completed"] == 1)
            listed = c.call("job.list")
            assert [j["id"] for j in listed["jobs"]] == [jobs[2]] and listed["next"] is None
            with pytest.raises(RpcFailure) as info:
                c.call("job.get", id=jobs[0])
            assert info.value.code == -32001
            data = info.value.data
            assert (data["kind"], data["ref"], data["pruned"], data["status"], data["name"]) == (
                "job", jobs[0], True, "completed", "response_generator")
            # The replies stay: pruning removes jobs, never messages.
            assert len(c.call("message.list", conversation_id=dm)["messages"]) == 6
    finally:
        w.stop()
