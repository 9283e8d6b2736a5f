"""Users: the local human (created on first start) and the users behind agents.

Every author of a message is a user, so an agent is a ``users`` row of type
``agent`` plus its ``agents`` row; conversations list user ids only.
"""

from __future__ import annotations

import getpass

from sqlalchemy import Connection

from ..errors import NotFound
from ..objects import User, UserType
from ..store import users as store
from ..store.database import once_per_database
from ..store.users import UserRow
from .runtime import Runtime, new_id


def public(row: UserRow) -> User:
    return {"id": row["id"], "name": row["name"], "type": row["type"],
            "created_at": row["created_at"]}


def insert_user(conn: Connection, *, name: str, type: UserType, now_ms: int) -> str:
    """Insert a user inside the caller's transaction; returns its id."""
    uid = new_id()
    store.insert(conn, id=uid, name=name, type=type, now_ms=now_ms)
    return uid


def _ensure_local(conn: Connection, now: int) -> str:
    once_per_database(conn)
    found = store.first_human_id(conn)
    if found:
        return found
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "me"
    return insert_user(conn, name=name, type="human", now_ms=now)


async def ensure_local_user(rt: Runtime) -> str:
    """The id of the local human user, created on first start."""
    rt.local_user_id = await rt.db.write(_ensure_local, rt.clock.now_ms())
    return rt.local_user_id


def get_row(conn: Connection, user_id: str) -> UserRow:
    """The user row (soft-deleted ones included: history keeps its authors).

    Raises NotFound.
    """
    row = store.get(conn, user_id)
    if row is None:
        raise NotFound("user", user_id)
    return row


async def me(rt: Runtime) -> User:
    """The local human user."""
    return await get(rt, rt.local_user_id)


async def get(rt: Runtime, user_id: str) -> User:
    """One user by id. Raises NotFound."""
    return public(await rt.db.read(get_row, user_id))


async def list_users(rt: Runtime) -> list[User]:
    """Every user that is not deleted, oldest first (the local human comes first)."""
    return [public(r) for r in await rt.db.read(store.list_live)]
