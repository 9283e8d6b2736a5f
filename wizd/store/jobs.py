"""Queries of the generic job queue (the jobs table). Knows nothing of agents.

    add_job ──> waiting ──claim──> active ──complete──> completed
       │   (paused while the        │  └────fail──────> failed ──retry──> waiting
       │    queue is paused)        └─retry_later──> delayed ──(run_at due)──> claimable
       └─(delay)─> delayed

Every function takes the caller's Connection and runs inside the caller's
transaction, so a job's transition can commit together with its side effects
(the reply it produced, the agent's status). Functions that move a job from a
given status check that status in the UPDATE itself and report whether they
did, so a lost race (a cancel against a claim) never corrupts a row.

The hot paths (add, claim, finish) are plain SQL with ``RETURNING``: one
statement per step, and none of the per-call statement building that costs
more than the query itself here.

On PostgreSQL the same statements run (``database.raw`` rewrites their
placeholders; migrations_pg gives ``jobs`` a ``rowid`` column), except the
few written for each engine (``_PG`` names): the claim, which locks the rows
it takes and skips those another transaction holds (``FOR UPDATE SKIP
LOCKED``, ready for claimers on several nodes), the head marks, the requeue
and the pruning batches.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, text

from ..errors import Conflict, InvalidInput, NotFound
from ..objects import Job, JsonObject
from .database import before_commit, is_pg, later, raw, transaction_state
from .postgres_keys import DB_NOW, GROUP_LOCK_CLASS
from .schema import jobs

STATUSES = ("waiting", "active", "delayed", "failed", "completed", "paused")
# A job that has not finished yet: it keeps its agent busy.
PENDING = ("waiting", "delayed", "paused", "active")
# Not started, not finished: may be cancelled without touching a running task.
QUEUED = ("waiting", "delayed", "paused")
FINISHED = ("completed", "failed")
MAX_LIST = 1000

# Keys that must never appear in job data, at any depth: data holds references.
_SECRET_KEYS = frozenset({"api_key", "apikey", "secret", "password", "token", "authorization"})


# The columns in the order _job() reads them from a raw (DB-API) row.
_COLUMNS = ("id, name, data, status, priority, progress, attempts, max_attempts, failure_reason,"
            " result, created_at, processed_on, finished_on, run_at, group_key")

# A row as sqlite3 returns it (untyped: DB-API declares nothing of columns);
# _job() is where it takes Job's shape, read straight off the tuple: it runs
# for every job claimed and finished.
RawRow = tuple[Any, ...]


def _job(row: RawRow) -> Job:
    """A job as the protocol shows it (data included: it holds references
    only), from a raw row selected as ``_COLUMNS``."""
    return {
        "id": row[0],
        "name": row[1],
        "data": json.loads(row[2]),
        "status": row[3],
        "priority": row[4],
        "progress": row[5],
        "attempts": row[6],
        "max_attempts": row[7],
        "failure_reason": row[8],
        "result": json.loads(row[9]) if row[9] else None,
        "created_at": row[10],
        "processed_on": row[11],
        "finished_on": row[12],
        "run_at": row[13],
        "group_key": row[14],
    }


def _check_no_secrets(value: object, path: str = "data") -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            if str(key).lower() in _SECRET_KEYS:
                raise InvalidInput(f"{path}.{key}", "job data holds references, never secrets")
            _check_no_secrets(item, f"{path}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_no_secrets(item, f"{path}[{index}]")


def add_job(
    conn: Connection,
    *,
    name: str,
    data: JsonObject,
    now_ms: int,
    max_attempts: int,
    priority: int = 0,
    delay_ms: int = 0,
    group_key: str | None = None,
) -> Job:
    """Insert a job inside the caller's transaction; returns it.

    ``data`` must hold references only (ids), never a secret (InvalidInput
    otherwise). Jobs with the same ``group_key`` run one at a time, oldest
    first; a higher ``priority`` number runs first. The caller wakes the
    scheduler after committing.
    """
    _check_no_secrets(data)
    job_id = str(uuid.uuid4())
    opts = {"priority": priority, "delay_ms": delay_ms, "max_attempts": max_attempts,
            "group_key": group_key}
    row = raw(conn).execute(_INSERT, {
        "id": job_id, "name": name, "data": json.dumps(data), "opts": json.dumps(opts),
        "priority": priority, "delayed": delay_ms > 0, "max_attempts": max(max_attempts, 1),
        "now": now_ms, "run_at": now_ms + max(delay_ms, 0), "group_key": group_key,
    }).fetchone()
    _set_head(conn, group_key)
    return _job(row)


# On PostgreSQL, the id of the node whose write connection runs the
# statement (``wiz.node``, set by the runner; NULL when it runs as no node).
THIS_NODE = "nullif(current_setting('wiz.node', true), '')"

# The queue-wide pause, as an SQL condition (the value is JSON).
_QUEUE_PAUSED = "EXISTS (SELECT 1 FROM queue_state WHERE key = 'paused' AND value = 'true')"

_INSERT = (
    "INSERT INTO jobs (id, name, data, opts, priority, status, progress, attempts, max_attempts,"
    " created_at, updated_at, run_at, group_key)"
    " VALUES (:id, :name, :data, :opts, :priority,"
    f" CASE WHEN :delayed THEN 'delayed' WHEN {_QUEUE_PAUSED} THEN 'paused' ELSE 'waiting' END,"
    " 0, 0, :max_attempts, :now, :now, :run_at, :group_key) RETURNING " + _COLUMNS
)
_GET = f"SELECT {_COLUMNS} FROM jobs WHERE id = :id"


def get(conn: Connection, job_id: str) -> Job | None:
    row = raw(conn).execute(_GET, {"id": job_id}).fetchone()
    return None if row is None else _job(row)


_TOMBSTONE = ("SELECT name, status, failure_reason, created_at, finished_on, pruned_at"
              " FROM jobs_pruned WHERE id = :id")


def require(conn: Connection, job_id: str) -> Job:
    """The job. Raises NotFound; if retention pruned the job, its data says so
    (``pruned: true``) with what the job left: name, status, failure_reason,
    created_at, finished_on, pruned_at."""
    job = get(conn, job_id)
    if job is not None:
        return job
    error = NotFound("job", job_id)
    row = raw(conn).execute(_TOMBSTONE, {"id": job_id}).fetchone()
    if row is not None:
        error.message = f"job {job_id} was pruned (finished jobs are kept for a while only)"
        error.args = (error.message,)
        assert error.data is not None
        error.data.update(pruned=True, **dict(zip(
            ("name", "status", "failure_reason", "created_at", "finished_on", "pruned_at"),
            row, strict=True)))
    raise error


def count_by_status(conn: Connection) -> dict[str, int]:
    rows = conn.execute(select(jobs.c.status, func.count()).group_by(jobs.c.status)).all()
    counts = dict.fromkeys(("waiting", "active", "delayed", "failed", "completed"), 0)
    counts.update({status: n for status, n in rows})
    return counts


# job.list walks migration v8's indexes in their order (newest first), from
# the cursor on, so a page costs the same whatever the table holds. INDEXED BY
# makes a drift between these conditions and the indexes an error, not a scan.
_LIST = (f"SELECT rowid, {_COLUMNS} FROM jobs INDEXED BY jobs_created"
         " WHERE (created_at, rowid) < (:created, :rowid)"
         " ORDER BY created_at DESC, rowid DESC LIMIT :limit")
_LIST_STATUS = (f"SELECT rowid, {_COLUMNS} FROM jobs INDEXED BY jobs_status_created"
                " WHERE status = :status AND (created_at, rowid) < (:created, :rowid)"
                " ORDER BY created_at DESC, rowid DESC LIMIT :limit")
_END = 2**63 - 1  # past every created_at and rowid: the first page


def _cursor(before: str | None) -> tuple[int, int]:
    """The (created_at, rowid) a ``before`` cursor points at. Raises InvalidInput."""
    if before is None:
        return _END, _END
    created, sep, rowid = before.partition(".")
    if not (sep and created.isdigit() and rowid.isdigit()):
        raise InvalidInput("before", "must be a cursor that job.list returned as next")
    return int(created), int(rowid)


def list_jobs(
    conn: Connection, *, status: str | None = None, limit: int = 50
) -> list[Job]:
    """The newest ``limit`` jobs (of ``status`` if given), newest first."""
    return list_page(conn, status=status, limit=limit)[0]


def list_page(
    conn: Connection, *, status: str | None = None, limit: int = 50, before: str | None = None
) -> tuple[list[Job], str | None]:
    """The newest ``limit`` jobs (of ``status`` if given) older than the cursor
    ``before`` (all when None), newest first, and the cursor of the next page
    (None when no job is left). Raises InvalidInput."""
    if status is not None and status not in STATUSES:
        raise InvalidInput("status", f"must be one of {', '.join(STATUSES)}")
    if not 1 <= limit <= MAX_LIST:
        raise InvalidInput("limit", f"must be between 1 and {MAX_LIST}")
    created, rowid = _cursor(before)
    params = {"created": created, "rowid": rowid, "limit": limit + 1, "status": status}
    rows = raw(conn).execute(_LIST if status is None else _LIST_STATUS, params).fetchall()
    page = rows[:limit]
    more = len(rows) > limit
    last = page[-1] if page else None
    return ([_job(row[1:]) for row in page],
            f"{last[11]}.{last[0]}" if more and last is not None else None)


# -- the queue-wide pause ---------------------------------------------------------


_PAUSED = "SELECT value FROM queue_state WHERE key = 'paused'"


def is_paused(conn: Connection) -> bool:
    row = raw(conn).execute(_PAUSED).fetchone()
    return bool(json.loads(row[0])) if row is not None else False


def ready_status(conn: Connection) -> str:
    """The status of a job that may run now: ``paused`` while the queue is paused."""
    return "paused" if is_paused(conn) else "waiting"


def set_paused(conn: Connection, paused: bool, now_ms: int) -> bool:
    """Pause or resume the queue (persisted); waiting jobs show ``paused`` meanwhile.

    Running jobs are not touched: they finish. Returns the new state.
    """
    conn.execute(text(
        "INSERT INTO queue_state (key, value, updated_at) VALUES ('paused', :v, :now) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
    ), {"v": json.dumps(paused), "now": now_ms})
    old, new = ("waiting", "paused") if paused else ("paused", "waiting")
    conn.execute(text("UPDATE jobs SET status = :new, updated_at = :now WHERE status = :old"),
                 {"old": old, "new": new, "now": now_ms})
    return paused


# -- claiming ----------------------------------------------------------------------

# Jobs of one group run one at a time, in the order they were added: the
# group's oldest pending job (its head) blocks the younger ones, even while it
# waits for its retry, and an active one blocks all (a failed job retried while
# a younger one runs is the head again, and waits). Jobs without a group are
# independent.
#
# A claim must not read a group's backlog: a drain of n jobs would take time
# quadratic in n. So is_head marks each group's head, kept by _set_head in the
# transactions that add, finish, retry or requeue a job, and the claim walks
# only the index of the jobs it may take (migration v6's jobs_ready: queued,
# and a head or in no group), in claim order: the highest priority number
# first, then the oldest (run_at, created_at). The walk visits each priority
# present (prio), and within one only its due jobs, so jobs not due yet are
# never read either; it stops at ``limit``. The only jobs it reads and passes
# over are heads held back by an active job (a failed job retried while a
# younger one runs): one per group at most. The conditions repeat the
# indexes' word for word, or SQLite cannot use them; INDEXED BY makes a drift
# an error rather than a slow scan.
_READY = "status IN ('waiting', 'delayed') AND (group_key IS NULL OR is_head = 1)"

_CLAIM = f"""
UPDATE jobs SET status = 'active', attempts = attempts + 1, progress = 0,
                processed_on = :now, updated_at = :now
