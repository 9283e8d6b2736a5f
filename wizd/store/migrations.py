"""Versioned schema: ``PRAGMA user_version`` counts the migrations applied.

Each migration is plain SQL, applied in its own ``BEGIN IMMEDIATE`` transaction
together with the version bump, so a failure leaves the previous version intact.
Before upgrading a database that already holds data, a copy is written next to
it (``wiz.db.before-vN``) with SQLite's online backup. A database newer than
this wizd is refused, untouched.

Append new migrations to MIGRATIONS; never edit one that has shipped.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from ..errors import SchemaError

log = logging.getLogger(__name__)

_V1 = """
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    type TEXT NOT NULL CHECK (type IN ('human', 'agent')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER
);
CREATE TABLE llm_providers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    type TEXT NOT NULL,
    base_url TEXT,
    api_key TEXT,
    api_key_env TEXT,
    default_model TEXT NOT NULL,
    is_default INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER
);
CREATE UNIQUE INDEX llm_providers_name ON llm_providers (name) WHERE deleted_at IS NULL;
CREATE TABLE agents (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id),
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    backstory TEXT NOT NULL,
    goal TEXT NOT NULL,
    system_prompt TEXT NOT NULL,
    provider_id TEXT NOT NULL REFERENCES llm_providers (id),
    model TEXT,
    temperature REAL,
    max_tokens INTEGER,
    context_messages INTEGER,
    status TEXT NOT NULL CHECK (status IN ('active', 'inactive', 'busy')),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER
);
CREATE UNIQUE INDEX agents_name ON agents (name) WHERE deleted_at IS NULL;
CREATE TABLE dm_conversations (
    id TEXT PRIMARY KEY,
    name TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    archived_at INTEGER
);
CREATE TABLE dm_participants (
    conversation_id TEXT NOT NULL REFERENCES dm_conversations (id),
    user_id TEXT NOT NULL REFERENCES users (id),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX dm_participants_user ON dm_participants (user_id);
CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    description TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    archived_at INTEGER
);
CREATE UNIQUE INDEX projects_name ON projects (name) WHERE archived_at IS NULL;
CREATE TABLE project_channels (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL REFERENCES projects (id),
    name TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    archived_at INTEGER
);
CREATE UNIQUE INDEX project_channels_name ON project_channels (project_id, name)
    WHERE archived_at IS NULL;
CREATE TABLE messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    source_type TEXT NOT NULL CHECK (source_type IN ('dm', 'channel')),
    source_id TEXT NOT NULL,
    author_id TEXT NOT NULL REFERENCES users (id),
    content TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('text', 'error')),
    reply_to TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER
);
CREATE INDEX messages_source ON messages (source_id, seq);
CREATE TABLE llm_messages (
    id TEXT PRIMARY KEY,
    message_id TEXT NOT NULL UNIQUE REFERENCES messages (id),
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    data TEXT NOT NULL,
    opts TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,
    progress INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    result TEXT,
    failure_reason TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    processed_on INTEGER,
    finished_on INTEGER
);
CREATE INDEX jobs_status ON jobs (status);
"""

# Agent replies: the scheduler's due time and ordering key, and the constraint
# that makes a second reply to the same trigger by the same author impossible
# (error messages also point at their trigger, and may precede a real reply
# after a retry).
_V2 = """
ALTER TABLE jobs ADD COLUMN run_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN group_key TEXT;
CREATE INDEX jobs_claim ON jobs (status, priority DESC, run_at, created_at);
CREATE UNIQUE INDEX messages_one_reply ON messages (reply_to, author_id)
    WHERE reply_to IS NOT NULL AND kind = 'text';
"""

# The job queue: a queue-wide pause that survives restarts, and an index for
# the claim's "is another job of this group active or older?" check.
_V3 = """
CREATE TABLE queue_state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX jobs_group ON jobs (group_key, status) WHERE group_key IS NOT NULL;
"""

# Performance: jobs_claim (status, ...) serves every lookup by status that
# jobs_status did, and with jobs_status present SQLite picked it for the claim
# and sorted every due job; one index fewer to update on each job's change.
_V4 = """
DROP INDEX jobs_status;
"""

# An agent's status (busy while it has a pending job) is checked on every
# message that triggers it and every job that ends: without this index the
# check read every pending job's data; with it, one look-up. The expression
# and the condition must match services.agents.refresh_status's query exactly.
_V5 = """
CREATE INDEX jobs_pending_agent ON jobs (json_extract(data, '$.agent_id'))
    WHERE status IN ('waiting', 'delayed', 'paused', 'active');
