"""Users: the local human (created on first start) and the users behind agents."""

from __future__ import annotations

import getpass
from typing import Any

from sqlalchemy import Connection, select

from ..errors import NotFound
from ..store.schema import users
from .runtime import Runtime, new_id


def public(row: Any) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "type": row.type, "created_at": row.created_at}


def _ensure_local(conn: Connection, now: int) -> str:
    found = conn.execute(
        select(users.c.id).where(users.c.type == "human").order_by(users.c.created_at).limit(1)
    ).scalar()
    if found:
        return str(found)
    try:
        name = getpass.getuser()
    except (KeyError, OSError):
        name = "me"
    uid = new_id()
    conn.execute(users.insert().values(id=uid, name=name, type="human", created_at=now, updated_at=now))
    return uid


async def ensure_local_user(rt: Runtime) -> str:
    """The id of the local human user, created on first start."""
    rt.local_user_id = await rt.db.write(_ensure_local, rt.clock.now_ms())
    return rt.local_user_id


async def me(rt: Runtime) -> dict[str, Any]:
    return await get(rt, rt.local_user_id)


async def get(rt: Runtime, user_id: str) -> dict[str, Any]:
    def q(conn: Connection) -> Any:
        return conn.execute(select(users).where(users.c.id == user_id)).first()

    row = await rt.db.read(q)
    if row is None:
        raise NotFound("user", user_id)
    return public(row)


async def list_users(rt: Runtime) -> list[dict[str, Any]]:
    def q(conn: Connection) -> list[Any]:
        return list(conn.execute(select(users).where(users.c.deleted_at.is_(None))
                                 .order_by(users.c.created_at)).all())

    return [public(r) for r in await rt.db.read(q)]