WHERE NOT {_QUEUE_PAUSED} AND rowid IN (
  WITH RECURSIVE prio(p) AS (
    SELECT (SELECT MAX(priority) FROM jobs INDEXED BY jobs_ready WHERE {_READY})
    UNION ALL
    SELECT (SELECT MAX(priority) FROM jobs INDEXED BY jobs_ready
            WHERE {_READY} AND priority < prio.p)
    FROM prio WHERE prio.p IS NOT NULL)
  SELECT rowid FROM jobs INDEXED BY jobs_ready
  WHERE {_READY} AND priority IN (SELECT p FROM prio) AND run_at <= :now
    AND NOT EXISTS (SELECT 1 FROM jobs AS a INDEXED BY jobs_group_active
                    WHERE a.group_key = jobs.group_key AND a.status = 'active')
  ORDER BY priority DESC, run_at, created_at, rowid
  LIMIT :limit)
RETURNING {_COLUMNS}
"""

# The claim on PostgreSQL: the planner walks jobs_ready in claim order by
# itself (no recursive walk of priorities needed); rows locked by another
# claimer are passed over, not waited for. RETURNING has no order: the
# claimed rows come back sorted, ties in the order jobs were added. A claimed
# job is marked with the claiming node's id (``locked_by``), which the node's
# lease covers (wizd.cluster): a node's outcome counts only for jobs it holds.
_CLAIM_PG = f"""
WITH picked AS (
  SELECT rowid FROM jobs
  WHERE {_READY} AND run_at <= :now AND NOT {_QUEUE_PAUSED}
    AND NOT EXISTS (SELECT 1 FROM jobs AS a
                    WHERE a.group_key = jobs.group_key AND a.status = 'active')
  ORDER BY priority DESC, run_at, created_at, rowid
  LIMIT :limit
  FOR UPDATE SKIP LOCKED),