"""

# Hardening: a provider's key may live in a file read at job time (never in
# the database); a reply cut off at max_reply_bytes is marked truncated.
# Claims that never read a backlog (store.jobs._CLAIM and _set_head, whose
# conditions repeat these indexes' word for word): is_head marks the oldest
# pending job of each group (the one that runs next), kept by store.jobs as
# jobs enter and leave the pending ones, and set here for the jobs already
# queued; jobs_ready holds only the jobs a claim may take, in claim order;
# jobs_group_pending finds a group's head; jobs_group_active its running job
# (replacing jobs_group, which held every job of every group); jobs_due the
# next due time. jobs_claim goes: the claim no longer reads it, and lookups by
# status use jobs_status_created (migration 8). Every index here is written
# as jobs change status: fewer and smaller ones keep a job's writes as before.
_V6 = """
ALTER TABLE llm_providers ADD COLUMN api_key_file TEXT;
ALTER TABLE messages ADD COLUMN truncated INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN is_head INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_group_pending ON jobs (group_key, created_at)
    WHERE group_key IS NOT NULL AND status IN ('waiting', 'delayed', 'paused', 'active');
UPDATE jobs SET is_head = 1 WHERE rowid IN (
    SELECT (SELECT h.rowid FROM jobs AS h
            WHERE h.group_key = g.group_key
              AND h.status IN ('waiting', 'delayed', 'paused', 'active')
            ORDER BY h.created_at, h.rowid LIMIT 1)
    FROM (SELECT DISTINCT group_key FROM jobs
          WHERE group_key IS NOT NULL
            AND status IN ('waiting', 'delayed', 'paused', 'active')) AS g);
CREATE INDEX jobs_ready ON jobs (priority DESC, run_at, created_at)
    WHERE status IN ('waiting', 'delayed') AND (group_key IS NULL OR is_head = 1);
CREATE INDEX jobs_due ON jobs (run_at) WHERE status IN ('waiting', 'delayed');
CREATE INDEX jobs_group_active ON jobs (group_key)
    WHERE group_key IS NOT NULL AND status = 'active';
DROP INDEX jobs_group;
DROP INDEX jobs_claim;
"""

# Issue 11: a provider may be set not to stream; a reply's llm_message keeps
# the tokens the provider counted and the model that answered; messages get a
# full-text index (FTS5 over messages.content, rowid = seq, external content so
# the text is stored once), kept in step by triggers inside the transaction
# that changes a message, and built here for the messages already stored.
_V7 = """
ALTER TABLE llm_providers ADD COLUMN stream INTEGER NOT NULL DEFAULT 1;
ALTER TABLE llm_messages ADD COLUMN prompt_tokens INTEGER;
ALTER TABLE llm_messages ADD COLUMN completion_tokens INTEGER;
ALTER TABLE llm_messages ADD COLUMN model TEXT;
CREATE VIRTUAL TABLE messages_fts USING fts5(
    content, content='messages', content_rowid='seq'
);
CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
    INSERT INTO messages_fts (rowid, content) VALUES (new.seq, new.content);
END;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content)
        VALUES ('delete', old.seq, old.content);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content)
        VALUES ('delete', old.seq, old.content);
    INSERT INTO messages_fts (rowid, content) VALUES (new.seq, new.content);
