"""LLM providers: where agents send their requests, and with which key.

Types: ``openai`` (any OpenAI-compatible endpoint) and ``offline`` (a local
stand-in that needs no network, so a fresh install works unconfigured). A
provider is referred to by id or by name. Exactly one live provider is the
default at any time there is one; the first provider becomes it.

The API key is a secret, never returned by any function here nor written to
any log. A provider gets it from at most one of: the database (``api_key``:
stored as given, so a copy of the database file holds it), an environment
variable of the daemon (``api_key_env``, read by ``provider_config`` when a
job runs), or a private file (``api_key_file``, read by the LLM layer right
before each call and checked here when it is set). The last two keep the key
out of the database.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import anyio.to_thread
from sqlalchemy import Connection, select, update

from ..errors import Conflict, InvalidInput, NotFound
from ..llm.base import ProviderConfig
from ..llm.keyfile import KeyFileError, read_key_file
from ..objects import DeletedProvider, Provider
from ..store.schema import agents, llm_providers
from . import checks
from .runtime import Runtime, new_id

log = logging.getLogger(__name__)

TYPES = ("openai", "offline")
OPENAI_URL = "https://api.openai.com/v1"
BUILTIN = {"name": "offline", "type": "offline", "default_model": "offline-demo"}

_live = llm_providers.c.deleted_at.is_(None)


def public(row: Any) -> Provider:
    """A provider as clients see it: ``has_api_key`` (a key is stored in the
    database) instead of the key, and where else it comes from, if anywhere."""
    return {
        "id": row.id,
        "name": row.name,
        "type": row.type,
        "base_url": row.base_url,
        "default_model": row.default_model,
        "is_default": bool(row.is_default),
        "has_api_key": row.api_key is not None,
        "api_key_env": row.api_key_env,
        "api_key_file": row.api_key_file,
        "stream": bool(row.stream),
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def resolve(conn: Connection, ref: str) -> Any:
    """The live provider whose id or name is ``ref``. Raises NotFound."""
    for column in (llm_providers.c.id, llm_providers.c.name):
        row = conn.execute(select(llm_providers).where(_live, column == ref)).first()
        if row is not None:
            return row
    raise NotFound("provider", ref)


def default_id(conn: Connection) -> str | None:
    """The id of the default provider, if any provider is live."""
    found = conn.execute(
        select(llm_providers.c.id).where(_live, llm_providers.c.is_default == 1)
    ).scalar()
    return None if found is None else str(found)


def provider_config(conn: Connection, provider_id: str) -> ProviderConfig:
    """What the LLM layer needs to call provider ``provider_id``, key included.

    The key is the stored one, or else the value of the environment variable
    named by ``api_key_env`` read now (None when neither is set). A key file is
    passed on as ``api_key_file``, for ``complete()`` to read off the event loop
    (this runs inside a database read, which on asyncio is on the loop). Only
    the job processor calls this; the result must not be logged or returned to
    clients. Raises NotFound for an unknown or deleted provider.
    """
    row = conn.execute(select(llm_providers)
                       .where(_live, llm_providers.c.id == provider_id)).first()
    if row is None:
        raise NotFound("provider", provider_id)
    key = row.api_key
    if key is None and row.api_key_env:
        key = os.environ.get(row.api_key_env) or None
    key_file = row.api_key_file if key is None and not row.api_key_env else None
    return ProviderConfig(row.id, row.name, row.type, row.base_url, row.default_model,
                          api_key=key, api_key_file=key_file, stream=bool(row.stream))


def _make_default(conn: Connection, provider_id: str, now: int) -> None:
    conn.execute(update(llm_providers).where(llm_providers.c.id != provider_id,
                                             llm_providers.c.is_default == 1)
                 .values(is_default=0, updated_at=now))
    conn.execute(update(llm_providers).where(llm_providers.c.id == provider_id)
                 .values(is_default=1, updated_at=now))


def _check_name_free(conn: Connection, name: str, *, except_id: str | None = None) -> None:
    found = conn.execute(select(llm_providers.c.id)
                         .where(_live, llm_providers.c.name == name)).scalar()
    if found is not None and found != except_id:
        raise Conflict(f"a provider named {name!r} already exists", name=name)


def _check_type(type: str) -> str:
    if type not in TYPES:
        raise InvalidInput("type", f"must be one of {', '.join(TYPES)}")
    return type


def _check_key(api_key: str | None, api_key_env: str | None, api_key_file: str | None) -> None:
    if api_key_file and (api_key or api_key_env):
        raise InvalidInput("api_key_file",
                           "give one of api_key, api_key_env and api_key_file, not two")
    if api_key and api_key_env:
        raise InvalidInput("api_key_env", "give api_key or api_key_env, not both")
    if api_key_env:
        checks.env_name("api_key_env", api_key_env)


async def _check_key_file(path: str | None) -> None:
    """Refuse a key file that a job could not use (read in a worker thread,
    and the key dropped at once). Raises InvalidInput naming ``api_key_file``."""
    if not path:
        return
    try:
        await anyio.to_thread.run_sync(read_key_file, path)
    except KeyFileError as exc:
        raise InvalidInput("api_key_file", str(exc)) from None


def _get(conn: Connection, provider_id: str) -> Provider:
    row = conn.execute(select(llm_providers).where(llm_providers.c.id == provider_id)).one()
    return public(row)


async def create(
    rt: Runtime,
    *,
    name: str,
    type: str,
    default_model: str,
    base_url: str | None = None,
    api_key: str | None = None,
    api_key_env: str | None = None,
    api_key_file: str | None = None,
    is_default: bool | None = None,
    stream: bool = True,
) -> Provider:
    """Create a provider; it becomes the default if asked or if it is the first.
    ``stream=False`` asks its server for one JSON answer instead of a stream.

    At most one of ``api_key``, ``api_key_env`` and ``api_key_file`` (an
    absolute path to a file of the daemon's user, mode 0600 or stricter). Raises
    InvalidInput (bad type, name, URL or key settings, a key file a job could
    not use) and Conflict (the name is taken).
    """
    name = checks.name("name", name)
    _check_type(type)
    default_model = checks.name("default_model", default_model, max_len=200)
    if base_url:
        base_url = checks.base_url("base_url", base_url)
    elif type == "openai":
        base_url = OPENAI_URL
    else:
        base_url = None
    _check_key(api_key, api_key_env, api_key_file)
    await _check_key_file(api_key_file)
    now = rt.clock.now_ms()

    def q(conn: Connection) -> Provider:
        _check_name_free(conn, name)
        pid = new_id()
        conn.execute(llm_providers.insert().values(
            id=pid, name=name, type=type, base_url=base_url, api_key=api_key or None,
            api_key_env=api_key_env or None, api_key_file=api_key_file or None,
            default_model=default_model, is_default=0, stream=int(stream),
            created_at=now, updated_at=now,
        ))
        if is_default or default_id(conn) is None:
            _make_default(conn, pid, now)
        return _get(conn, pid)

    provider = await rt.db.write(q)
    log.info("provider %s created (type %s, default %s)", name, type, provider["is_default"])
    return provider


async def list_providers(rt: Runtime) -> list[Provider]:
    """Every live provider, oldest first."""
    def q(conn: Connection) -> list[Provider]:
        rows = conn.execute(select(llm_providers).where(_live)
                            .order_by(llm_providers.c.created_at, llm_providers.c.id))
        return [public(r) for r in rows]

    return await rt.db.read(q)


async def get(rt: Runtime, ref: str) -> Provider:
    """One live provider by id or name. Raises NotFound."""
    return await rt.db.read(lambda conn: public(resolve(conn, ref)))


async def update_provider(
    rt: Runtime,
    ref: str,
    *,
    name: str | None = None,
    type: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    api_key_env: str | None = None,
    api_key_file: str | None = None,
    default_model: str | None = None,
    is_default: bool | None = None,
    stream: bool | None = None,
) -> Provider:
    """Change the given fields (None leaves one as it is).

    ``api_key=""``, ``api_key_env=""`` or ``api_key_file=""`` removes that
    setting; setting one of the three removes the other two. ``is_default=False``
    on the default provider is a Conflict: make another one the default instead.
    Raises NotFound, InvalidInput (as ``create``), Conflict.
    """
    changes: dict[str, Any] = {}
    if name is not None:
        changes["name"] = checks.name("name", name)
    if type is not None:
        changes["type"] = _check_type(type)
    if base_url is not None:
        changes["base_url"] = checks.base_url("base_url", base_url) if base_url else None
    if default_model is not None:
        changes["default_model"] = checks.name("default_model", default_model, max_len=200)
    if stream is not None:
        changes["stream"] = int(stream)
    _check_key(api_key, api_key_env, api_key_file)
    await _check_key_file(api_key_file)
    sources = {"api_key": api_key, "api_key_env": api_key_env, "api_key_file": api_key_file}
    for column, value in sources.items():
        if value is not None:
            changes[column] = value or None
    for column, value in sources.items():
        if value:  # the one source set: the others go
            changes.update({other: None for other in sources if other != column})
    now = rt.clock.now_ms()

    def q(conn: Connection) -> Provider:
        row = resolve(conn, ref)
        values = dict(changes)
        if "name" in values:
            _check_name_free(conn, values["name"], except_id=row.id)
        if values.get("type", row.type) == "openai" and not values.get("base_url", row.base_url):
            values["base_url"] = OPENAI_URL
        if is_default is False and row.is_default:
            raise Conflict("the default provider stays default until another one is made "
                           "default", provider=row.name)
        if values:
            conn.execute(update(llm_providers).where(llm_providers.c.id == row.id)
                         .values(**values, updated_at=now))
        if is_default:
            _make_default(conn, row.id, now)
        return _get(conn, row.id)

    provider = await rt.db.write(q)
    log.info("provider %s updated (%s)", provider["name"],
             ", ".join(sorted(changes)) or "no change")  # field names only, never values
    return provider


async def set_default(rt: Runtime, ref: str) -> Provider:
    """Make ``ref`` the default provider (the one before it no longer is). Raises NotFound."""
    return await update_provider(rt, ref, is_default=True)


async def delete(rt: Runtime, ref: str) -> DeletedProvider:
    """Soft-delete a provider no agent uses; returns it with ``deleted: true``.

    If it was the default, the oldest remaining provider becomes the default.
    Raises NotFound, and Conflict while an agent (active or not) uses it.
    """
    now = rt.clock.now_ms()

    def q(conn: Connection) -> DeletedProvider:
        row = resolve(conn, ref)
        users_of = list(conn.execute(
            select(agents.c.name).where(agents.c.provider_id == row.id,
                                        agents.c.deleted_at.is_(None)).order_by(agents.c.name)
        ).scalars())
        if users_of:
            raise Conflict(f"provider {row.name!r} is used by agents: {', '.join(users_of)}",
                           agents=users_of)
        conn.execute(update(llm_providers).where(llm_providers.c.id == row.id)
                     .values(deleted_at=now, is_default=0, updated_at=now))
        _repair_default(conn, now)
        return {**_get(conn, row.id), "deleted": True}

    provider = await rt.db.write(q)
    log.info("provider %s deleted", provider["name"])
    return provider


def _repair_default(conn: Connection, now: int) -> None:
    """Make the oldest live provider the default if none is."""
    if default_id(conn) is not None:
        return
    oldest = conn.execute(select(llm_providers.c.id).where(_live)
                          .order_by(llm_providers.c.created_at, llm_providers.c.id)).scalar()
    if oldest is not None:
        _make_default(conn, oldest, now)


def _ensure_builtin(conn: Connection, now: int) -> bool:
    # Only a database that never had a provider gets the built-in one, so a
    # provider the user deleted or renamed is not brought back on each start.
    created = conn.execute(select(llm_providers.c.id).limit(1)).first() is None
    if created:
        conn.execute(llm_providers.insert().values(
            id=new_id(), **BUILTIN, is_default=1, created_at=now, updated_at=now))
    _repair_default(conn, now)
    return created


async def ensure_builtin_provider(rt: Runtime) -> None:
    """On first start, create the default ``offline`` provider; idempotent.

    Also makes sure that exactly one live provider is the default when any is
    live (a database written by hand or by an old version may have none).
    """
    if await rt.db.write(_ensure_builtin, rt.clock.now_ms()):
        log.info("created the built-in provider %r (type offline)", BUILTIN["name"])
