"""A provider's ``stream`` setting over a real database: stored, shown, and
handed to the LLM layer."""

from __future__ import annotations

import pytest

from wizd.services import providers
from wizd.services.providers import ProviderCreate, ProviderUpdate
from wizd.services.runtime import Runtime

pytestmark = pytest.mark.anyio


async def test_providers_stream_unless_told_not_to(rt: Runtime) -> None:
    p = await providers.create(rt, ProviderCreate(name="a", type="openai", default_model="m"))
    assert p["stream"] is True
    assert (await providers.get(rt, "offline"))["stream"] is True
    cfg = await rt.db.read(lambda conn: providers.provider_config(conn, p["id"]))
    assert cfg.stream is True


async def test_stream_is_set_at_create_and_changed_by_update(rt: Runtime) -> None:
    p = await providers.create(rt, ProviderCreate(name="plain", type="openai", default_model="m",
                                              stream=False))
    assert p["stream"] is False
    cfg = await rt.db.read(lambda conn: providers.provider_config(conn, p["id"]))
    assert cfg.stream is False
    assert (await providers.update_provider(rt, "plain", ProviderUpdate(
            name="plainer")))["stream"] is False
    assert (await providers.update_provider(rt, "plainer", ProviderUpdate(
            stream=True)))["stream"] is True
    assert (await providers.get(rt, "plainer"))["stream"] is True

