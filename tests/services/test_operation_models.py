"""One pydantic model per create/update: its fields are the RPC method's params
(names, order, types, defaults, which are required), written once."""

from __future__ import annotations

import pydantic
import pytest

import wizd.rpc.methods  # noqa: F401 -- registers the methods
from wizd.rpc.registry import registry
from wizd.services.agents import AgentCreate, AgentUpdate
from wizd.services.providers import ProviderCreate, ProviderUpdate


@pytest.mark.parametrize(("method", "model", "first"), [
    ("agent.create", AgentCreate, []),
    ("agent.update", AgentUpdate, ["id"]),
    ("provider.create", ProviderCreate, []),
    ("provider.update", ProviderUpdate, ["id"]),
])
def test_the_rpc_params_are_the_models_fields(
    method: str, model: type[pydantic.BaseModel], first: list[str],
) -> None:
    params = registry.methods[method].params.model_fields
    assert list(params) == first + list(model.model_fields)
    for name, field in model.model_fields.items():
        assert params[name].annotation == field.annotation, name
        assert params[name].is_required() == field.is_required(), name
        assert params[name].default == field.default, name
    assert all(params[name].is_required() for name in first)


def test_a_model_refuses_a_field_it_does_not_know() -> None:
    with pytest.raises(pydantic.ValidationError):
        AgentUpdate(nmae="typo")  # type: ignore[call-arg]
