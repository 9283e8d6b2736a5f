"""Which SQLite and OS errors are storage conditions, and the causes they give:
real errors from SQLite wherever SQLite can be made to raise them here."""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from wizd.errors import SchemaError, StorageUnavailable
from wizd.store.failures import at_start, damaged, os_cause, storage_error


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "x.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE t (x TEXT)")
    conn.close()
    yield path


def raised(fn: object) -> BaseException:
    try:
        fn()  # type: ignore[operator]
    except BaseException as exc:
        return exc
    raise AssertionError("nothing raised")


def test_sqlite_full_is_disk_full(db: Path) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA max_page_count = 1")
    exc = raised(lambda: conn.execute("INSERT INTO t VALUES (?)", ("x" * 100_000,)))
    conn.close()
    translated = storage_error(exc)
    assert isinstance(translated, StorageUnavailable)
    assert translated.message == "storage unavailable: disk full"


def test_a_read_only_database(db: Path) -> None:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, isolation_level=None)
    exc = raised(lambda: conn.execute("INSERT INTO t VALUES ('x')"))
    conn.close()
    assert _cause(exc) == "read-only"


def test_a_database_that_cannot_be_opened(tmp_path: Path) -> None:
    exc = raised(lambda: sqlite3.connect(tmp_path / "missing" / "x.db"))
    assert _cause(exc) == "cannot open the database file"


def test_a_database_locked_by_another_process(db: Path) -> None:
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    other = sqlite3.connect(db, isolation_level=None, timeout=0)
    exc = raised(lambda: other.execute("BEGIN IMMEDIATE"))
    holder.close()
    other.close()
    assert _cause(exc) == "locked by another process"


def test_an_io_error_names_its_kind() -> None:
    # SQLite cannot be made to fail a read or a write here; this is the error
    # it raises then (SQLITE_IOERR_WRITE), as Python builds it.
    exc = sqlite3.OperationalError("disk I/O error")
    exc.sqlite_errorcode = 778  # type: ignore[attr-defined]
    exc.sqlite_errorname = "SQLITE_IOERR_WRITE"  # type: ignore[attr-defined]
    assert _cause(exc) == "I/O error: SQLITE_IOERR_WRITE"


def test_wrapped_by_sqlalchemy_as_well(db: Path) -> None:
    engine = create_engine(f"sqlite:///file:{db}?mode=ro&uri=true")
    with engine.connect() as conn:
        exc = raised(lambda: conn.execute(text("INSERT INTO t VALUES ('x')")))
    engine.dispose()
    assert isinstance(exc, OperationalError)
    assert _cause(exc) == "read-only"


def test_other_errors_are_not_storage_conditions(db: Path) -> None:
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("CREATE UNIQUE INDEX tx ON t (x)")
    conn.execute("INSERT INTO t VALUES ('x')")
    duplicate = raised(lambda: conn.execute("INSERT INTO t VALUES ('x')"))
    bad_sql = raised(lambda: conn.execute("SELEC 1"))
    conn.close()
    for exc in (duplicate, bad_sql, ValueError("x"), OSError(errno.EBADF, "bad fd")):
        assert storage_error(exc) is None, exc


@pytest.mark.parametrize(("code", "cause"), [
    (errno.ENOSPC, "disk full"),
    (errno.EDQUOT, "disk full"),
    (errno.EROFS, "read-only"),
    (errno.EACCES, "permission denied"),
    (errno.EISDIR, "a directory is in the way"),
    (errno.ENOTDIR, "a file is in the way"),
    (errno.EEXIST, "a file is in the way"),
    (errno.EIO, "I/O error: Input/output error"),
])
def test_os_errors(code: int, cause: str) -> None:
    assert os_cause(OSError(code, "...")) == cause


def test_a_start_up_failure_says_what_where_and_what_to_do() -> None:
    exc = at_start("disk full", "database /data/wiz.db", "--db")
    assert exc.message == ("storage unavailable: disk full (database /data/wiz.db); "
                           "free some space, or choose another --db")


def test_a_damaged_database_points_to_the_copy_and_to_recover(db: Path) -> None:
    copy = db.with_name("x.db.before-v3")
    copy.write_bytes(b"")
    with db.open("r+b") as f:
        f.seek(4096)
        f.write(b"\xff" * 4096)
    conn = sqlite3.connect(db)
    exc = raised(lambda: conn.execute("SELECT * FROM t").fetchall())
    conn.close()
    error = damaged(exc, db)
    assert isinstance(error, SchemaError)
    assert str(db) in error.message and str(copy) in error.message
    assert ".recover" in error.message
    assert damaged(ValueError("x"), db) is None


def _cause(exc: BaseException) -> str:
    translated = storage_error(exc)
    assert translated is not None, repr(exc)
    return translated.cause
