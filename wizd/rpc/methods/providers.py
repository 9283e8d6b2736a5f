"""provider.*: LLM providers. Results never carry the API key, only ``has_api_key``
and where else it comes from (``api_key_env``, ``api_key_file``).

The params of provider.create and provider.update are the fields of
``services.providers.ProviderCreate`` and ``ProviderUpdate``."""

from __future__ import annotations

from typing import Any

from ...objects import DeletedProvider, Provider, ProviderList
from ...services import providers
from ...services.providers import ProviderCreate, ProviderUpdate
from ..registry import registry
from ..server import Call
from .params import params_of


@registry.method("provider.create")
@params_of(ProviderCreate)
async def provider_create(call: Call, **fields: Any) -> Provider:
    """Create a provider (type "openai" or "offline"); the first one becomes the default.

    ``base_url`` defaults to https://api.openai.com/v1 for "openai". Give at most
    one of: the name of an environment variable of the daemon holding the key
    (``api_key_env``), the absolute path of a file of the daemon's user with
    mode 0600 holding it (``api_key_file``), both read when a job runs; or the
    key itself (``api_key``, stored in the database, never returned).
    ``stream: false`` asks the server for one JSON answer instead of a stream,
    for servers that cannot stream (a JSON answer is accepted either way).
    """
    return await providers.create(call.rt, ProviderCreate(**fields))


@registry.method("provider.list")
async def provider_list(call: Call) -> ProviderList:
    """Every provider, oldest first."""
    return {"providers": await providers.list_providers(call.rt)}


@registry.method("provider.get")
async def provider_get(call: Call, id: str) -> Provider:
    """One provider by id or name."""
    return await providers.get(call.rt, id)


@registry.method("provider.update")
@params_of(ProviderUpdate, first=("id",))
async def provider_update(call: Call, id: str, **fields: Any) -> Provider:
    """Change a provider (``id`` is its id or name); absent fields stay as they are.

    ``api_key: ""``, ``api_key_env: ""`` or ``api_key_file: ""`` removes that
    setting; setting one removes the other two.
    """
    return await providers.update_provider(call.rt, id, ProviderUpdate(**fields))


@registry.method("provider.delete")
async def provider_delete(call: Call, id: str) -> DeletedProvider:
    """Delete a provider (id or name) that no agent uses; conflict while one does."""
    return await providers.delete(call.rt, id)


@registry.method("provider.set_default")
async def provider_set_default(call: Call, id: str) -> Provider:
    """Make a provider (id or name) the default for new agents."""
    return await providers.set_default(call.rt, id)
