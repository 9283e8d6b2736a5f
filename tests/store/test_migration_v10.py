"""Migration 10 on a real SQLite file: the full-text index follows the
messages after their commits (``store.search.index_next``), from where v9's
triggers left it; a message changed or deleted before it is indexed leaves
the index consistent (FTS5's own integrity check)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import create_engine

from wizd.store.migrations import migrate
from wizd.store.search import index_next

V10 = 10

INSERT = ("INSERT INTO messages (seq, id, source_type, source_id, author_id, content, kind,"
          " created_at, updated_at) VALUES (?, ?, 'dm', 'c1', 'u1', ?, 'text', 0, 0)")


def _matches(conn: sqlite3.Connection, query: str) -> list[int]:
    rows = conn.execute("SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?"
                        " ORDER BY rowid", (query,))
    return [r[0] for r in rows]


def _index_next(path: Path, limit: int) -> tuple[int, int]:
    """One batch of the daemon's indexing, in a transaction of its own."""
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.begin() as conn:
            done = index_next(conn, limit)
    finally:
        engine.dispose()
    return done.upto, done.added


def _check(conn: sqlite3.Connection) -> None:
    with conn:
        conn.execute("INSERT INTO messages_fts(messages_fts) VALUES ('integrity-check')")


def test_v10_starts_where_the_triggers_left_the_index(tmp_path: Path) -> None:
    path = tmp_path / "wiz.db"
    migrate(path, upto=9)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("INSERT INTO users VALUES ('u1', 'me', 'human', 0, 0, NULL)")
        conn.execute(INSERT, (1, "m1", "the quick brown fox"))
        conn.execute(INSERT, (2, "m2", "a lazy dog"))
    conn.close()
    assert migrate(path, upto=V10) == (9, V10)
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT seq FROM search_indexed").fetchall() == [(2,)]
        assert _matches(conn, "fox") == [1]
        with conn:  # stored now: not indexed by its commit any more
            conn.execute(INSERT, (3, "m3", "another fox"))
        assert _matches(conn, "fox") == [1]
        _check(conn)
    finally:
        conn.close()
    assert _index_next(path, 100) == (3, 1)
    conn = sqlite3.connect(path)
    try:
        assert _matches(conn, "fox") == [1, 3]
        assert _index_next(path, 100) == (3, 0)  # nothing left: nothing done
        _check(conn)
    finally:
        conn.close()


def test_changes_before_and_after_indexing_keep_the_index_consistent(tmp_path: Path) -> None:
    path = tmp_path / "wiz.db"
    migrate(path)
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("INSERT INTO users VALUES ('u1', 'me', 'human', 0, 0, NULL)")
        for seq in range(1, 6):
            conn.execute(INSERT, (seq, f"m{seq}", f"fox number {seq}"))
    assert _index_next(path, 2) == (2, 2)  # a batch stops at its limit, in seq order
    with conn:
        conn.execute("UPDATE messages SET content = 'a cat' WHERE seq IN (1, 4)")  # indexed, not
        conn.execute("DELETE FROM messages WHERE seq IN (2, 5)")  # indexed, not
    _check(conn)
    assert _matches(conn, "fox") == []
    assert _matches(conn, "cat") == [1]
    assert _index_next(path, 100) == (4, 2)  # 3 and 4, as they are now
    assert _matches(conn, "fox") == [3]
    assert _matches(conn, "cat") == [1, 4]
    _check(conn)
    conn.close()
