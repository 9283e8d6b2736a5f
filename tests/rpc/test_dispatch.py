"""The dispatch pipeline as a pure function: no sockets, both backends."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from wizd.errors import Conflict, NotFound
from wizd.rpc.dispatch import dispatch
from wizd.rpc.registry import Registry

pytestmark = pytest.mark.anyio

reg = Registry()
calls: list[str] = []


@reg.method("math.add")
async def add(call: Any, a: int, b: int = 0) -> dict[str, int]:
    """Add two integers."""
    return {"sum": a + b}


@reg.method("thing.get")
async def thing_get(call: Any, id: str) -> dict[str, str]:
    raise NotFound("thing", id)


@reg.method("thing.clash")
async def thing_clash(call: Any) -> None:
    raise Conflict("already there", name="x")


@reg.method("bug.raise")
async def bug(call: Any) -> None:
    raise KeyError("secret-internal-detail")


@reg.method("note.record")
async def record(call: Any, text: str) -> None:
    calls.append(text)


# The event of the running test: the first call of a batch waits for the last one,
# which only a concurrent run of the batch lets it see (no sleeps, no clock).
released: list[anyio.Event] = []


@reg.method("wait.echo")
async def wait_echo(call: Any, text: str) -> str:
    await released[-1].wait()
    return text


@reg.method("release.echo")
async def release_echo(call: Any, text: str) -> str:
    released[-1].set()
    return text


async def run(line: str | bytes) -> Any:
    out = await dispatch(reg, None, line, max_batch=100, in_flight=anyio.Semaphore(64))
    if out is None:
        return None
    assert out.endswith(b"\n") and out.count(b"\n") == 1
    return json.loads(out)


async def test_success() -> None:
    resp = await run('{"jsonrpc":"2.0","id":1,"method":"math.add","params":{"a":2,"b":3}}')
    assert resp == {"jsonrpc": "2.0", "result": {"sum": 5}, "id": 1}


async def test_parse_error_has_null_id() -> None:
    resp = await run("{not json")
    assert resp["error"]["code"] == -32700 and resp["id"] is None


async def test_invalid_request() -> None:
    resp = await run('{"jsonrpc":"1.0","id":1,"method":"math.add"}')
    assert resp["error"]["code"] == -32600
    resp = await run("42")
    assert resp["error"]["code"] == -32600


async def test_method_not_found() -> None:
    resp = await run('{"jsonrpc":"2.0","id":"x","method":"nope"}')
    assert resp["error"]["code"] == -32601 and resp["id"] == "x"


@pytest.mark.parametrize(
    "params, field",
    [
        ({}, "a"),  # missing
        ({"a": "two"}, "a"),  # wrong type
        ({"a": 1, "c": 2}, "c"),  # unknown
    ],
)
async def test_invalid_params_names_the_field(params: dict[str, Any], field: str) -> None:
    line = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "math.add", "params": params})
    resp = await run(line)
    assert resp["error"]["code"] == -32602
    assert resp["error"]["data"]["field"] == field


async def test_positional_params_refused() -> None:
    resp = await run('{"jsonrpc":"2.0","id":1,"method":"math.add","params":[1,2]}')
    assert resp["error"]["code"] == -32602
    assert "by name" in resp["error"]["data"]["problem"]


async def test_application_errors_map_to_their_codes() -> None:
    resp = await run('{"jsonrpc":"2.0","id":1,"method":"thing.get","params":{"id":"t1"}}')
    assert resp["error"]["code"] == -32001 and resp["error"]["data"]["ref"] == "t1"
    resp = await run('{"jsonrpc":"2.0","id":2,"method":"thing.clash"}')
    assert resp["error"]["code"] == -32002 and resp["error"]["data"] == {"name": "x"}


async def test_internal_error_hides_details() -> None:
    resp = await run('{"jsonrpc":"2.0","id":1,"method":"bug.raise"}')
    assert resp["error"]["code"] == -32603
    assert "secret-internal-detail" not in json.dumps(resp)


async def test_notification_gets_no_response_but_runs() -> None:
    calls.clear()
    assert await run('{"jsonrpc":"2.0","method":"note.record","params":{"text":"hi"}}') is None
    assert calls == ["hi"]


async def test_a_param_named_like_the_context_is_just_a_param() -> None:
    resp = await run('{"jsonrpc":"2.0","id":1,"method":"math.add","params":{"a":1,"line":2}}')
    assert resp["error"]["code"] == -32602 and resp["error"]["data"]["field"] == "line"


async def test_batch_mixes_requests_and_notifications_in_order() -> None:
    calls.clear()
    released.append(anyio.Event())
    batch = [
        {"jsonrpc": "2.0", "id": 1, "method": "wait.echo", "params": {"text": "a"}},
        {"jsonrpc": "2.0", "method": "note.record", "params": {"text": "n"}},
        {"jsonrpc": "2.0", "id": 2, "method": "release.echo", "params": {"text": "b"}},
        {"jsonrpc": "2.0", "id": 3, "method": "nope"},
    ]
    resp = await run(json.dumps(batch))
    assert [r["id"] for r in resp] == [1, 2, 3]
    assert [r.get("result") for r in resp[:2]] == ["a", "b"]
    assert resp[2]["error"]["code"] == -32601
    assert calls == ["n"]


# That a batch's calls run concurrently, and at most 64 at once, is in test_batches.py.


async def test_batch_of_notifications_gets_nothing() -> None:
    batch = [{"jsonrpc": "2.0", "method": "note.record", "params": {"text": "x"}}] * 2
    assert await run(json.dumps(batch)) is None


async def test_empty_batch_is_invalid() -> None:
    resp = await run("[]")
    assert resp["error"]["code"] == -32600


REQUEST_SHAPES: list[Any] = [
    {"jsonrpc": "2.0", "method": "m"},
    {"jsonrpc": "2.0", "method": "m", "id": 1},
    {"jsonrpc": "2.0", "method": "m", "id": "x", "params": {}},
    {"jsonrpc": "2.0", "method": "m", "id": None, "params": []},
    {"jsonrpc": "2.0", "method": "m", "id": 1.5},
    {"jsonrpc": "2.0", "method": "m", "id": True},
    {"jsonrpc": "2.0", "method": "m", "id": {}},
    {"jsonrpc": "2.0", "method": "m", "params": 3},
    {"jsonrpc": "2.0", "method": "m", "params": "x"},
    {"jsonrpc": "2.0", "method": "m", "extra": 1},
    {"jsonrpc": "2.0", "method": 5},
    {"jsonrpc": "2.0"},
    {"jsonrpc": "1.0", "method": "m"},
    {"jsonrpc": 2.0, "method": "m"},
    {"method": "m"},
    [],
    [{"jsonrpc": "2.0", "method": "m"}],
    [{"jsonrpc": "2.0", "method": "m"}, {"jsonrpc": "2.0"}],
    [1],
    "text",
    42,
    None,
]


@pytest.mark.parametrize("value", REQUEST_SHAPES)
def test_request_check_agrees_with_jsonrpcservers_schema(value: Any) -> None:
    """The hand-written request check gives the verdict of jsonrpcserver's own
    request schema (the file its default validator checks with jsonschema)."""
    from importlib.resources import files

    import jsonschema

    from wizd.rpc.dispatch import validate_jsonrpc

    schema = json.loads(files("jsonrpcserver").joinpath("request-schema.json").read_text())
    default_validator = jsonschema.validators.validator_for(schema)(schema).validate

    def verdict(check: Any) -> bool:
        try:
            check(value)
        except Exception:
            return False
        return True

    assert verdict(validate_jsonrpc) == verdict(default_validator)
