"""Providers over a real database: defaults, secrets, soft delete, the built-in one."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from wizd.errors import Conflict, InvalidInput, NotFound
from wizd.llm.base import ProviderConfig
from wizd.services import agents, providers
from wizd.services.agents import AgentCreate
from wizd.services.providers import ProviderCreate, ProviderUpdate
from wizd.services.runtime import Runtime
from wizd.store.schema import llm_providers

pytestmark = pytest.mark.anyio

KEY = "sk-test-Zq81secretvalue"


def defaults(provs: list[dict]) -> list[str]:
    return [p["name"] for p in provs if p["is_default"]]


async def test_fresh_database_has_the_builtin_offline_default(rt: Runtime) -> None:
    [builtin] = await providers.list_providers(rt)
    assert builtin["name"] == "offline" and builtin["type"] == "offline"
    assert builtin["default_model"] == "offline-demo" and builtin["is_default"] is True
    # Idempotent: a second start adds nothing.
    await providers.ensure_builtin_provider(rt)
    assert len(await providers.list_providers(rt)) == 1


async def test_deleted_builtin_is_not_brought_back(rt: Runtime) -> None:
    await providers.create(rt, ProviderCreate(name="real", type="openai", default_model="gpt-x"))
    await providers.delete(rt, "offline")
    await providers.ensure_builtin_provider(rt)
    assert [p["name"] for p in await providers.list_providers(rt)] == ["real"]
    # ... and the remaining provider took over as the default.
    assert defaults(await providers.list_providers(rt)) == ["real"]


async def test_create_openai_defaults_url_and_hides_key(rt: Runtime) -> None:
    p = await providers.create(rt, ProviderCreate(
        name="oa", type="openai", default_model="gpt-4o-mini", api_key=KEY))
    assert p["base_url"] == "https://api.openai.com/v1"
    assert p["has_api_key"] is True and p["api_key_env"] is None
    assert p["is_default"] is False  # the built-in one stays default
    everything = [p, await providers.get(rt, "oa"), await providers.list_providers(rt)]
    assert KEY not in json.dumps(everything)
    assert "api_key" not in p


async def test_exactly_one_default(rt: Runtime) -> None:
    await providers.create(rt, ProviderCreate(name="a", type="openai", default_model="m",
                                          base_url="http://127.0.0.1:9/v1/", is_default=True))
    assert defaults(await providers.list_providers(rt)) == ["a"]
    b = await providers.create(rt, ProviderCreate(name="b", type="offline", default_model="m"))
    assert defaults(await providers.list_providers(rt)) == ["a"]
    assert (await providers.set_default(rt, b["id"]))["is_default"] is True
    assert defaults(await providers.list_providers(rt)) == ["b"]
    with pytest.raises(Conflict):
        await providers.update_provider(rt, "b", ProviderUpdate(is_default=False))
    await providers.update_provider(rt, "a", ProviderUpdate(is_default=True))
    assert defaults(await providers.list_providers(rt)) == ["a"]
    assert (await providers.get(rt, "a"))["base_url"] == "http://127.0.0.1:9/v1"


async def test_first_provider_becomes_default_when_none_is_live(rt: Runtime) -> None:
    other = await providers.create(rt, ProviderCreate(
            name="tmp", type="offline", default_model="m"))
    await providers.set_default(rt, other["id"])
    await providers.delete(rt, "offline")
    await providers.delete(rt, "tmp")
    assert await providers.list_providers(rt) == []
    fresh = await providers.create(rt, ProviderCreate(
            name="fresh", type="offline", default_model="m"))
    assert fresh["is_default"] is True


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"type": "anthropic"}, "type"),
    ({"name": "   "}, "name"),
    ({"base_url": "ftp://x"}, "base_url"),
    ({"api_key_env": "NOT VALID"}, "api_key_env"),
    ({"api_key": "k", "api_key_env": "K"}, "api_key_env"),
    ({"default_model": ""}, "default_model"),
])
async def test_create_refuses_bad_input(rt: Runtime, kwargs: dict, field: str) -> None:
    args = {"name": "p", "type": "openai", "default_model": "m"} | kwargs
    with pytest.raises(InvalidInput) as info:
        await providers.create(rt, ProviderCreate(**args))
    assert info.value.field == field


async def test_duplicate_name_conflicts_until_deleted(rt: Runtime) -> None:
    await providers.create(rt, ProviderCreate(name="dup", type="offline", default_model="m"))
    with pytest.raises(Conflict):
        await providers.create(rt, ProviderCreate(name="dup", type="offline", default_model="m"))
    deleted = await providers.delete(rt, "dup")
    assert deleted["deleted"] is True
    with pytest.raises(NotFound):
        await providers.get(rt, "dup")
    await providers.create(rt, ProviderCreate(name="dup", type="offline", default_model="m"))


async def test_delete_refused_while_an_agent_uses_it(rt: Runtime) -> None:
    p = await providers.create(rt, ProviderCreate(name="busy", type="offline", default_model="m"))
    await agents.create(rt, AgentCreate(
            name="ann", role="r", backstory="", goal="", provider_id="busy"))
    await agents.deactivate(rt, "ann")
    with pytest.raises(Conflict) as info:
        await providers.delete(rt, p["id"])
    assert info.value.data == {"agents": ["ann"]}
    assert (await providers.get(rt, p["id"]))["name"] == "busy"


async def test_update_switches_between_key_and_env(rt: Runtime) -> None:
    await providers.create(rt, ProviderCreate(
            name="k", type="openai", default_model="m", api_key=KEY))
    p = await providers.update_provider(rt, "k", ProviderUpdate(api_key_env="WIZ_TEST_KEY"))
    assert (p["has_api_key"], p["api_key_env"]) == (False, "WIZ_TEST_KEY")
    p = await providers.update_provider(rt, "k", ProviderUpdate(api_key="other"))
    assert (p["has_api_key"], p["api_key_env"]) == (True, None)
    p = await providers.update_provider(rt, "k", ProviderUpdate(api_key=""))
    assert (p["has_api_key"], p["api_key_env"]) == (False, None)
    p = await providers.update_provider(rt, "k", ProviderUpdate(name="renamed", default_model="m2"))
    assert (p["name"], p["default_model"]) == ("renamed", "m2")
    with pytest.raises(NotFound):
        await providers.update_provider(rt, "k", ProviderUpdate(name="again"))


async def test_provider_config_reads_key_or_env_at_call_time(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    stored = await providers.create(rt, ProviderCreate(
            name="s", type="openai", default_model="m", api_key=KEY))
    env = await providers.create(rt, ProviderCreate(
        name="e", type="openai", default_model="m", base_url="http://127.0.0.1:1/v1",
        api_key_env="WIZ_TEST_KEY"))
    cfg = await rt.db.read(providers.provider_config, stored["id"])
    assert isinstance(cfg, ProviderConfig)
    assert (cfg.name, cfg.type, cfg.base_url, cfg.default_model, cfg.api_key) == (
        "s", "openai", "https://api.openai.com/v1", "m", KEY)
    assert KEY not in repr(cfg)
    assert (await rt.db.read(providers.provider_config, env["id"])).api_key is None
    monkeypatch.setenv("WIZ_TEST_KEY", "from-env")
    assert (await rt.db.read(providers.provider_config, env["id"])).api_key == "from-env"
    with pytest.raises(NotFound):
        await rt.db.read(providers.provider_config, "nope")


async def test_key_is_stored_for_the_llm_layer(rt: Runtime) -> None:
    p = await providers.create(rt, ProviderCreate(
            name="s", type="openai", default_model="m", api_key=KEY))
    stored = await rt.db.read(lambda c: c.execute(
        select(llm_providers.c.api_key).where(llm_providers.c.id == p["id"])).scalar())
    assert stored == KEY


# -- keys held in files ---------------------------------------------------------


def key_file(tmp_path: Path, content: str = KEY + "\n", mode: int = 0o600,
             name: str = "openai.key") -> Path:
    path = tmp_path / name
    path.write_text(content)
    path.chmod(mode)
    return path


async def test_create_with_a_key_file_shows_the_path_never_the_key(
    rt: Runtime, tmp_path: Path
) -> None:
    path = key_file(tmp_path)
    p = await providers.create(rt, ProviderCreate(name="f", type="openai", default_model="m",
                                              api_key_file=str(path)))
    assert (p["api_key_file"], p["has_api_key"], p["api_key_env"]) == (str(path), False, None)
    everything = [p, await providers.get(rt, "f"), await providers.list_providers(rt)]
    assert KEY not in json.dumps(everything)
    # Nothing but the path is stored: a copy of the database holds no key.
    row = await rt.db.read(lambda c: c.execute(
        select(llm_providers).where(llm_providers.c.id == p["id"])).one())
    assert KEY not in repr(tuple(row))


async def test_provider_config_names_the_file_for_the_llm_layer(
    rt: Runtime, tmp_path: Path
) -> None:
    path = key_file(tmp_path)
    p = await providers.create(rt, ProviderCreate(name="f", type="openai", default_model="m",
                                              api_key_file=str(path)))
    cfg = await rt.db.read(providers.provider_config, p["id"])
    # Read by complete() off the event loop, right before the call.
    assert (cfg.api_key, cfg.api_key_file) == (None, str(path))


@pytest.mark.parametrize(("setup", "problem"), [
    (lambda d: d / "missing.key", "does not exist"),
    (lambda d: key_file(d, mode=0o640), "accessible by group or others (mode 0640)"),
    (lambda d: key_file(d, mode=0o604), "accessible by group or others (mode 0604)"),
    (lambda d: key_file(d, mode=0o622), "accessible by group or others (mode 0622)"),
    (lambda d: key_file(d, content="\n"), "is empty"),
    (lambda d: d, "not a regular file"),
])
async def test_create_refuses_an_unusable_key_file(
    rt: Runtime, tmp_path: Path, setup: Any, problem: str
) -> None:
    path = setup(tmp_path)
    with pytest.raises(InvalidInput) as info:
        await providers.create(rt, ProviderCreate(name="f", type="openai", default_model="m",
                                              api_key_file=str(path)))
    assert info.value.field == "api_key_file"
    assert problem in info.value.message and str(path) in info.value.message
    assert KEY not in info.value.message
    with pytest.raises(NotFound):
        await providers.get(rt, "f")


async def test_the_refusal_says_how_to_fix_the_mode(rt: Runtime, tmp_path: Path) -> None:
    path = key_file(tmp_path, mode=0o644)
    with pytest.raises(InvalidInput) as info:
        await providers.create(rt, ProviderCreate(name="f", type="openai", default_model="m",
                                              api_key_file=str(path)))
    assert info.value.message == (f"invalid api_key_file: API key file {path} is accessible "
                                  f"by group or others (mode 0644); run chmod 600 {path}")


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
async def test_create_refuses_a_key_file_of_another_user(rt: Runtime, tmp_path: Path) -> None:
    path = key_file(tmp_path)
    os.chown(path, 65534, 65534)
    with pytest.raises(InvalidInput) as info:
        await providers.create(rt, ProviderCreate(name="f", type="openai", default_model="m",
                                              api_key_file=str(path)))
    assert info.value.field == "api_key_file" and "owned by uid 65534" in info.value.message


@pytest.mark.parametrize("kwargs", [
    {"api_key_file": "relative/openai.key"},
    {"api_key_file": "/tmp/with\x00nul"},
    {"api_key_file": "/tmp/k", "api_key": "k"},
    {"api_key_file": "/tmp/k", "api_key_env": "K"},
])
async def test_create_refuses_a_bad_path_or_two_key_sources(rt: Runtime, kwargs: dict) -> None:
    with pytest.raises(InvalidInput) as info:
        await providers.create(rt, ProviderCreate(
                name="f", type="openai", default_model="m", **kwargs))
    assert info.value.field == "api_key_file"


async def test_update_moves_between_key_env_and_file(rt: Runtime, tmp_path: Path) -> None:
    path = key_file(tmp_path)

    def source(p: dict) -> tuple[bool, str | None, str | None]:
        return (p["has_api_key"], p["api_key_env"], p["api_key_file"])

    await providers.create(rt, ProviderCreate(
            name="k", type="openai", default_model="m", api_key=KEY))
    p = await providers.update_provider(rt, "k", ProviderUpdate(api_key_file=str(path)))
    assert source(p) == (False, None, str(path))
    stored = await rt.db.read(lambda c: c.execute(
        select(llm_providers.c.api_key).where(llm_providers.c.id == p["id"])).scalar())
    assert stored is None  # the stored key is gone, not merely hidden
    p = await providers.update_provider(rt, "k", ProviderUpdate(api_key_env="WIZ_TEST_KEY"))
    assert source(p) == (False, "WIZ_TEST_KEY", None)
    p = await providers.update_provider(rt, "k", ProviderUpdate(api_key_file=str(path)))
    p = await providers.update_provider(rt, "k", ProviderUpdate(api_key="other"))
    assert source(p) == (True, None, None)
    p = await providers.update_provider(rt, "k", ProviderUpdate(api_key_file=str(path)))
    p = await providers.update_provider(rt, "k", ProviderUpdate(api_key_file=""))
    assert source(p) == (False, None, None)


async def test_update_refuses_a_bad_key_file_and_changes_nothing(
    rt: Runtime, tmp_path: Path
) -> None:
    good = key_file(tmp_path)
    await providers.create(rt, ProviderCreate(
            name="k", type="openai", default_model="m", api_key_file=str(good)))
    bad = key_file(tmp_path, mode=0o644, name="shared.key")
    with pytest.raises(InvalidInput) as info:
        await providers.update_provider(rt, "k", ProviderUpdate(
                api_key_file=str(bad), name="renamed"))
    assert info.value.field == "api_key_file" and f"chmod 600 {bad}" in info.value.message
    p = await providers.get(rt, "k")
    assert (p["api_key_file"], p["name"]) == (str(good), "k")
