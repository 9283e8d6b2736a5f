"""The migration runner on a real SQLite file: SQLite parses each script (a
trigger's body and a ``;`` inside a string literal stay whole), and a script
that fails leaves the previous version, and nothing of itself, behind."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from wizd.store.migrations import migrate, schema_version

_TABLE = """
CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE note_log (note_id INTEGER, what TEXT);
"""

# A trigger (its body's statements end in ';'), a ';' inside a string literal
# and inside a comment -- each of which a split on ';' cuts in the wrong place.
_TRIGGER = """
CREATE TRIGGER notes_logged AFTER INSERT ON notes BEGIN
    INSERT INTO note_log (note_id, what) VALUES (new.id, 'added; logged');
    UPDATE note_log SET what = what || ';' WHERE note_id = new.id;
END;
-- a comment; with a semicolon
INSERT INTO notes (body) VALUES ('first; with a semicolon');
"""


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_a_trigger_and_a_semicolon_in_a_literal_stay_whole(tmp_path: Path) -> None:
    path = tmp_path / "wiz.db"
    assert migrate(path, migrations=(_TABLE, _TRIGGER)) == (0, 2)
    assert _rows(path, "SELECT body FROM notes") == [("first; with a semicolon",)]
    assert _rows(path, "SELECT note_id, what FROM note_log") == [(1, "added; logged;")]
    # The trigger exists whole, and goes on firing.
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("INSERT INTO notes (body) VALUES ('second')")
    assert conn.execute("SELECT count(*) FROM note_log").fetchone() == (2,)
    assert schema_version(conn) == 2
    conn.close()


def test_a_failing_script_leaves_the_version_before_it(tmp_path: Path) -> None:
    path = tmp_path / "wiz.db"
    broken = "CREATE TABLE half (id INTEGER);\nINSERT INTO missing VALUES (1);\n"
    with pytest.raises(sqlite3.OperationalError, match="missing"):
        migrate(path, migrations=(_TABLE, broken))
    conn = sqlite3.connect(path)
    assert schema_version(conn) == 1
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "notes" in tables and "half" not in tables
    assert not conn.in_transaction
    conn.close()
    # Fixed, the run goes on from where it stopped.
    assert migrate(path, migrations=(_TABLE, _TRIGGER)) == (1, 2)
