"""SQLAlchemy Core tables: the latest schema, as ``migrations.py`` builds it.

The tables follow Project Wiz's schema: users (human and agent), llm_providers,
agents, dm_conversations with dm_participants, projects with project_channels,
messages, llm_messages and the BullMQ-style jobs table. Timestamps are integer
milliseconds since the epoch; rows are soft-deleted with ``deleted_at`` (or
``archived_at`` for conversations) so that history keeps its authors.

A test checks that these definitions and the migrated database agree.
Integers are BigInteger: on PostgreSQL they are BIGINT (times in ms do not
fit in 32 bits), and SQLAlchemy casts a parameter to its column's type.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    ForeignKey,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

users = Table(
    "users",
    metadata,
    Column("id", String, primary_key=True),
    Column("name", String, nullable=False),
    Column("type", String, nullable=False),  # "human" | "agent"
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("deleted_at", BigInteger),
)

llm_providers = Table(
    "llm_providers",
    metadata,
    Column("id", String, primary_key=True),
    Column("name", String, nullable=False),
    Column("type", String, nullable=False),  # "openai" | "offline"
    Column("base_url", String),
    # The secret: read only by the LLM layer when a job runs, never returned.
    Column("api_key", String),
    Column("api_key_env", String),
    Column("default_model", String, nullable=False),
    Column("is_default", BigInteger, nullable=False, default=0),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("deleted_at", BigInteger),
    # Added by migration 6: a file holding the key, read when a job runs.
    Column("api_key_file", String),
    # Added by migration 7: 0 asks the server for one JSON answer, not a stream.
    Column("stream", BigInteger, nullable=False, default=1),
)

agents = Table(
    "agents",
    metadata,
    Column("id", String, primary_key=True),
    Column("user_id", String, ForeignKey("users.id"), nullable=False),
    Column("name", String, nullable=False),
    Column("role", String, nullable=False),
    Column("backstory", Text, nullable=False),
    Column("goal", Text, nullable=False),
    Column("system_prompt", Text, nullable=False),
    Column("provider_id", String, ForeignKey("llm_providers.id"), nullable=False),
    Column("model", String),
    Column("temperature", Float),
    Column("max_tokens", BigInteger),
    Column("context_messages", BigInteger),
    Column("status", String, nullable=False),  # "active" | "inactive" | "busy"
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("deleted_at", BigInteger),
    Column("tools", Text),  # migration 12: JSON list of server.tool patterns; NULL: none
    Column("max_steps", BigInteger),  # migration 12: NULL: the default
)

dm_conversations = Table(
    "dm_conversations",
    metadata,
    Column("id", String, primary_key=True),
    Column("name", String),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("archived_at", BigInteger),
)

dm_participants = Table(
    "dm_participants",
    metadata,
    Column("conversation_id", String, ForeignKey("dm_conversations.id"), primary_key=True),
    Column("user_id", String, ForeignKey("users.id"), primary_key=True),
    Column("created_at", BigInteger, nullable=False),
)

projects = Table(
    "projects",
    metadata,
    Column("id", String, primary_key=True),
    Column("name", String, nullable=False),
    Column("description", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("archived_at", BigInteger),
)

project_channels = Table(
    "project_channels",
    metadata,
    Column("id", String, primary_key=True),
    Column("project_id", String, ForeignKey("projects.id"), nullable=False),
    Column("name", String, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("archived_at", BigInteger),
)

messages = Table(
    "messages",
    metadata,
    # AUTOINCREMENT: seq never goes back, even after the newest row is deleted.
    Column("seq", BigInteger, primary_key=True, autoincrement=True),
    Column("id", String, nullable=False, unique=True),
    Column("source_type", String, nullable=False),  # "dm" | "channel"
    Column("source_id", String, nullable=False),
    Column("author_id", String, ForeignKey("users.id"), nullable=False),
    Column("content", Text, nullable=False),
    Column("kind", String, nullable=False),  # "text" | "error"
    Column("reply_to", String),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("deleted_at", BigInteger),
    # Added by migration 6: 1 for a reply cut off at max_reply_bytes.
    Column("truncated", BigInteger, nullable=False, default=0),
)

llm_messages = Table(
    "llm_messages",
    metadata,
    Column("id", String, primary_key=True),
    # NULL on the steps of a tool-using reply (migration 12), which belong to
    # no message: they are found by reply_to (the trigger) and author_id.
    Column("message_id", String, ForeignKey("messages.id"), unique=True),
    Column("role", String, nullable=False),  # "user" | "assistant" | "system"
    Column("content", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    # Added by migration 7, on a reply's llm_message: the tokens the provider
    # counted (NULL when it reported none) and the model that answered.
    Column("prompt_tokens", BigInteger),
    Column("completion_tokens", BigInteger),
    Column("model", String),
    # Added by migration 12: the steps of a tool-using reply (wizd.replies.steps).
    Column("job_id", String),
    Column("reply_to", String, ForeignKey("messages.id")),
    Column("author_id", String, ForeignKey("users.id")),
    Column("step", BigInteger),
    Column("position", BigInteger),
    Column("tool_calls", Text),  # JSON, on the assistant turn of a step
    Column("tool_call_id", String),
    Column("tool_name", String),
    # On a tool result: "waiting" (for approval), "approved", "started", "done".
    Column("tool_state", String),
)

# Also added by migration 7, outside SQLAlchemy: ``messages_fts``, an FTS5
# table over messages.content (rowid = seq, external content), kept in step by
# the triggers messages_fts_insert/_delete/_update; queried by store.search.

jobs = Table(
    "jobs",
    metadata,
    Column("id", String, primary_key=True),
    Column("name", String, nullable=False),
    Column("data", Text, nullable=False),  # JSON: references only, never secrets
    Column("opts", Text, nullable=False),  # JSON: the options it was added with
    Column("priority", BigInteger, nullable=False, default=0),
    Column("status", String, nullable=False),
    Column("progress", BigInteger, nullable=False, default=0),
    Column("attempts", BigInteger, nullable=False, default=0),
    Column("max_attempts", BigInteger, nullable=False),
    Column("result", Text),
    Column("failure_reason", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("processed_on", BigInteger),
    Column("finished_on", BigInteger),
    # Added by migration 2 (the scheduler): when a waiting/delayed job may run,
    # and the key of jobs that must run one at a time, in order.
    Column("run_at", BigInteger, nullable=False, default=0),
    Column("group_key", String),
    # Added by migration 6: 1 on the oldest pending job of its group, the one
    # that runs next (kept by store.jobs; internal, never shown).
    Column("is_head", BigInteger, nullable=False, default=0),
    # Added by migration 14: the node running an active job (wizd.cluster).
    Column("locked_by", String),
)

# Added by migration 14: the wizd nodes on this database, each with the lease
# it renews while it runs (wizd.cluster; times in ms, the database's clock on
# PostgreSQL).
nodes = Table(
    "nodes",
    metadata,
    Column("id", String, primary_key=True),
    Column("host", String, nullable=False),
    Column("pid", BigInteger, nullable=False),
    Column("socket", String, nullable=False),
    Column("version", String, nullable=False),
    Column("started_at", BigInteger, nullable=False),
    Column("seen_at", BigInteger, nullable=False),
    Column("lease_until", BigInteger, nullable=False),
)

# Added by migration 3: queue-wide settings that survive restarts ("paused").
queue_state = Table(
    "queue_state",
    metadata,
    Column("key", String, primary_key=True),
    Column("value", Text, nullable=False),  # JSON
    Column("updated_at", BigInteger, nullable=False),
)

# Added by migration 8: what is left of a finished job once retention pruned
# it, so that job.get can say so (wizd.jobs.retention).
jobs_pruned = Table(
    "jobs_pruned",
    metadata,
    Column("id", String, primary_key=True),
    Column("name", String, nullable=False),
    Column("status", String, nullable=False),
    Column("failure_reason", Text),
    Column("created_at", BigInteger, nullable=False),
    Column("finished_on", BigInteger),
    Column("pruned_at", BigInteger, nullable=False),
)

# Added by migration 9: the reply jobs not finished yet, by agent (an agent
# with one is busy); kept by wizd.replies, read by store.replies.
pending_replies = Table(
    "pending_replies",
    metadata,
    Column("job_id", String, primary_key=True),
    Column("agent_id", String, nullable=False),
)

# How far messages_fts has indexed messages (one row; migration 10).
search_indexed = Table(
    "search_indexed",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("seq", BigInteger, nullable=False),
)

# Added by migration 11: MCP servers (wizd.services.mcp). ``command`` is a JSON
# list (stdio), ``url`` the endpoint (streamable HTTP); ``env`` a JSON object:
# a variable of the server's environment -> the name of wizd's variable that
# gives its value when the server starts (values are never stored).
mcp_servers = Table(
    "mcp_servers",
    metadata,
    Column("id", String, primary_key=True),
    Column("name", String, nullable=False),
    Column("transport", String, nullable=False),  # "stdio" | "http"
    Column("command", Text),
    Column("url", Text),
    Column("env", Text, nullable=False, default="{}"),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("deleted_at", BigInteger),
    # Migration 12: JSON lists of tool-name patterns ("*": every tool).
    Column("idempotent", Text, nullable=False, default="[]"),
    Column("confirm", Text, nullable=False, default="[]"),
)
