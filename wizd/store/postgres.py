"""What the store does differently on PostgreSQL (``--db postgresql://...``).

The store's statements are written once, for SQLite's DB-API (``:name``
placeholders); on PostgreSQL ``raw(conn)`` hands them to psycopg through
``Raw``, which rewrites each statement once (then from a cache): ``:name``
becomes ``%(name)s``, SQLite's ``INDEXED BY`` hints go. A statement whose
meaning differs between the engines is written twice in its store module,
picked by ``is_pg(conn)``.

Migrations: ``schema_version`` (a one-row table) counts the versions of
``migrations_pg.PG_MIGRATIONS`` applied, as SQLite's ``user_version`` does;
each runs in its own transaction with the bump, under an advisory lock so
that nodes starting together migrate once. Back up with ``pg_dump`` before
an upgrade: no copy is written here.
"""

from __future__ import annotations

import logging
import re
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import psycopg
from psycopg.adapt import Loader

from ..errors import SchemaError
from .migrations_pg import PG_MIGRATIONS
from .postgres_keys import DEFERRED, MIGRATE_LOCK, PENDING_BEGIN, STALE_BEGIN
from .urls import shown

log = logging.getLogger(__name__)

def engine_url(url: str) -> str:
    """SQLAlchemy's URL for ``url``: the psycopg (3) driver."""
    return "postgresql+psycopg://" + url.partition("://")[2]


# libpq's defaults wait on a dead network for as long as the OS does (a
# connect for minutes, a half-open connection for two hours): a write waiting
# there holds every other write. These bound that, unless the URL says otherwise.
NETWORK_DEFAULTS = {
    "connect_timeout": "10",  # seconds
    "keepalives": "1",
    "keepalives_idle": "30",  # seconds idle before the first probe
    "keepalives_interval": "10",
    "keepalives_count": "3",
    "tcp_user_timeout": "60000",  # ms unacknowledged data may wait
}


def connect_args(url: str) -> dict[str, Any]:
    """``NETWORK_DEFAULTS`` but those ``url`` sets itself (psycopg lets keyword
    arguments win over the URL's parameters)."""
    given = {item.partition("=")[0] for item in urlsplit(url).query.split("&") if item}
    return {k: v for k, v in NETWORK_DEFAULTS.items() if k not in given}


class _Number(Loader):
    """numeric (``sum`` of bigints) as int when whole, as SQLite gives it, else float."""

    def load(self, data: Any) -> int | float:
        value = Decimal(bytes(data).decode())
        return int(value) if value == value.to_integral_value() else float(value)


def prepare(dbapi_conn: psycopg.Connection[Any]) -> None:
    """A new connection as the store wants it: autocommit (the runner issues
    BEGIN and COMMIT itself, as on SQLite) and sums as numbers."""
    dbapi_conn.autocommit = True
    dbapi_conn.adapters.register_loader("numeric", _Number)


_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_INDEXED_BY = re.compile(r"\s+INDEXED BY \w+")
_TRANSLATED: dict[str, str] = {}


def translate(sql: str) -> str:
    """``sql`` written for sqlite3 (``:name``) as psycopg takes it (``%(name)s``)."""
    found = _TRANSLATED.get(sql)
    if found is None:
        found = _INDEXED_BY.sub("", sql).replace("%", "%%")
        found = _TRANSLATED[sql] = _PARAM.sub(r"%(\1)s", found)
    return found


# The runner's transactions begin lazily (``defer_begin``): their BEGIN goes
# out with their first statement, one round trip for both (psycopg's pipeline
# mode), and a transaction that runs no statement costs none. The connection's
# info dict holds the BEGIN not sent yet (under PENDING_BEGIN).


def defer_begin(info: dict[str, Any], begin: str) -> None:
    info[PENDING_BEGIN] = begin


