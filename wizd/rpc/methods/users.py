"""user.me, user.list, user.get."""

from __future__ import annotations

from ...objects import User, UserList
from ...services import users
from ..registry import registry
from ..server import Call


@registry.method("user.me")
async def user_me(call: Call) -> User:
    """The local human user (created on first start)."""
    return await users.me(call.rt)


@registry.method("user.list")
async def user_list(call: Call) -> UserList:
    """Every user, human and agent, oldest first."""
    return {"users": await users.list_users(call.rt)}


@registry.method("user.get")
async def user_get(call: Call, id: str) -> User:
    """One user by id."""
    return await users.get(call.rt, id)
