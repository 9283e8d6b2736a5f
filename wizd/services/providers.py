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
from typing import cast

import anyio.to_thread
import pydantic
from sqlalchemy import Connection

from ..errors import Conflict, InvalidInput, NotFound
from ..llm.base import ProviderConfig
from ..llm.keyfile import KeyFileError, read_key_file
from ..objects import DeletedProvider, Provider, ProviderType
from ..store import providers as store
from ..store.database import once_per_database
from ..store.providers import ProviderChanges, ProviderRow
from . import checks
from .runtime import Runtime, new_id

log = logging.getLogger(__name__)

TYPES = ("openai", "offline")
OPENAI_URL = "https://api.openai.com/v1"
BUILTIN_NAME = "offline"


class ProviderCreate(pydantic.BaseModel):
    """What ``provider.create`` takes: its RPC params and ``create``'s input.

    ``stream=False`` asks its server for one JSON answer instead of a stream.
    At most one of ``api_key``, ``api_key_env`` and ``api_key_file`` (an
    absolute path to a file of the daemon's user, mode 0600 or stricter).
    """

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    name: str
    type: str
    default_model: str
    base_url: str | None = None
    api_key: str | None = None
    api_key_env: str | None = None
    api_key_file: str | None = None
    is_default: bool | None = None
    stream: bool = True


