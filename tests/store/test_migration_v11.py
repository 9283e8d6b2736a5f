"""Migration 11: the mcp_servers table (MCP servers registered in wizd)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from wizd.store.migrations import migrate

INSERT = ("INSERT INTO mcp_servers (id, name, transport, command, url, env, created_at, "
          "updated_at, deleted_at) VALUES (?, ?, ?, ?, ?, '{}', 0, 0, ?)")


def test_v11_from_v10_keeps_names_unique_among_live_servers(tmp_path: Path) -> None:
    path = tmp_path / "wiz.db"
    migrate(path, upto=10)
    assert migrate(path, upto=11) == (10, 11)
    conn = sqlite3.connect(path)
    try:
        with conn:
            conn.execute(INSERT, ("a", "fs", "stdio", '["x"]', None, 5))  # removed
            conn.execute(INSERT, ("b", "fs", "stdio", '["x"]', None, None))
        with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"), conn:
            conn.execute(INSERT, ("c", "fs", "http", None, "http://h/mcp", None))
        # A stdio server has a command and no url; an http one the other way round.
        for row in (("d", "d", "stdio", None, None, None),
                    ("e", "e", "http", '["x"]', "http://h/mcp", None),
                    ("f", "f", "ws", None, "ws://h", None)):
            with pytest.raises(sqlite3.IntegrityError, match="CHECK"), conn:
                conn.execute(INSERT, row)
    finally:
        conn.close()