moved AS (
  UPDATE jobs SET status = 'active', attempts = attempts + 1, progress = 0,
                  processed_on = :now, updated_at = :now, locked_by = {THIS_NODE}
  FROM picked WHERE jobs.rowid = picked.rowid
  RETURNING {', '.join('jobs.' + c for c in _COLUMNS.split(', '))}, jobs.rowid)
SELECT {_COLUMNS} FROM moved ORDER BY priority DESC, run_at, created_at, rowid
"""

# Whether the queue is paused, and the next run_at to wake for (one look-up
# in jobs_due, not a read of every job not started): one statement, one
# round trip on PostgreSQL.
_LOOK_AHEAD = ("SELECT (SELECT value FROM queue_state WHERE key = 'paused'),"
               " (SELECT MIN(run_at) FROM jobs INDEXED BY jobs_due"
               " WHERE status IN ('waiting', 'delayed') AND run_at > :now)")

# The group's head is its first pending job in jobs_group_pending (oldest
# created_at, then the first added). Only the first two can carry a wrong
# mark: a job that enters older than the head (added by a clock that went
# back, or retried) pushes the old head to second place, and finished jobs
# leave unmarked (complete and fail set is_head = 0). Only a mark that is
# wrong is written: adding to a backlog writes none.
_SET_HEAD = """
WITH head(rid) AS (
    SELECT rowid FROM jobs INDEXED BY jobs_group_pending
    WHERE group_key = :group_key AND status IN ('waiting', 'delayed', 'paused', 'active')
    ORDER BY created_at, rowid LIMIT 1)
