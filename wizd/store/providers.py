"""Queries over ``llm_providers``. A row holds the API key (``api_key``):
only ``services.providers`` reads it, and never returns it.

Core, except ``get_live``, which every reply attempt runs: DB-API through
``raw`` with ``:name`` params."""

from __future__ import annotations

from typing import TypedDict, cast

from sqlalchemy import Connection, select, update

from ..objects import ProviderType
from .database import raw
from .rows import every, first
from .schema import agents, llm_providers

_live = llm_providers.c.deleted_at.is_(None)


class ProviderRow(TypedDict):
    id: str
    name: str
    type: ProviderType
    base_url: str | None
    api_key: str | None  # the secret
    api_key_env: str | None
    default_model: str
    is_default: int
    created_at: int
    updated_at: int
    deleted_at: int | None
    api_key_file: str | None
    stream: int


class ProviderChanges(TypedDict, total=False):
    """The columns an update may set."""

    name: str
    type: ProviderType
    base_url: str | None
    api_key: str | None
    api_key_env: str | None
    api_key_file: str | None
    default_model: str
    stream: int


def by_ref(conn: Connection, ref: str) -> ProviderRow | None:
    """The live provider whose id, or else name, is ``ref``."""
    for column in (llm_providers.c.id, llm_providers.c.name):
        row = first(conn, select(llm_providers).where(_live, column == ref), ProviderRow)
        if row is not None:
            return row
    return None


def get(conn: Connection, provider_id: str) -> ProviderRow | None:
    """The provider, deleted or not."""
    return first(conn, select(llm_providers).where(llm_providers.c.id == provider_id),
                 ProviderRow)


def get_live(conn: Connection, provider_id: str) -> ProviderRow | None:
    """The live provider (hot: every reply attempt loads it)."""
    cursor = raw(conn).execute(_GET_LIVE, {"id": provider_id})
    found = cursor.fetchone()
    if found is None:
        return None
    return cast(ProviderRow, dict(zip(_COLUMNS, found, strict=True)))


_COLUMNS = tuple(llm_providers.c.keys())
_GET_LIVE = (f"SELECT {', '.join(_COLUMNS)} FROM llm_providers"
             " WHERE id = :id AND deleted_at IS NULL")


def list_live(conn: Connection) -> list[ProviderRow]:
    """Live providers, oldest first."""
    return every(conn, select(llm_providers).where(_live)
                 .order_by(llm_providers.c.created_at, llm_providers.c.id), ProviderRow)


def default_id(conn: Connection) -> str | None:
    """The id of the live default provider, if any."""
    found = conn.execute(select(llm_providers.c.id)
                         .where(_live, llm_providers.c.is_default == 1)).scalar()
    return None if found is None else str(found)


def oldest_live_id(conn: Connection) -> str | None:
    found = conn.execute(select(llm_providers.c.id).where(_live)
                         .order_by(llm_providers.c.created_at, llm_providers.c.id)).scalar()
    return None if found is None else str(found)


def id_named(conn: Connection, name: str) -> str | None:
    """The id of the live provider named ``name``, if any."""
    found = conn.execute(select(llm_providers.c.id)
                         .where(_live, llm_providers.c.name == name)).scalar()
    return None if found is None else str(found)


def any_ever(conn: Connection) -> bool:
    """Whether the database ever held a provider (deleted ones count)."""
    return conn.execute(select(llm_providers.c.id).limit(1)).first() is not None


def insert(
    conn: Connection, *, id: str, name: str, type: ProviderType, default_model: str,
    base_url: str | None = None, api_key: str | None = None, api_key_env: str | None = None,
    api_key_file: str | None = None, stream: bool = True, is_default: bool = False,
    now_ms: int,
) -> None:
    conn.execute(llm_providers.insert().values(
        id=id, name=name, type=type, base_url=base_url, api_key=api_key,
        api_key_env=api_key_env, api_key_file=api_key_file, default_model=default_model,
        is_default=int(is_default), stream=int(stream), created_at=now_ms, updated_at=now_ms,
    ))


def update_fields(conn: Connection, provider_id: str, changes: ProviderChanges,
                  now_ms: int) -> None:
    conn.execute(update(llm_providers).where(llm_providers.c.id == provider_id)
                 .values(**changes, updated_at=now_ms))


def make_default(conn: Connection, provider_id: str, now_ms: int) -> None:
    """``provider_id`` becomes the default; the one before it no longer is."""
    conn.execute(update(llm_providers).where(llm_providers.c.id != provider_id,
                                             llm_providers.c.is_default == 1)
                 .values(is_default=0, updated_at=now_ms))
    conn.execute(update(llm_providers).where(llm_providers.c.id == provider_id)
                 .values(is_default=1, updated_at=now_ms))


def soft_delete(conn: Connection, provider_id: str, now_ms: int) -> None:
    conn.execute(update(llm_providers).where(llm_providers.c.id == provider_id)
                 .values(deleted_at=now_ms, is_default=0, updated_at=now_ms))


def agents_using(conn: Connection, provider_id: str) -> list[str]:
    """The names of the live agents on ``provider_id``, sorted."""
    return [str(name) for name in conn.execute(
        select(agents.c.name).where(agents.c.provider_id == provider_id,
                                    agents.c.deleted_at.is_(None)).order_by(agents.c.name)
    ).scalars()]
