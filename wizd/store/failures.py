"""Storage failures: which errors mean the database's storage cannot serve a
call, and how they read. The one place SQLite's and the OS's errors become ours.

    SQLITE_FULL, ENOSPC, EDQUOT   disk full
    SQLITE_READONLY, EROFS        read-only
    SQLITE_IOERR_*, EIO           I/O error: <kind>
    SQLITE_CANTOPEN               cannot open the database file
    SQLITE_BUSY                   locked by another process

Each becomes ``StorageUnavailable`` with that short cause (what a client
reads: "storage unavailable: disk full"). A damaged file (SQLITE_CORRUPT,
SQLITE_NOTADB) is a SchemaError instead: no wait makes it go away.

At start-up an operator reads the error in the journal, so ``at_start``
adds where and what to do, on one line.

A constraint that refuses a write (SQLITE_CONSTRAINT: a unique index, a
foreign key) becomes ``Conflict`` through ``constraint_error``: services
check what they can first and never see SQLite's errors; the store's
statements and the write runner translate what gets past them.

On PostgreSQL (psycopg's errors, by SQLSTATE class): a lost or refused
connection (class 08, 57P01-03: the server shut down or restarts) is
"PostgreSQL unavailable", a full disk (53100) "disk full", other class 53
"out of resources"; an integrity violation (class 23) is a Conflict, read
by the constraint's name. psycopg is looked up, not imported: a wizd on
SQLite never loads it, and then no error can be one of its.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.exc import DBAPIError

from ..errors import Conflict, SchemaError, StorageUnavailable, WizError

# SQLite's primary result codes (the low byte of an extended one).
_SQLITE_CAUSES = {
    5: "locked by another process",  # SQLITE_BUSY
    8: "read-only",  # SQLITE_READONLY
    13: "disk full",  # SQLITE_FULL
    14: "cannot open the database file",  # SQLITE_CANTOPEN
}
_SQLITE_IOERR = 10
_SQLITE_DAMAGED = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB

_OS_CAUSES = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk full",
    errno.EROFS: "read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EISDIR: "a directory is in the way",
    errno.ENOTDIR: "a file is in the way",
    errno.EEXIST: "a file is in the way",  # mkdir of a folder where a file is
}
# OS errors that are the storage's condition whenever they happen (the
# others above are storage problems only where a path is being set up).
_OS_STORAGE = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EIO}

_ADVICE = {
    "PostgreSQL unavailable": "check that the server runs and the URL is right",
    "out of resources": "check the PostgreSQL server's log",
    "disk full": "free some space",
    "read-only": "make it writable",
    "permission denied": "make it writable for this user",
    "cannot open the database file": "check that its folder exists and is writable",
    "locked by another process": "stop the program that holds it",
    "I/O error": "check the disk (see dmesg)",
    "a directory is in the way": "move it away",
    "a file is in the way": "move it away",
}


def _sqlite_code(exc: BaseException) -> tuple[sqlite3.Error, int] | None:
    if isinstance(exc, DBAPIError):
        exc = exc.orig  # type: ignore[assignment]
    code = getattr(exc, "sqlite_errorcode", None)
    if not isinstance(exc, sqlite3.Error) or code is None:
        return None
    return exc, int(code)


def _pg_error(exc: BaseException) -> tuple[BaseException, str] | None:
    """psycopg's error in ``exc`` (itself or under SQLAlchemy's) and its SQLSTATE."""
    psycopg = sys.modules.get("psycopg")
    if psycopg is None:
        return None
    if isinstance(exc, DBAPIError):
        exc = exc.orig  # type: ignore[assignment]
    if not isinstance(exc, psycopg.Error):
        return None
    return exc, exc.sqlstate or ("08000" if isinstance(exc, psycopg.OperationalError) else "")


def _pg_cause(exc: BaseException) -> str | None:
    found = _pg_error(exc)
    if found is None:
        return None
    state = found[1]
    if state.startswith("08") or state in ("57P01", "57P02", "57P03"):
        first = str(found[0]).strip().splitlines()
        return "PostgreSQL unavailable" + (f": {first[0]}" if first else "")
    if state == "53100":
        return "disk full"
    if state.startswith("53"):
        return "out of resources"
    if state == "25006":  # read_only_sql_transaction: a standby, or default_transaction_read_only
        return "read-only"
    return None


def storage_error(exc: BaseException) -> StorageUnavailable | None:
    """The StorageUnavailable that ``exc`` stands for (``exc`` itself if it is
    one, else a new one caused by it), or None if ``exc`` is no storage condition."""
    if isinstance(exc, StorageUnavailable):
        return exc
    found = _sqlite_code(exc)
    pg_cause = None if found is not None else _pg_cause(exc)
    if pg_cause is not None:
        cause = pg_cause
    elif found is not None:
        error, code = found
        if code & 0xFF == _SQLITE_IOERR:
            cause = f"I/O error: {getattr(error, 'sqlite_errorname', code)}"
        elif code & 0xFF in _SQLITE_CAUSES:
            cause = _SQLITE_CAUSES[code & 0xFF]
        else:
            return None
    elif isinstance(exc, OSError) and exc.errno in _OS_STORAGE:
        cause = os_cause(exc)
    else:
        return None
    translated = StorageUnavailable(cause)
    translated.__cause__ = exc
    return translated


# What a constraint's failure means, by the columns SQLite names in its message.
_CONSTRAINTS = {
    "messages.reply_to, messages.author_id": "this author already replied to that message",
}
# The same, by the constraint's name, as PostgreSQL names it.
_PG_CONSTRAINTS = {
    "messages_one_reply": "this author already replied to that message",
}


def constraint_error(exc: BaseException) -> Conflict | None:
    """The Conflict that ``exc`` stands for if it is a constraint refusing a
    statement (SQLite's or SQLAlchemy's IntegrityError), else None."""
    pg = _pg_error(exc)
    if pg is not None:
        if not pg[1].startswith("23"):
            return None
        name = getattr(getattr(pg[0], "diag", None), "constraint_name", None)
        detail = str(pg[0]).strip().splitlines()[0] if str(pg[0]).strip() else pg[1]
        conflict = Conflict(_PG_CONSTRAINTS.get(name or "")
                            or f"refused by the database ({detail})")
        # Not chained: PostgreSQL's DETAIL ("Failing row contains (...)") holds
        # the row's values, an API key among them, and a logged traceback
        # would show it. The first line names the constraint.
        conflict.__cause__ = None
        conflict.__suppress_context__ = True
        return conflict
    if isinstance(exc, DBAPIError):
        exc = exc.orig  # type: ignore[assignment]
    if not isinstance(exc, sqlite3.IntegrityError):
        return None
    detail = str(exc)
    reason = _CONSTRAINTS.get(detail.partition(": ")[2])
    conflict = Conflict(reason or f"refused by the database ({detail})")
    conflict.__cause__ = exc
    return conflict


def os_cause(exc: OSError) -> str:
    """A short cause for an OS error met while using or setting up a path."""
    if exc.errno == errno.EIO:
        return f"I/O error: {os.strerror(errno.EIO)}"
    if exc.errno in _OS_CAUSES:
        return _OS_CAUSES[exc.errno]
    return exc.strerror or str(exc)


def at_start(cause: str, where: str, option: str) -> StorageUnavailable:
    """A start-up failure as one line: what, where, and what to do.

    ``option`` is the flag that picks another place (``--db``, ``--socket``).
    """
    advice = _ADVICE.get(cause.split(":")[0], "fix it")
    return StorageUnavailable(f"{cause} ({where}); {advice}, or choose another {option}")


def damaged(exc: BaseException, path: Path | str) -> SchemaError | None:
    """A SchemaError saying how to get the data back, if ``exc`` is SQLite
    finding the database at ``path`` damaged; else None."""
    if not isinstance(path, Path):
        return None
    found = _sqlite_code(exc)
    if found is None or found[1] & 0xFF not in _SQLITE_DAMAGED:
        return None
    copies = sorted(path.parent.glob(f"{path.name}.before-v*"), key=_version)
    restore = f"restore the copy {copies[-1]}" if copies else "restore it from a backup"
    return SchemaError(
        f"the database {path} is damaged ({found[0]}); {restore}, or recover what is "
        f"left: sqlite3 {path} .recover | sqlite3 {path}.recovered, then move "
        f"{path}.recovered to {path}"
    )


def _version(copy: Path) -> int:
    digits = copy.name.rpartition("-v")[2]
    return int(digits) if digits.isdigit() else -1


@contextlib.contextmanager
def starting(path: Path | str) -> Iterator[None]:
    """Storage trouble inside the block (opening the database at ``path``,
    its first writes) is raised as one line an operator can act on.
    (``path``: a SQLite file, or a PostgreSQL URL without its password.)

    Raises StorageUnavailable (from ``at_start``) or SchemaError (damaged);
    other errors, and WizErrors other than StorageUnavailable, pass unchanged.
    """
    try:
        yield
    except Exception as exc:
        failure = _at_start(exc, path)
        if failure is None:
            raise
        raise failure from exc


def _at_start(exc: Exception, path: Path | str) -> WizError | None:
    if not isinstance(path, Path):
        pg = storage_error(exc)
        return None if pg is None else at_start(pg.cause, f"database {path}", "--db")
    broken = damaged(exc, path)
    if broken is not None:
        return broken
    if isinstance(exc, OSError):
        where = exc.filename if exc.filename and Path(exc.filename) != path else None
        return at_start(os_cause(exc), str(where or f"database {path}"), "--db")
    storage = storage_error(exc)
    if storage is None:
        return None
    cause = storage.cause
    if cause.startswith("I/O error") and _no_space_left(path.parent):
        # SQLite reports some writes that found no space (the shared-memory
        # file's, a truncation) as I/O errors: say what the operator can fix.
        cause = "disk full"
    return at_start(cause, f"database {path}", "--db")


def _no_space_left(folder: Path) -> bool:
    try:
        return os.statvfs(folder).f_bavail == 0
    except OSError:
        return False