class ProviderUpdate(pydantic.BaseModel):
    """What ``provider.update`` changes (besides the ``id`` it names): its RPC
    params and ``update_provider``'s input. None leaves a field as it is."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    type: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    api_key_env: str | None = None
    api_key_file: str | None = None
    default_model: str | None = None
    is_default: bool | None = None
    stream: bool | None = None


def public(row: ProviderRow) -> Provider:
    """A provider as clients see it: ``has_api_key`` (a key is stored in the
    database) instead of the key, and where else it comes from, if anywhere."""
    return {
        "id": row["id"],
        "name": row["name"],
        "type": row["type"],
        "base_url": row["base_url"],
        "default_model": row["default_model"],
        "is_default": bool(row["is_default"]),
        "has_api_key": row["api_key"] is not None,
        "api_key_env": row["api_key_env"],
        "api_key_file": row["api_key_file"],
        "stream": bool(row["stream"]),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def resolve(conn: Connection, ref: str) -> ProviderRow:
    """The live provider whose id or name is ``ref``. Raises NotFound."""
    row = store.by_ref(conn, ref)
    if row is None:
        raise NotFound("provider", ref)
    return row


def default_id(conn: Connection) -> str | None:
    """The id of the default provider, if any provider is live."""
    return store.default_id(conn)


def provider_config(conn: Connection, provider_id: str) -> ProviderConfig:
    """What the LLM layer needs to call provider ``provider_id``, key included.

    The key is the stored one, or else the value of the environment variable
    named by ``api_key_env`` read now (None when neither is set). A key file is
    passed on as ``api_key_file``, for ``complete()`` to read off the event loop
    (this runs inside a database read, which on asyncio is on the loop). Only
    the job processor calls this; the result must not be logged or returned to
    clients. Raises NotFound for an unknown or deleted provider.
    """
    row = store.get_live(conn, provider_id)
    if row is None:
        raise NotFound("provider", provider_id)
    key = row["api_key"]
    if key is None and row["api_key_env"]:
        key = os.environ.get(row["api_key_env"]) or None
    key_file = row["api_key_file"] if key is None and not row["api_key_env"] else None
    return ProviderConfig(row["id"], row["name"], row["type"], row["base_url"],
                          row["default_model"], api_key=key, api_key_file=key_file,
                          stream=bool(row["stream"]))


def _check_name_free(conn: Connection, name: str, *, except_id: str | None = None) -> None:
    found = store.id_named(conn, name)
    if found is not None and found != except_id:
        raise Conflict(f"a provider named {name!r} already exists", name=name)


def _check_type(type: str) -> ProviderType:
    if type not in TYPES:
        raise InvalidInput("type", f"must be one of {', '.join(TYPES)}")
    return cast(ProviderType, type)


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
    row = store.get(conn, provider_id)
    assert row is not None, "read inside the transaction that wrote it"
    return public(row)


async def create(rt: Runtime, spec: ProviderCreate) -> Provider:
    """Create a provider; it becomes the default if asked or if it is the first.

    Raises InvalidInput (bad type, name, URL or key settings, a key file a job
    could not use) and Conflict (the name is taken).
    """
    name = checks.name("name", spec.name)
    type = _check_type(spec.type)
    default_model = checks.name("default_model", spec.default_model, max_len=200)
    if spec.base_url:
        base_url: str | None = checks.base_url("base_url", spec.base_url)
    elif type == "openai":
        base_url = OPENAI_URL
    else:
        base_url = None
    _check_key(spec.api_key, spec.api_key_env, spec.api_key_file)
    await _check_key_file(spec.api_key_file)
    now = rt.clock.now_ms()

    def q(conn: Connection) -> Provider:
        _check_name_free(conn, name)
        pid = new_id()
        store.insert(conn, id=pid, name=name, type=type, base_url=base_url,
                     api_key=spec.api_key or None, api_key_env=spec.api_key_env or None,
                     api_key_file=spec.api_key_file or None, default_model=default_model,
                     stream=spec.stream, now_ms=now)
        if spec.is_default or store.default_id(conn) is None:
            store.make_default(conn, pid, now)
        return _get(conn, pid)

    provider = await rt.db.write(q)
    log.info("provider %s created (type %s, default %s)", name, type, provider["is_default"])
    return provider


async def list_providers(rt: Runtime) -> list[Provider]:
    """Every live provider, oldest first."""
    return [public(r) for r in await rt.db.read(store.list_live)]


async def get(rt: Runtime, ref: str) -> Provider:
    """One live provider by id or name. Raises NotFound."""
    return await rt.db.read(lambda conn: public(resolve(conn, ref)))


async def update_provider(rt: Runtime, ref: str, spec: ProviderUpdate) -> Provider:
    """Change the fields ``spec`` gives (None leaves one as it is).

    ``api_key=""``, ``api_key_env=""`` or ``api_key_file=""`` removes that
    setting; setting one of the three removes the other two. ``is_default=False``
    on the default provider is a Conflict: make another one the default instead.
    Raises NotFound, InvalidInput (as ``create``), Conflict.
    """
    changes: ProviderChanges = {}
    if spec.name is not None:
        changes["name"] = checks.name("name", spec.name)
    if spec.type is not None:
        changes["type"] = _check_type(spec.type)
    if spec.base_url is not None:
        changes["base_url"] = (checks.base_url("base_url", spec.base_url) if spec.base_url
                               else None)
    if spec.default_model is not None:
        changes["default_model"] = checks.name("default_model", spec.default_model,
                                               max_len=200)
    if spec.stream is not None:
        changes["stream"] = int(spec.stream)
    _check_key(spec.api_key, spec.api_key_env, spec.api_key_file)
    await _check_key_file(spec.api_key_file)
    given: ProviderChanges = {}
    if spec.api_key is not None:
        given["api_key"] = spec.api_key or None
    if spec.api_key_env is not None:
        given["api_key_env"] = spec.api_key_env or None
    if spec.api_key_file is not None:
        given["api_key_file"] = spec.api_key_file or None
    if spec.api_key or spec.api_key_env or spec.api_key_file:
        # The one source set (_check_key allows no more): the other two go.
        changes.update(ProviderChanges(api_key=None, api_key_env=None, api_key_file=None))
    changes.update(given)
    is_default = spec.is_default
    now = rt.clock.now_ms()

    def q(conn: Connection) -> Provider:
        row = resolve(conn, ref)
        values = ProviderChanges(**changes)
        if "name" in values:
            _check_name_free(conn, values["name"], except_id=row["id"])
        if (values.get("type", row["type"]) == "openai"
                and not values.get("base_url", row["base_url"])):
            values["base_url"] = OPENAI_URL
        if is_default is False and row["is_default"]:
            raise Conflict("the default provider stays default until another one is made "
                           "default", provider=row["name"])
        if values:
            store.update_fields(conn, row["id"], values, now)
        if is_default:
            store.make_default(conn, row["id"], now)
        return _get(conn, row["id"])

    provider = await rt.db.write(q)
    log.info("provider %s updated (%s)", provider["name"],
             ", ".join(sorted(changes)) or "no change")  # field names only, never values
    return provider


async def set_default(rt: Runtime, ref: str) -> Provider:
    """Make ``ref`` the default provider (the one before it no longer is). Raises NotFound."""
    return await update_provider(rt, ref, ProviderUpdate(is_default=True))


async def delete(rt: Runtime, ref: str) -> DeletedProvider:
    """Soft-delete a provider no agent uses; returns it with ``deleted: true``.

    If it was the default, the oldest remaining provider becomes the default.
    Raises NotFound, and Conflict while an agent (active or not) uses it.
    """
    now = rt.clock.now_ms()

    def q(conn: Connection) -> DeletedProvider:
        row = resolve(conn, ref)
        users_of = store.agents_using(conn, row["id"])
        if users_of:
            raise Conflict(f"provider {row['name']!r} is used by agents: {', '.join(users_of)}",
                           agents=users_of)
        store.soft_delete(conn, row["id"], now)
        _repair_default(conn, now)
        return {**_get(conn, row["id"]), "deleted": True}

    provider = await rt.db.write(q)
    log.info("provider %s deleted", provider["name"])
    return provider


def _repair_default(conn: Connection, now: int) -> None:
    """Make the oldest live provider the default if none is."""
    if store.default_id(conn) is not None:
        return
    oldest = store.oldest_live_id(conn)
    if oldest is not None:
        store.make_default(conn, oldest, now)


def _ensure_builtin(conn: Connection, now: int) -> bool:
    # Only a database that never had a provider gets the built-in one, so a
    # provider the user deleted or renamed is not brought back on each start.
    once_per_database(conn)
    created = not store.any_ever(conn)
    if created:
        store.insert(conn, id=new_id(), name=BUILTIN_NAME, type="offline",
                     default_model="offline-demo", is_default=True, now_ms=now)
    _repair_default(conn, now)
    return created


async def ensure_builtin_provider(rt: Runtime) -> None:
    """On first start, create the default ``offline`` provider; idempotent.

    Also makes sure that exactly one live provider is the default when any is
    live (a database written by hand or by an old version may have none).
    """
    if await rt.db.write(_ensure_builtin, rt.clock.now_ms()):
        log.info("created the built-in provider %r (type offline)", BUILTIN_NAME)
