"""Migration 12: tools for agents (allow-list, step limit), tool marks of MCP
servers, and llm_messages copied into a table whose ``message_id`` may be
NULL (the steps of a tool-using reply)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from wizd.store.migrations import migrate


def test_v12_from_v11_keeps_llm_messages_and_adds_the_tool_columns(tmp_path: Path) -> None:
    path = tmp_path / "wiz.db"
    migrate(path, upto=11)
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.execute("INSERT INTO llm_messages (id, message_id, role, content, created_at,"
                         " updated_at, prompt_tokens, completion_tokens, model)"
                         " VALUES ('l1', 'm1', 'assistant', 'hi', 1, 2, 3, 4, 'gpt')")
            conn.execute("INSERT INTO mcp_servers (id, name, transport, command, env,"
                         " created_at, updated_at) VALUES ('s', 'fs', 'stdio', '[\"x\"]', '{}',"
                         " 0, 0)")
        conn.close()
        assert migrate(path, upto=12) == (11, 12)
        conn = sqlite3.connect(path)
        row = conn.execute("SELECT id, message_id, role, content, created_at, updated_at,"
                           " prompt_tokens, completion_tokens, model, job_id, tool_state"
                           " FROM llm_messages").fetchall()
        assert row == [("l1", "m1", "assistant", "hi", 1, 2, 3, 4, "gpt", None, None)]
        assert conn.execute("SELECT idempotent, confirm FROM mcp_servers").fetchall() == [
            ("[]", "[]")]
        with conn:  # a step: no message of its own
            conn.execute("INSERT INTO llm_messages (id, role, content, created_at, updated_at,"
                         " reply_to, author_id, step, position, tool_call_id, tool_state)"
                         " VALUES ('l2', 'tool', '', 5, 5, 'm1', 'u', 1, 1, 'c', 'started')")
        plan = conn.execute("EXPLAIN QUERY PLAN SELECT * FROM llm_messages WHERE reply_to = 'm1'"
                            " AND author_id = 'u' ORDER BY step, position").fetchall()
        assert "llm_messages_steps" in repr(plan)
        assert migrate(path, upto=13) == (12, 13)
        # job.get and approvals find a job's steps without a scan of every row.
        [(sql,)] = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'llm_messages_job'"
                                ).fetchall()
        assert "ON llm_messages (job_id)" in sql
        columns = [r[1] for r in conn.execute("PRAGMA table_info(agents)")]
        assert columns[-2:] == ["tools", "max_steps"]
    finally:
        conn.close()
