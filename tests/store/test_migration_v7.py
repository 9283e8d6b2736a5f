"""Migration 7 on a real SQLite file: the full-text index over messages (built
for an existing database, then kept in step by triggers), the providers'
``stream`` setting, and the replies' token counts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from wizd.store.migrations import migrate

V7 = 7


def _v6_with_history(path: Path) -> None:
    migrate(path, upto=6)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("INSERT INTO users VALUES ('u1', 'me', 'human', 0, 0, NULL)")
        conn.execute("INSERT INTO llm_providers (id, name, type, default_model, created_at,"
                     " updated_at) VALUES ('p1', 'local', 'openai', 'm', 0, 0)")
        for seq, text in [(1, "the quick brown fox"), (2, "a lazy dog sleeps")]:
            conn.execute(
                "INSERT INTO messages (seq, id, source_type, source_id, author_id, content,"
                " kind, created_at, updated_at) VALUES (?, ?, 'dm', 'c1', 'u1', ?, 'text', 0, 0)",
                (seq, f"m{seq}", text))
    conn.close()


def _matches(conn: sqlite3.Connection, query: str) -> list[int]:
    rows = conn.execute("SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?"
                        " ORDER BY rowid", (query,))
    return [r[0] for r in rows]


def test_v7_indexes_existing_messages_and_keeps_the_index_in_step(tmp_path: Path) -> None:
    path = tmp_path / "wiz.db"
    _v6_with_history(path)
    # Kept in step by v7's triggers; v10 moves indexing after the commit
    # (test_migration_v10.py).
    assert migrate(path, upto=V7) == (6, V7)
    conn = sqlite3.connect(path)
    try:
        assert _matches(conn, "fox") == [1]
        assert _matches(conn, "dog") == [2]
        with conn:
            conn.execute(
                "INSERT INTO messages (seq, id, source_type, source_id, author_id, content,"
                " kind, created_at, updated_at) VALUES (3, 'm3', 'dm', 'c1', 'u1',"
                " 'another fox; with a semicolon', 'text', 0, 0)")
        assert _matches(conn, "fox") == [1, 3]
        with conn:
            conn.execute("UPDATE messages SET content = 'a cat' WHERE seq = 1")
        assert _matches(conn, "fox") == [3]
        assert _matches(conn, "cat") == [1]
        with conn:
            conn.execute("DELETE FROM messages WHERE seq = 3")
        assert _matches(conn, "fox") == []
        conn.execute("INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')")
    finally:
        conn.close()


def test_v7_providers_stream_by_default_and_replies_have_token_columns(tmp_path: Path) -> None:
    path = tmp_path / "wiz.db"
    _v6_with_history(path)
    migrate(path)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT stream FROM llm_providers").fetchall() == [(1,)]
        columns = {r[1] for r in conn.execute("PRAGMA table_info(llm_messages)")}
        assert {"prompt_tokens", "completion_tokens", "model"} <= columns
    finally:
        conn.close()