UPDATE jobs SET is_head = (rowid IN (SELECT rid FROM head))
WHERE rowid IN (
    SELECT rowid FROM jobs INDEXED BY jobs_group_pending
    WHERE group_key = :group_key AND status IN ('waiting', 'delayed', 'paused', 'active')
    ORDER BY created_at, rowid LIMIT 2)
  AND is_head != (rowid IN (SELECT rid FROM head))
"""


# The same on PostgreSQL, where a comparison is a boolean, not an integer.
_SET_HEAD_PG = """
WITH head AS (
    SELECT rowid FROM jobs
    WHERE group_key = :group_key AND status IN ('waiting', 'delayed', 'paused', 'active')
    ORDER BY created_at, rowid LIMIT 1),
pending AS (
    SELECT rowid FROM jobs
    WHERE group_key = :group_key AND status IN ('waiting', 'delayed', 'paused', 'active')
    ORDER BY created_at, rowid LIMIT 2)
UPDATE jobs SET is_head = CASE WHEN rowid IN (SELECT rowid FROM head) THEN 1 ELSE 0 END
WHERE rowid IN (SELECT rowid FROM pending)
  AND is_head != CASE WHEN rowid IN (SELECT rowid FROM head) THEN 1 ELSE 0 END
"""


def _set_head(conn: Connection, group_key: str | None) -> None:
    """Mark the head of ``group_key`` after a job entered or left its pending ones.

    On PostgreSQL, nodes write at the same time: two transactions adding to
    one group (or one adding while another finishes its head) would each mark
    from a snapshot without the other's row, leaving two heads or none. So
    the marks are set at the end of the transaction (``before_commit``), each
    group under a transaction-level advisory lock taken in a statement of its
    own (the marking statement's snapshot then holds every commit before the
    lock), groups in sorted order. At the end, also after the message seq
    lock (messages.insert), which a transaction takes first. Row locks can
    still cross a group lock (a completion holding its job's row waits for
    the group, while a retry holding the group must demote that row):
    PostgreSQL detects it within a second, and the runner runs the refused
    transaction again (database._pg_write).
    """
    if group_key is None:
        return
    if not is_pg(conn):
        raw(conn).execute(_SET_HEAD, {"group_key": group_key})
        return
    state = transaction_state(conn)
    groups: set[str] | None = state.get("head_groups")
    if groups is None:
        groups = state["head_groups"] = set()
        before_commit(conn, _set_heads_pg)
    groups.add(group_key)


# A group's lock: the two-key advisory lock space (wizd's single-key locks,
# postgres.SEQ_LOCK and the like, never meet it).
_GROUP_LOCK = f"SELECT pg_advisory_xact_lock({GROUP_LOCK_CLASS}, hashtext(:group_key))"


def _set_heads_pg(conn: Connection) -> None:
    # With the COMMIT, in one round trip (database.later): the server runs each
    # statement after the one before, so a marking still starts after its lock.
    for group_key in sorted(transaction_state(conn).pop("head_groups", ())):
        later(conn, _GROUP_LOCK, {"group_key": group_key})
        later(conn, _SET_HEAD_PG, {"group_key": group_key})


def claim(conn: Connection, *, now_ms: int, limit: int) -> tuple[list[Job], int | None]:
    """Mark up to ``limit`` due jobs active (attempts counted now) and return them,
    with the earliest future ``run_at`` of the rest: None if there is none, if
    the queue is paused, or if ``limit`` jobs were claimed (no room for more:
    the caller looks again when one ends).

    Highest priority number first, then the oldest (run_at, created_at).
    Nothing is claimed while the queue is paused.
    """
    claimed: list[Job] = []
    if limit > 0:
        rows = raw(conn).execute(_CLAIM_PG if is_pg(conn) else _CLAIM,
                                 {"now": now_ms, "limit": limit}).fetchall()
        claimed = [_job(row) for row in rows]
        # RETURNING comes in no promised order.
        claimed.sort(key=lambda j: (-j["priority"], j["run_at"], j["created_at"]))
        if len(claimed) == limit:
            return claimed, None  # no room left: the next look comes when a job ends
    paused, next_due = raw(conn).execute(_LOOK_AHEAD, {"now": now_ms}).fetchone()
    if paused is not None and json.loads(paused):
        return claimed, None
    return claimed, next_due


# -- transitions -------------------------------------------------------------------


def _move(
    conn: Connection, job_id: str, from_statuses: tuple[str, ...], **values: object
) -> Job | None:
    """Set ``values`` on the job if its status is one of ``from_statuses``;
    the job as it is now, or None if it was not moved."""
    pg = is_pg(conn)
    key = (from_statuses, tuple(values), pg)
    sql = _MOVES.get(key)
    if sql is None:
        assignments = ", ".join(f"{name} = :v_{name}" for name in values)
        statuses = ", ".join(f":from_{i}" for i in range(len(from_statuses)))
        # On PostgreSQL an active job moves only for the node that holds it: a
        # node whose lease lapsed (cut off, or paused) finds its jobs run
        # elsewhere, and what it brings back is refused, not recorded twice.
        held = (f" AND (status <> 'active' OR locked_by IS NOT DISTINCT FROM {THIS_NODE})"
                if pg and "active" in from_statuses else "")
        sql = _MOVES[key] = (f"UPDATE jobs SET {assignments} WHERE id = :job_id"
                             f" AND status IN ({statuses}){held} RETURNING {_COLUMNS}")
    params = {f"v_{name}": value for name, value in values.items()}
    params.update({f"from_{i}": status for i, status in enumerate(from_statuses)})
    params["job_id"] = job_id
    row = raw(conn).execute(sql, params).fetchone()
    return None if row is None else _job(row)


# The UPDATE statements of _move, built once per shape (a handful exist).
_MOVES: dict[tuple[tuple[str, ...], tuple[str, ...], bool], str] = {}


def set_progress(
    conn: Connection, job_id: str, progress: int, now_ms: int
) -> Job | None:
    """Record progress (clamped to 0-100) of an active job; None if it is not active."""
    value = min(max(int(progress), 0), 100)
    return _move(conn, job_id, ("active",), progress=value, updated_at=now_ms)


def complete(conn: Connection, job_id: str, result: object, now_ms: int) -> Job | None:
    """Mark an active job completed with ``result`` (JSON); None if it was not active."""
    return _finish(_move(conn, job_id, ("active",), status="completed", progress=100,
                         result=json.dumps(result), failure_reason=None,
                         finished_on=now_ms, updated_at=now_ms, is_head=0), conn)


def fail(
    conn: Connection,
    job_id: str,
    reason: str,
    now_ms: int,
    *,
    from_statuses: tuple[str, ...] = ("active",),
) -> Job | None:
    """Mark the job failed for good; None if its status was not one of ``from_statuses``."""
    return _finish(_move(conn, job_id, from_statuses, status="failed", failure_reason=reason,
                         finished_on=now_ms, updated_at=now_ms, is_head=0), conn)


def _finish(job: Job | None, conn: Connection) -> Job | None:
    """After a job left the pending ones (unmarked as it left): its group's next head."""
    if job is not None:
        _set_head(conn, job["group_key"])
    return job


