"""Queries of the nodes table (PostgreSQL; wizd.cluster): each wizd on the
database registers as a node and renews its lease while it runs. Times are
the database server's (``DB_NOW``), so that nodes on machines whose clocks
disagree judge leases alike."""

from __future__ import annotations

from sqlalchemy import Connection

from ..objects import Node
from .database import raw
from .postgres_keys import DB_NOW

_REGISTER = f"""
INSERT INTO nodes (id, host, pid, socket, version, started_at, seen_at, lease_until)
VALUES (:id, :host, :pid, :socket, :version, {DB_NOW}, {DB_NOW}, {DB_NOW} + :lease_ms)
ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid,
    socket = excluded.socket, version = excluded.version, started_at = excluded.started_at,
    seen_at = excluded.seen_at, lease_until = excluded.lease_until
"""


def register(conn: Connection, *, node_id: str, host: str, pid: int, socket: str,
             version: str, lease_ms: int) -> None:
    """Enter (or enter again) node ``node_id`` with a fresh lease of ``lease_ms``."""
    raw(conn).execute(_REGISTER, {"id": node_id, "host": host, "pid": pid, "socket": socket,
                                  "version": version, "lease_ms": lease_ms})


# The lease as it was (lapsed or not), then renewed: one statement, the old
# value read under the row's lock.
_RENEW = f"""
WITH old AS (SELECT lease_until FROM nodes WHERE id = :id FOR UPDATE)
UPDATE nodes SET seen_at = {DB_NOW}, lease_until = {DB_NOW} + :lease_ms
FROM old WHERE nodes.id = :id
RETURNING old.lease_until >= {DB_NOW}
"""


def renew(conn: Connection, node_id: str, lease_ms: int) -> bool | None:
    """Renew the node's lease. Whether it still held it (False: it had lapsed,
    and other nodes may have taken its jobs back); None if its row is gone."""
    row = raw(conn).execute(_RENEW, {"id": node_id, "lease_ms": lease_ms}).fetchone()
    return None if row is None else bool(row[0])


def leave(conn: Connection, node_id: str) -> None:
    """The node stops: its row goes (its jobs were returned to the queue)."""
    raw(conn).execute("DELETE FROM nodes WHERE id = :id", {"id": node_id})


# Nodes whose lease lapsed this long ago are forgotten (a node that died and
# never came back), so that the list does not grow with every node ever run.
FORGET_AFTER_MS = 24 * 3600 * 1000

_FORGET = f"DELETE FROM nodes WHERE lease_until < {DB_NOW} - :after"
_ALL = (f"SELECT id, host, pid, socket, version, started_at, seen_at, lease_until,"
        f" lease_until > {DB_NOW} FROM nodes ORDER BY started_at, id")


def forget_gone(conn: Connection) -> int:
    """Remove the rows of nodes whose lease lapsed over FORGET_AFTER_MS ago."""
    return int(raw(conn).execute(_FORGET, {"after": FORGET_AFTER_MS}).rowcount or 0)


def every(conn: Connection) -> list[Node]:
    """Every registered node, the oldest started first; ``alive``: its lease holds."""
    return [{"id": r[0], "host": r[1], "pid": r[2], "socket": r[3], "version": r[4],
             "started_at": r[5], "seen_at": r[6], "lease_until": r[7], "alive": bool(r[8])}
            for r in raw(conn).execute(_ALL).fetchall()]
