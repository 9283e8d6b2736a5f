"""A provider whose key lives in a file, end to end: a real wizd, its socket,
and a real OpenAI-compatible server that records the Authorization header."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.daemon import RpcFailure, Wizd
from tests.support.openai_server import ThreadedOpenAIServer, openai_server_in_thread

KEY = "sk-keyfile-FIRST-e2e-5521"
ROTATED = "sk-keyfile-ROTATED-e2e-9034"


@pytest.fixture
def srv() -> Iterator[ThreadedOpenAIServer]:
    with openai_server_in_thread() as server:
        yield server


@pytest.fixture(params=["trio", "asyncio"])
def daemon(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Wizd]:
    w = Wizd(tmp_path / "wizd", env={"WIZ_BACKOFF_BASE": "0.01", "WIZ_BACKOFF_CAP": "0.05",
                                     "WIZ_BACKEND": request.param})
    try:
        yield w.start()
    finally:
        w.close()


def reply_job(w: Wizd, dm: str, content: str, *statuses: str) -> dict[str, Any]:
    """Send ``content`` and return its reply job once in one of ``statuses``."""
    with w.connect() as conn:
        conn.call("events.subscribe", conversation_id=dm)
        [job_id] = conn.call("message.send", conversation_id=dm, content=content)["jobs"]
        job = conn.call("job.get", id=job_id)
        while job["status"] not in statuses:
            note = conn.notification("job.updated")["params"]["job"]
            job = note if note["id"] == job_id else job
    return dict(w.call("job.get", id=job_id))


def test_the_key_is_read_from_the_file_when_each_job_runs(
    daemon: Wizd, srv: ThreadedOpenAIServer, tmp_path: Path
) -> None:
    path = tmp_path / "openai.key"
    path.write_text(KEY + "\n")
    path.chmod(0o600)
    provider = daemon.call("provider.create", name="local", type="openai",
                           default_model="gpt-test", base_url=srv.base_url,
                           api_key_file=str(path))
    assert (provider["api_key_file"], provider["has_api_key"]) == (str(path), False)
    agent = daemon.call("agent.create", name="ada", role="r", backstory="b", goal="g",
                        provider_id="local")
    dm = daemon.call("dm.create", participants=[agent["id"]])["id"]

    assert reply_job(daemon, dm, "one", "completed", "failed")["status"] == "completed"
    path.write_text(ROTATED + "\n")  # rotated in place: no update, no restart
    assert reply_job(daemon, dm, "two", "completed", "failed")["status"] == "completed"
    assert [r.headers["authorization"] for r in srv.requests] == [
        f"Bearer {KEY}", f"Bearer {ROTATED}"]

    # A file others can read is refused when the job runs: one attempt, a
    # clear reason, no request sent.
    path.chmod(0o644)
    failed = reply_job(daemon, dm, "three", "completed", "failed")
    assert (failed["status"], failed["attempts"]) == ("failed", 1)
    assert failed["failure_reason"] == (
        f"provider local: API key file {path} is accessible by group or others "
        f"(mode 0644); run chmod 600 {path}")
    assert len(srv.requests) == 2
    # The conversation says what to do, not that the provider refused a key
    # it never saw.
    error = daemon.call("message.list", conversation_id=dm)["messages"][-1]
    assert error["kind"] == "error"
    assert error["content"] == f"Agent ada could not reply: {failed['failure_reason']}."

    seen = json.dumps([
        daemon.call("job.list"), daemon.call("provider.get", id="local"),
        daemon.call("provider.list"), daemon.call("message.list", conversation_id=dm),
    ])
    with sqlite3.connect(daemon.db) as db:
        stored = repr(db.execute("SELECT * FROM jobs").fetchall()
                      + db.execute("SELECT * FROM llm_providers").fetchall())
    for secret in (KEY, ROTATED):
        assert secret not in seen and secret not in stored
        assert secret not in daemon.log_text()


def test_create_refuses_a_file_others_can_read(
    daemon: Wizd, srv: ThreadedOpenAIServer, tmp_path: Path
) -> None:
    path = tmp_path / "shared.key"
    path.write_text(KEY)
    path.chmod(0o640)
    with pytest.raises(RpcFailure) as info:
        daemon.call("provider.create", name="local", type="openai", default_model="gpt-test",
                    base_url=srv.base_url, api_key_file=str(path))
    error = info.value
    assert error.code == -32602 and isinstance(error.data, dict)
    assert error.data["field"] == "api_key_file"
    assert f"chmod 600 {path}" in str(error.message) and KEY not in str(error)
    assert KEY not in daemon.log_text()
