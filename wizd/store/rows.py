"""Core query results as the TypedDict rows of ``store``'s modules.

Each query module declares its rows' shape (``AgentRow``, ``UserRow`` ...)
and reads them through these two functions, so services get plain dicts
whose keys mypy checks, never SQLAlchemy ``Row`` objects.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

from sqlalchemy import Connection, Executable

R = TypeVar("R")


def first(conn: Connection, query: Executable, shape: type[R]) -> R | None:
    """The first row of ``query`` as a ``shape`` dict, or None."""
    found = conn.execute(query).mappings().first()
    return None if found is None else cast(R, dict(found))


def every(conn: Connection, query: Executable, shape: type[R]) -> list[R]:
    """Every row of ``query``, as ``shape`` dicts."""
    rows: list[Any] = [dict(row) for row in conn.execute(query).mappings()]
    return cast(list[R], rows)
