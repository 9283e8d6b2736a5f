"""``agent.update`` logs the fields that really changed (issue 11: a new
provider was logged as "no change")."""

from __future__ import annotations

import logging

import pytest

from wizd.services import agents, providers
from wizd.services.agents import AgentCreate, AgentUpdate
from wizd.services.providers import ProviderCreate
from wizd.services.runtime import Runtime

pytestmark = pytest.mark.anyio


def updated_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == agents.log.name and " updated " in r.getMessage()]


async def test_the_log_names_what_changed(rt: Runtime, caplog: pytest.LogCaptureFixture) -> None:
    await agents.create(rt, AgentCreate(name="ada", role="analyst", backstory="b", goal="g"))
    await providers.create(rt, ProviderCreate(name="fast", type="offline", default_model="m"))
    caplog.set_level(logging.INFO, logger=agents.log.name)

    await agents.update_agent(rt, "ada", AgentUpdate(provider_id="fast"))
    await agents.update_agent(rt, "ada", AgentUpdate(
            provider_id="fast", role="analyst"))  # as they are
    await agents.update_agent(rt, "ada", AgentUpdate(role="critic", model="m2", temperature=0.5))
    await agents.update_agent(rt, "ada", AgentUpdate(model=""))  # back to the provider's model

    assert updated_lines(caplog) == [
        "agent ada updated (provider_id)",
        "agent ada updated (no change)",
        "agent ada updated (model, role, temperature)",
        "agent ada updated (model)",
    ]
