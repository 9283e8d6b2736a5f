"""Queries over ``mcp_servers``: the MCP servers registered in wizd (Core).

``command`` and ``env`` are JSON text here; ``services.mcp`` encodes and
decodes them. ``env`` holds names of variables only, never their values.
"""

from __future__ import annotations

from typing import TypedDict

from sqlalchemy import Connection, select, update

from ..objects import McpTransport
from .rows import every, first
from .schema import mcp_servers

_live = mcp_servers.c.deleted_at.is_(None)


class McpServerRow(TypedDict):
    id: str
    name: str
    transport: McpTransport
    command: str | None  # a JSON list (stdio)
    url: str | None  # (http)
    env: str  # a JSON object: NAME -> the name of wizd's variable giving its value
    created_at: int
    updated_at: int
    deleted_at: int | None
    idempotent: str  # a JSON list of tool-name patterns (migration 12)
    confirm: str  # likewise


def by_ref(conn: Connection, ref: str) -> McpServerRow | None:
    """The live server whose id, or else name, is ``ref``."""
    for column in (mcp_servers.c.id, mcp_servers.c.name):
        row = first(conn, select(mcp_servers).where(_live, column == ref), McpServerRow)
        if row is not None:
            return row
    return None


def get(conn: Connection, server_id: str) -> McpServerRow | None:
    """The server, deleted or not."""
    return first(conn, select(mcp_servers).where(mcp_servers.c.id == server_id), McpServerRow)


def list_live(conn: Connection) -> list[McpServerRow]:
    """Live servers by name."""
    return every(conn, select(mcp_servers).where(_live).order_by(mcp_servers.c.name),
                 McpServerRow)


def id_named(conn: Connection, name: str) -> str | None:
    """The id of the live server named ``name``, if any."""
    found = conn.execute(select(mcp_servers.c.id)
                         .where(_live, mcp_servers.c.name == name)).scalar()
    return None if found is None else str(found)


def insert(conn: Connection, *, id: str, name: str, transport: McpTransport,
           command: str | None, url: str | None, env: str, now_ms: int,
           idempotent: str = "[]", confirm: str = "[]") -> None:
    conn.execute(mcp_servers.insert().values(
        id=id, name=name, transport=transport, command=command, url=url, env=env,
        created_at=now_ms, updated_at=now_ms, idempotent=idempotent, confirm=confirm))


def soft_delete(conn: Connection, server_id: str, now_ms: int) -> None:
    conn.execute(update(mcp_servers).where(mcp_servers.c.id == server_id)
                 .values(deleted_at=now_ms, updated_at=now_ms))
