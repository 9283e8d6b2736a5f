"""rpc.discover: the OpenRPC document, built once (not per call) and sent as built."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic_core import CoreSchema, core_schema

from wizd.rpc.dispatch import RawJSON, dispatch
from wizd.rpc.methods import registry as live
from wizd.rpc.openrpc import discover_result, document
from wizd.rpc.registry import Registry
from wizd.version import VERSION

pytestmark = pytest.mark.anyio


class Label(str):
    """A string param that counts how often its JSON Schema is generated: the part
    of the document that costs (~11 ms for the daemon's methods)."""

    schemas_built = 0

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any,
                                     handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.str_schema()

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: CoreSchema,
                                     handler: GetJsonSchemaHandler) -> dict[str, Any]:
        cls.schemas_built += 1
        return handler(schema)


def counted_registry() -> Registry:
    reg = Registry()

    @reg.method("rpc.discover")
    async def rpc_discover(call: Any) -> Any:
        return discover_result(reg, "9.9")

    @reg.method("thing.make")
    async def thing_make(call: Any, label: Label) -> dict[str, str]:
        """Make a thing."""
        return {"label": label}

    return reg


async def call(reg: Registry, message: Any) -> Any:
    out = await dispatch(reg, None, json.dumps(message), max_batch=100,
                         in_flight=anyio.Semaphore(64))
    assert out is not None and out.endswith(b"\n") and out.count(b"\n") == 1
    return json.loads(out)


DISCOVER = {"jsonrpc": "2.0", "id": 1, "method": "rpc.discover"}


async def test_the_document_is_built_once_however_often_it_is_asked_for() -> None:
    reg = counted_registry()
    Label.schemas_built = 0
    answers = [await call(reg, DISCOVER) for _ in range(3)]
    batch = await call(reg, [DISCOVER | {"id": "b"},
                             {"jsonrpc": "2.0", "id": 2, "method": "thing.make",
                              "params": {"label": "x"}}])
    assert Label.schemas_built == 1
    expected = json.loads(json.dumps(document(reg, "9.9")))
    assert [a["result"] for a in answers] == [expected] * 3
    assert [a["id"] for a in answers] == [1, 1, 1]
    assert batch == [{"jsonrpc": "2.0", "result": expected, "id": "b"},
                     {"jsonrpc": "2.0", "result": {"label": "x"}, "id": 2}]


async def test_a_method_registered_later_is_in_the_next_document() -> None:
    reg = counted_registry()
    before = (await call(reg, DISCOVER))["result"]

    @reg.method("thing.other")
    async def thing_other(call: Any) -> None:
        """Another thing."""

    after = (await call(reg, DISCOVER))["result"]
    assert [m["name"] for m in before["methods"]] == ["rpc.discover", "thing.make"]
    assert [m["name"] for m in after["methods"]] == ["rpc.discover", "thing.make",
                                                     "thing.other"]


async def test_the_daemons_document_is_the_generated_one() -> None:
    resp = await call(live, DISCOVER)
    assert resp["result"] == json.loads(json.dumps(document(live, VERSION)))
    assert {m["name"] for m in resp["result"]["methods"]} == set(live.methods)


def test_every_method_publishes_a_named_result_shape() -> None:
    """A handler without a precise return annotation (a shape of wizd.objects)
    would publish a result schema that says nothing; none may."""
    doc = document(live, VERSION)
    shapes = doc["components"]["schemas"]
    vague = []
    for method in doc["methods"]:
        ref = method["result"]["schema"].get("$ref", "")
        name = ref.removeprefix("#/components/schemas/")
        if not ref.startswith("#/components/schemas/") or "properties" not in shapes.get(name, {}):
            vague.append(method["name"])
    assert vague == []


def test_result_shapes_are_defined_once_and_shared() -> None:
    doc = document(live, VERSION)
    refs = {m["name"]: m["result"]["schema"]["$ref"] for m in doc["methods"]}
    assert refs["agent.get"] == refs["agent.create"] == "#/components/schemas/Agent"
    agents = doc["components"]["schemas"]["AgentList"]["properties"]["agents"]
    assert agents == {"items": {"$ref": "#/components/schemas/Agent"}, "type": "array"}
    assert "title" not in doc["components"]["schemas"]["Agent"]["properties"]["name"]


def test_a_pre_encoded_result_must_say_what_it_encodes() -> None:
    reg = Registry()

    @reg.method("thing.raw")
    async def thing_raw(call: Any) -> RawJSON:
        """Raw."""
        return RawJSON.of({})

    with pytest.raises(TypeError, match="thing.raw: annotate a RawJSON result"):
        document(reg, "9.9")
