"""Queries over ``users``: the local human and the users behind agents."""

from __future__ import annotations

from typing import TypedDict

from sqlalchemy import Connection, select, update

from ..objects import UserType
from .rows import every, first
from .schema import users


class UserRow(TypedDict):
    id: str
    name: str
    type: UserType
    created_at: int
    updated_at: int
    deleted_at: int | None


def insert(conn: Connection, *, id: str, name: str, type: UserType, now_ms: int) -> None:
    conn.execute(users.insert().values(id=id, name=name, type=type, created_at=now_ms,
                                       updated_at=now_ms))


def rename(conn: Connection, user_id: str, name: str, now_ms: int) -> None:
    conn.execute(update(users).where(users.c.id == user_id).values(name=name, updated_at=now_ms))


def first_human_id(conn: Connection) -> str | None:
    """The oldest human user's id (the local user), if any."""
    found = conn.execute(select(users.c.id).where(users.c.type == "human")
                         .order_by(users.c.created_at).limit(1)).scalar()
    return None if found is None else str(found)


def get(conn: Connection, user_id: str) -> UserRow | None:
    """The user, soft-deleted or not (history keeps its authors)."""
    return first(conn, select(users).where(users.c.id == user_id), UserRow)


def live_id(conn: Connection, user_id: str) -> str | None:
    """``user_id`` if it names a user that is not deleted."""
    found = conn.execute(select(users.c.id).where(users.c.id == user_id,
                                                  users.c.deleted_at.is_(None))).scalar()
    return None if found is None else str(found)


def list_live(conn: Connection) -> list[UserRow]:
    """Users not deleted, oldest first."""
    return every(conn, select(users).where(users.c.deleted_at.is_(None))
                 .order_by(users.c.created_at, users.c.id), UserRow)