def retry_later(
    conn: Connection, job_id: str, reason: str, run_at_ms: int, now_ms: int
) -> Job | None:
    """An active job failed but may succeed later: ``delayed`` until ``run_at_ms``.

    ``failure_reason`` keeps the last error meanwhile. None if it was not active.
    """
    return _move(conn, job_id, ("active",), status="delayed", failure_reason=reason,
                 run_at=run_at_ms, progress=0, updated_at=now_ms)


def requeue(conn: Connection, job_ids: list[str], now_ms: int) -> list[Job]:
    """Return interrupted active jobs to the queue, giving back the attempt they
    were in (the interruption was the daemon's doing, not the job's).

    Used on shutdown and, at start, for jobs left active by a daemon that died.
    Jobs no longer active (they finished meanwhile) are left alone.
    """
    if not job_ids:
        return []
    conn.execute(_REQUEUE_PG if is_pg(conn) else _REQUEUE,
                 {"ids": job_ids, "status": ready_status(conn), "now": now_ms})
    found = [job for job in (get(conn, job_id) for job_id in job_ids) if job is not None]
    # Still pending, so their groups' heads are unchanged, unless a job was
    # made active behind the store's back: marked again here, that job cannot
    # stay unclaimable (this runs at every start for jobs left active).
    for group_key in {job["group_key"] for job in found}:
        _set_head(conn, group_key)
    return found