END;
INSERT INTO messages_fts (messages_fts) VALUES ('rebuild');
"""

# Issue 10: cost flat as history grows. job.list walks an index in its own
# order (newest first: created_at, then rowid, which every index ends with),
# with or without a status; retention walks the finished jobs by finish time;
# a pruned job leaves a tombstone (what job.get says of it, a few bytes).
_V8 = """
CREATE INDEX jobs_created ON jobs (created_at);
CREATE INDEX jobs_status_created ON jobs (status, created_at);
CREATE INDEX jobs_finished ON jobs (finished_on) WHERE status IN ('completed', 'failed');
CREATE TABLE jobs_pruned (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    failure_reason TEXT,
    created_at INTEGER NOT NULL,
    finished_on INTEGER,
    pruned_at INTEGER NOT NULL
) WITHOUT ROWID;
"""

# Issue 12: the generic jobs table knows nothing of agents. What makes an
# agent busy (a reply job of it not finished) moves to the reply side: one
# row per pending reply job (store.replies), kept by wizd.replies in the
# transactions that queue and finish the job, filled here from the reply
# jobs already pending; jobs_pending_agent (v5, on the job data's agent_id)
# goes.
_V9 = """
CREATE TABLE pending_replies (
    job_id TEXT PRIMARY KEY,
    agent_id TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX pending_replies_agent ON pending_replies (agent_id);
INSERT INTO pending_replies (job_id, agent_id)
    SELECT id, json_extract(data, '$.agent_id') FROM jobs
    WHERE name = 'response_generator'
      AND status IN ('waiting', 'delayed', 'paused', 'active')
      AND json_extract(data, '$.agent_id') IS NOT NULL;
DROP INDEX jobs_pending_agent;
"""

# Issue 10: a message's commit no longer writes the full-text index (FTS5
# wrote a new segment per transaction: more than half the pages of a
# message's commit). The index follows the messages in batches, after their
# commits (services.search_index), up to the seq kept in search_indexed; a
# message edited or deleted before it is indexed needs nothing undone.
_V10 = """
CREATE TABLE search_indexed (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    seq INTEGER NOT NULL
);
INSERT INTO search_indexed (id, seq) SELECT 1, coalesce(max(seq), 0) FROM messages;
DROP TRIGGER messages_fts_insert;
DROP TRIGGER messages_fts_delete;
DROP TRIGGER messages_fts_update;
CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages
WHEN old.seq <= (SELECT seq FROM search_indexed) BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content)
        VALUES ('delete', old.seq, old.content);
END;
CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages
WHEN old.seq <= (SELECT seq FROM search_indexed) BEGIN
    INSERT INTO messages_fts (messages_fts, rowid, content)
        VALUES ('delete', old.seq, old.content);
    INSERT INTO messages_fts (rowid, content) VALUES (new.seq, new.content);
END;
"""

# Issue 14: MCP servers registered in wizd (services.mcp). ``command`` is a
# JSON list (stdio servers), ``url`` the endpoint (streamable HTTP); ``env``
# maps a variable of the server's environment to the name of one of wizd's,
# read when the server starts: the values (secrets) are never stored.
_V11 = """
CREATE TABLE mcp_servers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    transport TEXT NOT NULL CHECK (transport IN ('stdio', 'http')),
    command TEXT CHECK ((transport = 'stdio') = (command IS NOT NULL)),
    url TEXT CHECK ((transport = 'http') = (url IS NOT NULL)),
    env TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER
);
CREATE UNIQUE INDEX mcp_servers_name ON mcp_servers (name) WHERE deleted_at IS NULL;
"""

# Issue 14: agents that call tools. An agent's allow-list (``tools``: a JSON
# list of ``server.tool`` patterns, NULL for none) and step limit
# (``max_steps``, NULL for the default); a server's tool marks (``idempotent``,
# ``confirm``: JSON lists of tool-name patterns). The steps of a tool-using
# reply are llm_messages without a message of their own: the assistant turn
# with its ``tool_calls`` (JSON), and one row per tool call (role 'tool',
# ``tool_state`` 'started' before the call runs, 'done' with its result;
# 'waiting' for the user's approval, then 'approved'),
# found by the trigger (``reply_to``) and the agent's user (``author_id``).
# ``message_id`` becomes nullable, which SQLite allows only by copying the table.
_V12 = """
ALTER TABLE agents ADD COLUMN tools TEXT;
ALTER TABLE agents ADD COLUMN max_steps INTEGER;
ALTER TABLE mcp_servers ADD COLUMN idempotent TEXT NOT NULL DEFAULT '[]';
ALTER TABLE mcp_servers ADD COLUMN confirm TEXT NOT NULL DEFAULT '[]';
CREATE TABLE llm_messages_v12 (
    id TEXT PRIMARY KEY,
    message_id TEXT UNIQUE REFERENCES messages (id),
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    model TEXT,
    job_id TEXT,
    reply_to TEXT REFERENCES messages (id),
    author_id TEXT REFERENCES users (id),
    step INTEGER,
    position INTEGER,
    tool_calls TEXT,
    tool_call_id TEXT,
    tool_name TEXT,
    tool_state TEXT CHECK (tool_state IN ('waiting', 'approved', 'started', 'done'))
);
INSERT INTO llm_messages_v12 (id, message_id, role, content, created_at, updated_at,
    prompt_tokens, completion_tokens, model)
    SELECT id, message_id, role, content, created_at, updated_at, prompt_tokens,
        completion_tokens, model FROM llm_messages;
