"""Queries of the generic job queue (the jobs table). Knows nothing of agents."""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from .schema import jobs

STATUSES = ("waiting", "active", "delayed", "failed", "completed", "paused")


def count_by_status(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(jobs.c.status, func.count()).group_by(jobs.c.status)).all()
    counts = dict.fromkeys(("waiting", "active", "delayed", "failed", "completed"), 0)
    counts.update({status: n for status, n in rows})
    return counts
