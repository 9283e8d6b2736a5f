"""Queries of the generic job queue (the jobs table). Knows nothing of agents.

Statuses: waiting -> active -> completed | failed; delayed (run_at in the
future) becomes due on its own; paused is the queue-wide pause shown per job.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import Connection, func, select

from .schema import jobs

STATUSES = ("waiting", "active", "delayed", "failed", "completed", "paused")
PENDING = ("waiting", "delayed", "active")


def public(row: Any) -> dict[str, Any]:
    """A job as the protocol shows it (data included: it holds references only)."""
    return {
        "id": row.id,
        "name": row.name,
        "data": json.loads(row.data),
        "status": row.status,
        "priority": row.priority,
        "progress": row.progress,
        "attempts": row.attempts,
        "max_attempts": row.max_attempts,
        "failure_reason": row.failure_reason,
        "result": json.loads(row.result) if row.result else None,
        "created_at": row.created_at,
        "processed_on": row.processed_on,
        "finished_on": row.finished_on,
        "run_at": row.run_at,
    }


def add_job(
    conn: Connection,
    *,
    name: str,
    data: dict[str, Any],
    now_ms: int,
    max_attempts: int,
    priority: int = 0,
    delay_ms: int = 0,
    group_key: str | None = None,
) -> dict[str, Any]:
    """Insert a job inside the caller's transaction; returns its public dict.

    ``data`` must hold references only (ids), never a secret. Jobs with the same
    ``group_key`` run one at a time, oldest first.
    """
    job_id = str(uuid.uuid4())
    opts = {"priority": priority, "delay_ms": delay_ms, "max_attempts": max_attempts,
            "group_key": group_key}
    conn.execute(
        jobs.insert().values(
            id=job_id, name=name, data=json.dumps(data), opts=json.dumps(opts),
            priority=priority, status="delayed" if delay_ms > 0 else "waiting", progress=0,
            attempts=0, max_attempts=max_attempts, created_at=now_ms, updated_at=now_ms,
            run_at=now_ms + max(delay_ms, 0), group_key=group_key,
        )
    )
    return get(conn, job_id)


def get(conn: Connection, job_id: str) -> dict[str, Any] | None:
    row = conn.execute(select(jobs).where(jobs.c.id == job_id)).first()
    return None if row is None else public(row)


def count_by_status(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(jobs.c.status, func.count()).group_by(jobs.c.status)).all()
    counts = dict.fromkeys(("waiting", "active", "delayed", "failed", "completed"), 0)
    counts.update({status: n for status, n in rows})
    return counts