DROP TABLE llm_messages;
ALTER TABLE llm_messages_v12 RENAME TO llm_messages;
CREATE INDEX llm_messages_steps ON llm_messages (reply_to, author_id, step, position)
    WHERE reply_to IS NOT NULL;
"""

# The steps of one job (job.get, job.approve/deny): without it, a scan of
# every LLM message ever stored.
_V13 = """
CREATE INDEX llm_messages_job ON llm_messages (job_id) WHERE job_id IS NOT NULL;
"""

# The nodes of a cluster (several wizd on one PostgreSQL; docs/scale-out.md)
# and which node runs each active job. Used on PostgreSQL only; here for one
# schema on both engines (and a copy by migrate-to).
_V14 = """
CREATE TABLE nodes (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    socket TEXT NOT NULL,
    version TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    seen_at INTEGER NOT NULL,
    lease_until INTEGER NOT NULL
);
ALTER TABLE jobs ADD COLUMN locked_by TEXT;
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4, _V5, _V6, _V7, _V8, _V9, _V10, _V11, _V12,
                               _V13, _V14)
LATEST = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _backup(conn: sqlite3.Connection, path: Path, version: int) -> Path:
    target = path.with_name(f"{path.name}.before-v{version + 1}")
    dest = sqlite3.connect(target)
    try:
        conn.backup(dest)
    finally:
        dest.close()
    target.chmod(0o600)
    return target


def migrate(
    path: Path, *, upto: int | None = None, migrations: tuple[str, ...] = MIGRATIONS
) -> tuple[int, int]:
    """Bring the database at ``path`` to schema version ``upto`` (default: the latest
    of ``migrations``).

    ``migrations`` is the list to apply (tests give their own). Returns
    (version before, version after). Raises SchemaError when the database is
    newer than ``migrations`` know, or is not a SQLite database; sqlite3.Error
    when it is damaged (see ``_check_readable``), a script fails, or its
    storage fails.
    """
    latest = len(migrations)
    upto = latest if upto is None else upto
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA busy_timeout=5000")
        try:
            before = schema_version(conn)
        except sqlite3.DatabaseError as exc:
            raise SchemaError(f"{path} is not a wiz database: {exc}") from exc
        if before > latest:
            raise SchemaError(
                f"{path} has schema version {before}, newer than this wizd knows "
                f"({latest}); upgrade wiz, or point --db at another file. "
                "The database was left untouched."
            )
        _check_readable(conn)
        # WAL is a property of the file: set it once here, before the daemon's
        # connections open, since switching needs an exclusive lock.
        conn.execute("PRAGMA journal_mode=WAL")
        has_data = before > 0
        for version in range(before, upto):
            if has_data and version == before:
                copy = _backup(conn, path, version)
                log.info("upgrading database schema v%d -> v%d; copy kept at %s",
                         before, upto, copy)
            _apply(conn, migrations[version], version + 1)
        return before, max(before, upto)
    finally:
        conn.close()


def _apply(conn: sqlite3.Connection, script: str, version: int) -> None:
    """Run ``script`` and set ``user_version`` to ``version``, in one transaction.

    SQLite parses the script itself (``executescript``): a trigger's body, a
    ``;`` inside a string literal or a comment stay whole, which no split on
    ``;`` can promise. The transaction is part of the script because
    ``executescript`` commits any transaction already open before it runs.
    """
    try:
        conn.executescript(
            f"BEGIN IMMEDIATE;\n{script}\n;\nPRAGMA user_version = {version};\nCOMMIT;")
    except BaseException:
        # A failed statement leaves the transaction open (unless BEGIN failed).
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _check_readable(conn: sqlite3.Connection) -> None:
    """Read the first row of every table: a damaged page on that path (a
    table's root, say) stops the start with SQLite's error, rather than the
    first request that needs it.

    Cheap, so not complete: ``PRAGMA quick_check`` would read the whole file,
    minutes on a big database at every start.
    """
    tables = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    for (name,) in tables:
        quoted = name.replace('"', '""')
        conn.execute(f'SELECT * FROM "{quoted}" LIMIT 1').fetchall()
