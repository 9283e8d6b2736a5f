"""What ``services.tallies`` keeps in memory, as the store reports it: the
temporary triggers that report each job and message change on the write
connection (see ``database.Watch``), and the stored figures read once at start."""

from __future__ import annotations

from sqlalchemy import Connection

from . import jobs as job_queries
from . import messages as message_queries

# Temporary (per connection) triggers, created by the runner on the write
# connection, not by a migration: they call wiz_changed, a Python function
# that exists only on that connection.
TRIGGERS = (
    "CREATE TEMP TRIGGER IF NOT EXISTS wiz_job_added AFTER INSERT ON main.jobs"
    " BEGIN SELECT wiz_changed('job', NULL, new.status); END",
    "CREATE TEMP TRIGGER IF NOT EXISTS wiz_job_moved AFTER UPDATE OF status ON main.jobs"
    " WHEN old.status IS NOT new.status"
    " BEGIN SELECT wiz_changed('job', old.status, new.status); END",
    "CREATE TEMP TRIGGER IF NOT EXISTS wiz_job_removed AFTER DELETE ON main.jobs"
    " BEGIN SELECT wiz_changed('job', old.status, NULL); END",
    "CREATE TEMP TRIGGER IF NOT EXISTS wiz_message_added AFTER INSERT ON main.messages"
    " BEGIN SELECT wiz_changed('message', new.seq); END",
)


def figures(conn: Connection) -> tuple[dict[str, int], int]:
    """Job counts by status and the last message seq (a full count)."""
    return job_queries.count_by_status(conn), message_queries.max_seq(conn)