_REQUEUE = text(
    "UPDATE jobs SET status = :status, progress = 0, updated_at = :now,"
    " attempts = max(attempts - 1, 0) WHERE id IN :ids AND status = 'active'"
).bindparams(bindparam("ids", expanding=True))
# On PostgreSQL, only the node's own: a job another node took back and runs
# stays as it is.
_REQUEUE_PG = text(
    "UPDATE jobs SET status = :status, progress = 0, updated_at = :now,"
    " attempts = greatest(attempts - 1, 0), locked_by = NULL"
    " WHERE id IN :ids AND status = 'active'"
    f" AND locked_by IS NOT DISTINCT FROM {THIS_NODE}"
).bindparams(bindparam("ids", expanding=True))


# Active jobs no live node holds (PostgreSQL, wizd.cluster): their node's
# lease lapsed or its row is gone, or they are the node's own from a run that
# died (``mine``), or no node claimed them (a copy from SQLite). Returned to
# the queue as requeue does, attempt given back. The lease check is in the
# UPDATE itself: a job another node claimed again meanwhile is left alone.
_TAKE_BACK_PG = f"""
UPDATE jobs SET status = CASE WHEN {_QUEUE_PAUSED} THEN 'paused' ELSE 'waiting' END,
                progress = 0, updated_at = :now, attempts = greatest(attempts - 1, 0),
                locked_by = NULL
WHERE status = 'active' AND (locked_by IS NULL OR locked_by = :mine OR NOT EXISTS (
    SELECT 1 FROM nodes WHERE nodes.id = jobs.locked_by AND nodes.lease_until > {DB_NOW}))
RETURNING id
"""


