"""``wizd migrate-to postgresql://...``: copy a SQLite database into PostgreSQL.

Every table of ``schema.py`` is copied as it is (``COPY``, in one
transaction): ids, times and every message's seq kept, so clients resume
where they were. The target is migrated to the latest schema first and must
hold no data; the SQLite file is brought to the latest schema too (as a
wizd start would: a copy of it is kept before an upgrade) and must not be
in use by a running wizd (its instance lock is held meanwhile). On
PostgreSQL, the identities continue after the largest value SQLite ever
gave (its AUTOINCREMENT), the rows of ``jobs`` and ``dm_participants`` keep
their rowid (the order of their ties), and the full-text index is built for
what SQLite had indexed (the rest follows after start, as on SQLite).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg

from ..errors import Conflict
from . import postgres, schema
from .migrations import LATEST, migrate
from .urls import shown

# Tables whose PostgreSQL twin has SQLite's rowid as a column (migrations_pg).
_ROWID = ("jobs", "dm_participants")
# Identity columns to move past what was copied: (table, column, SQLite's
# sqlite_sequence name or None).
_IDENTITIES = (("messages", "seq", "messages"), ("jobs", "rowid", None),
               ("dm_participants", "rowid", None))


def copy(path: Path, url: str) -> dict[str, int]:
    """Copy the SQLite database at ``path`` into the PostgreSQL one at ``url``;
    returns the rows copied per table.

    Raises Conflict if the target already holds data; SchemaError as
    ``migrate`` does; psycopg.Error or sqlite3.Error if either database fails.
    """
    migrate(path)
    postgres.migrate(url, latest=LATEST)
    source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        with psycopg.connect(url, **postgres.connect_args(url)) as target, \
                target.transaction():
            for table in schema.metadata.sorted_tables:
                if target.execute(f"SELECT EXISTS (SELECT 1 FROM {table.name}"
                                  f"{' WHERE id != 1' if table.name == 'search_indexed' else ''})"
                                  ).fetchone() == (True,):
                    raise Conflict(f"{shown(url)} already holds data (table "
                                   f"{table.name}); migrate-to fills an empty database only")
            target.execute("DELETE FROM search_indexed")
            counts = {table.name: _copy_table(source, target, table.name,
                                              [c.name for c in table.columns])
                      for table in schema.metadata.sorted_tables}
            for table_name, column, sequence in _IDENTITIES:
                _continue_identity(source, target, table_name, column, sequence)
            target.execute("INSERT INTO messages_fts (seq, tsv)"
                           " SELECT seq, to_tsvector('simple', content) FROM messages"
                           " WHERE seq <= (SELECT seq FROM search_indexed)")
        return counts
    finally:
        source.close()


def _copy_table(source: sqlite3.Connection, target: psycopg.Connection[Any], name: str,
                columns: list[str]) -> int:
    if name in _ROWID:
        columns = [*columns, "rowid"]
    listed = ", ".join(columns)
    count = 0
    with target.cursor().copy(f"COPY {name} ({listed}) FROM STDIN") as pipe:
        for row in source.execute(f"SELECT {listed} FROM {name}"):
            pipe.write_row(row)
            count += 1
    return count


def _continue_identity(source: sqlite3.Connection, target: psycopg.Connection[Any],
                       table: str, column: str, sequence: str | None) -> None:
    """The next value of ``table.column``'s identity: past every value SQLite gave."""
    largest = source.execute(f"SELECT max({column}) FROM {table}").fetchone()[0] or 0
    if sequence is not None:
        found = source.execute("SELECT seq FROM sqlite_sequence WHERE name = ?",
                               (sequence,)).fetchone()
        largest = max(largest, found[0] if found else 0)
    if largest:
        target.execute("SELECT setval(pg_get_serial_sequence(%s, %s), %s)",
                       (table, column, largest))