def send_pending(conn: psycopg.Connection[Any], info: dict[str, Any],
                 *last: tuple[str, Any], commit: bool = False) -> list[psycopg.Cursor[Any]]:
    """Send the deferred BEGIN and statements (``Raw.later``), if any, then
    ``last`` (statements as psycopg takes them), in one round trip (psycopg's
    pipeline mode: the server runs them in order); the cursors of ``last``.
    Called with no ``last`` before a statement that SQLAlchemy sends (the
    engine's ``before_cursor_execute``). ``commit``: ``last`` ends the
    transaction, so a lost connection may have committed it (not a stale
    BEGIN's failure, whatever was pending)."""
    begin = info.pop(PENDING_BEGIN, None)
    statements = [*info.pop(DEFERRED, ()), *last]
    if begin is not None:
        statements.insert(0, (begin, None))
    if not statements:
        return []

    def send() -> list[psycopg.Cursor[Any]]:
        if len(statements) == 1:
            cursors = [conn.execute(*statements[0])]
        else:
            with conn.pipeline():
                cursors = [conn.execute(sql, params) for sql, params in statements]
        return cursors[len(cursors) - len(last):]

    if begin is None or commit:  # a failure now is not a stale BEGIN's
        return send()
    sent: list[psycopg.Cursor[Any]] = _stale_if_gone(conn, info, send)
    return sent


def _stale_if_gone(conn: psycopg.Connection[Any], info: dict[str, Any], send: Any) -> Any:
    """``send()``, the BEGIN with or before the first statement. A failure on a
    connection the server dropped (a restart, a network cut while wizd was
    idle) is noted in ``info`` (STALE_BEGIN): nothing of the transaction ran,
    and the runner runs it again on another connection, whatever the
    exception became on its way out (SQLAlchemy wraps its own statements')."""
    try:
        return send()
    except Exception:
        if conn.closed or conn.broken:
            info[STALE_BEGIN] = True
        raise


class Raw:
    """The psycopg connection under a SQLAlchemy one, taking sqlite3-style
    statements (see the module docstring)."""

    __slots__ = ("conn", "info")

    def __init__(self, conn: psycopg.Connection[Any], info: dict[str, Any]) -> None:
        self.conn = conn
        self.info = info

    def execute(self, sql: str, params: Any = None) -> psycopg.Cursor[Any]:
        # Always with params: psycopg then reads the %% that translate wrote as %.
        if PENDING_BEGIN not in self.info and DEFERRED not in self.info:
            return self.conn.execute(translate(sql), params or {})
        return send_pending(self.conn, self.info, (translate(sql), params or {}))[0]

    def later(self, sql: str, params: Any = None) -> None:
        """Queue a statement whose result nobody reads: it goes out with the
        next statement or the COMMIT, in one round trip with them. Its error,
        if any, is raised there, and fails the transaction."""
        self.info.setdefault(DEFERRED, []).append((translate(sql), params or {}))


def in_transaction(conn: psycopg.Connection[Any]) -> bool:
    return conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE


# -- migrations --------------------------------------------------------------------------

_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"


def schema_version(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    return 0 if row is None else int(row[0])


def migrate(url: str, *, latest: int, upto: int | None = None,
            migrations: tuple[str, ...] = PG_MIGRATIONS) -> tuple[int, int]:
    """Bring the database at ``url`` to version ``upto`` (default ``latest``,
    the number of SQLite's migrations, which ``migrations`` must match).

    Returns (version before, version after). Raises SchemaError when the
    database is newer than this wizd, or this wizd lacks the PostgreSQL text
    of a migration; psycopg.Error when it cannot connect or a script fails.
    """
    if len(migrations) < latest:
        raise SchemaError(
            f"this wizd has no PostgreSQL text for schema v{len(migrations) + 1}..v{latest} "
            "(wizd/store/migrations_pg.py): it cannot run on PostgreSQL")
    upto = latest if upto is None else upto
    with psycopg.connect(url, autocommit=True, **connect_args(url)) as conn:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
            conn.execute(_VERSION_TABLE)
            conn.execute("INSERT INTO schema_version (version)"
                         " SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM schema_version)")
            before = schema_version(conn)
            if before > latest:
                raise SchemaError(
                    f"{shown(url)} has schema version {before}, newer than this wizd knows "
                    f"({latest}); upgrade wiz, or point --db at another database. "
                    "The database was left untouched.")
        for version in range(before, upto):
            if version == before and before > 0:
                log.info("upgrading database schema v%d -> v%d (PostgreSQL: back it up "
                         "with pg_dump first)", before, upto)
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATE_LOCK,))
                if schema_version(conn) != version:
                    continue  # another node applied it meanwhile
                conn.execute(migrations[version].encode())
                conn.execute("UPDATE schema_version SET version = %s", (version + 1,))
        return before, max(before, upto)