def take_back(conn: Connection, *, mine: str, now_ms: int) -> list[Job]:
    """PostgreSQL: return to the queue the active jobs that no live node holds
    (see _TAKE_BACK_PG); ``mine`` is the calling node's id, whose own active
    jobs count as left by a run that died (call it at start only; later,
    pass ""). The jobs as they are now."""
    ids = [row[0] for row in raw(conn).execute(_TAKE_BACK_PG, {"mine": mine, "now": now_ms})]
    found = [job for job in (get(conn, job_id) for job_id in ids) if job is not None]
    for group_key in {job["group_key"] for job in found}:
        _set_head(conn, group_key)
    return found


_HELD = "SELECT id FROM jobs WHERE id = ANY(:ids) AND status = 'active' AND locked_by = :node"


def held_by(conn: Connection, job_ids: list[str], node_id: str) -> set[str]:
    """PostgreSQL: which of ``job_ids`` are active and held by ``node_id``."""
    return {row[0] for row in raw(conn).execute(_HELD, {"ids": job_ids, "node": node_id})}


_HELD_HERE = "SELECT 1 FROM jobs WHERE id = :id AND status = 'active'"
# Locked to the commit: a take-back by another node waits, so that what the
# caller writes next in its transaction is for a job it still holds.
_HELD_HERE_PG = _HELD_HERE + f" AND locked_by IS NOT DISTINCT FROM {THIS_NODE} FOR UPDATE"


def held(conn: Connection, job_id: str) -> bool:
    """Whether job ``job_id`` is active, run by this node (on PostgreSQL, the
    node of the write connection: see _move)."""
    sql = _HELD_HERE_PG if is_pg(conn) else _HELD_HERE
    return raw(conn).execute(sql, {"id": job_id}).fetchone() is not None


_RUNNER = "SELECT locked_by FROM jobs WHERE id = :id AND status = 'active'"


def runner(conn: Connection, job_id: str) -> str | None:
    """The node that holds active job ``job_id`` (None: not active, or no node's)."""
    row = raw(conn).execute(_RUNNER, {"id": job_id}).fetchone()
    return None if row is None else row[0]


