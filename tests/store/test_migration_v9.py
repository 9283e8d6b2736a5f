"""Migration 9 on a real SQLite file: the reply jobs a v8 database holds
pending keep their agents busy, now through pending_replies; the generic
jobs table loses its index on the job data's agent_id."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from wizd.store.migrations import LATEST, migrate


def test_v9_takes_over_the_pending_reply_jobs_of_a_v8_database(tmp_path: Path) -> None:
    path = tmp_path / "wiz.db"
    migrate(path, upto=8)
    conn = sqlite3.connect(path)
    with conn:
        rows = [("j1", "response_generator", '{"agent_id": "a1"}', "waiting"),
                ("j2", "response_generator", '{"agent_id": "a1"}', "active"),
                ("j3", "response_generator", '{"agent_id": "a2"}', "paused"),
                ("j4", "response_generator", '{"agent_id": "a3"}', "completed"),
                ("j5", "response_generator", '{"agent_id": "a4"}', "failed"),
                ("j6", "other", '{"agent_id": "a5"}', "waiting")]
        for job_id, name, data, status in rows:
            conn.execute(
                "INSERT INTO jobs (id, name, data, opts, status, max_attempts, created_at,"
                " updated_at) VALUES (?, ?, ?, '{}', ?, 1, 0, 0)", (job_id, name, data, status))
    conn.close()
    assert migrate(path) == (8, LATEST)
    conn = sqlite3.connect(path)
    try:
        assert sorted(conn.execute("SELECT job_id, agent_id FROM pending_replies")) == [
            ("j1", "a1"), ("j2", "a1"), ("j3", "a2")]
        indexes = {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'jobs'")}
        assert "jobs_pending_agent" not in indexes
    finally:
        conn.close()