def active_ids(conn: Connection) -> list[str]:
    return list(conn.execute(select(jobs.c.id).where(jobs.c.status == "active")).scalars())


def retry(conn: Connection, job_id: str, now_ms: int) -> Job:
    """Queue a failed job again with a fresh set of attempts.

    Raises NotFound, or Conflict if the job has not failed.
    """
    job = require(conn, job_id)
    again = _move(conn, job_id, ("failed",), status=ready_status(conn), attempts=0, progress=0,
                  failure_reason=None, result=None, finished_on=None, processed_on=None,
                  run_at=now_ms, updated_at=now_ms)
    if again is None:
        raise Conflict(f"job {job_id} is {job['status']}; only a failed job can be retried",
                       status=job["status"])
    _set_head(conn, again["group_key"])  # pending again, and maybe older than the head
    return again


# -- retention -----------------------------------------------------------------------

# A pruning batch: the finished jobs past the age limit (the oldest first), or
# beyond the newest ``keep`` (walked from the newest, past the kept ones).
# Both walk migration v8's jobs_finished, whose condition they repeat.
_FINISHED = "status IN ('completed', 'failed')"
_TOO_OLD = (f"SELECT rowid FROM jobs INDEXED BY jobs_finished WHERE {_FINISHED}"
            " AND finished_on < :cutoff ORDER BY finished_on LIMIT :batch")
_TOO_MANY = (f"SELECT rowid FROM jobs INDEXED BY jobs_finished WHERE {_FINISHED}"
             " ORDER BY finished_on DESC, rowid DESC LIMIT :batch OFFSET :keep")
_BURY = ("INSERT OR REPLACE INTO jobs_pruned"
         " (id, name, status, failure_reason, created_at, finished_on, pruned_at)"
         " SELECT id, name, status, failure_reason, created_at, finished_on, :now"
         " FROM jobs WHERE rowid IN (SELECT value FROM json_each(:rowids))")
_PRUNE = "DELETE FROM jobs WHERE rowid IN (SELECT value FROM json_each(:rowids))"
# On PostgreSQL the batch is an array.
_BURY_PG = ("INSERT INTO jobs_pruned"
            " (id, name, status, failure_reason, created_at, finished_on, pruned_at)"
            " SELECT id, name, status, failure_reason, created_at, finished_on, :now"
            " FROM jobs WHERE rowid = ANY(:rowids) ON CONFLICT (id) DO UPDATE SET"
            " name = excluded.name, status = excluded.status,"
            " failure_reason = excluded.failure_reason, created_at = excluded.created_at,"
            " finished_on = excluded.finished_on, pruned_at = excluded.pruned_at")
_PRUNE_PG = "DELETE FROM jobs WHERE rowid = ANY(:rowids)"


def prune_finished(
    conn: Connection, *, now_ms: int, keep: int, keep_ms: int, batch: int
) -> int:
    """Remove at most ``batch`` finished (completed or failed) jobs that are
    older than ``keep_ms`` or not among the newest ``keep`` (0 turns either
    limit off), leaving a tombstone for each; returns how many it removed."""
    rowids: list[int] = []
    db = raw(conn)
    if keep_ms > 0:
        rowids = [r[0] for r in db.execute(
            _TOO_OLD, {"cutoff": now_ms - keep_ms, "batch": batch}).fetchall()]
    if keep > 0 and not rowids:
        rowids = [r[0] for r in db.execute(
            _TOO_MANY, {"batch": batch, "keep": keep}).fetchall()]
    if not rowids:
        return 0
    if is_pg(conn):
        db.execute(_BURY_PG, {"rowids": rowids, "now": now_ms})
        db.execute(_PRUNE_PG, {"rowids": rowids})
        return len(rowids)
    params = {"rowids": json.dumps(rowids), "now": now_ms}
    db.execute(_BURY, params)
    db.execute(_PRUNE, params)
    return len(rowids)
