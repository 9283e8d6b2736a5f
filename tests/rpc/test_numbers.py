"""Numbers in params and ids, as a pure function: JSON's numbers only (no NaN or
infinities, in or out), integers a SQLite column can hold, and strict types (a
boolean is not a number, a float is not an integer, a string is not a number)."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from wizd.errors import InvalidInput
from wizd.rpc.dispatch import dispatch
from wizd.rpc.registry import Registry

pytestmark = pytest.mark.anyio

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)

reg = Registry()


@reg.method("num.echo")
async def num_echo(
    call: Any,
    n: int | None = None,
    x: float | None = None,
    flag: bool | None = None,
    text: str | None = None,
    ns: list[int] | None = None,
) -> dict[str, Any]:
    return {"n": n, "x": x, "flag": flag, "text": text, "ns": ns}


@reg.method("num.nan")
async def num_nan(call: Any) -> dict[str, float]:
    return {"value": float("nan")}


@reg.method("num.inf")
async def num_inf(call: Any) -> list[float]:
    return [1.0, float("-inf")]


async def run(line: str | bytes) -> Any:
    out = await dispatch(reg, None, line, max_batch=100, in_flight=anyio.Semaphore(64))
    if out is None:
        return None
    assert out.endswith(b"\n") and out.count(b"\n") == 1
    # What a strict JSON parser (RFC 8259) accepts: no NaN, no Infinity.
    return json.loads(out, parse_constant=_refuse)


def _refuse(name: str) -> None:
    raise AssertionError(f"wizd wrote {name}, which is not JSON")


def request(params: str, id: str = "1") -> str:
    return f'{{"jsonrpc":"2.0","id":{id},"method":"num.echo","params":{params}}}'


# -- non-finite numbers in -----------------------------------------------------


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e999", "-1e999",
                                    "1.5e400"])
@pytest.mark.parametrize("where", ["param", "id", "nested", "batch"])
async def test_non_finite_numbers_are_a_parse_error(number: str, where: str) -> None:
    param = '{"x":' + number + "}"
    line = {
        "param": request(param),
        "id": request("{}", id=number),
        "nested": request('{"ns":[1,' + number + "]}"),
        "batch": "[" + request("{}") + "," + request(param, id="2") + "]",
    }[where]
    resp = await run(line)
    assert resp["error"]["code"] == -32700 and resp["id"] is None


async def test_finite_extremes_are_numbers() -> None:
    resp = await run(request('{"x":1.7976931348623157e308,"n":-9223372036854775808}', id="1e300"))
    assert resp["result"]["x"] == 1.7976931348623157e308
    assert resp["result"]["n"] == INT64_MIN
    assert resp["id"] == 1e300


# -- non-finite numbers out: the last line of defence ----------------------------


@pytest.mark.parametrize("method", ["num.nan", "num.inf"])
async def test_a_result_json_cannot_hold_becomes_an_internal_error(method: str) -> None:
    resp = await run(f'{{"jsonrpc":"2.0","id":"r","method":"{method}"}}')
    assert resp["id"] == "r"
    assert resp["error"]["code"] == -32603 and "result" not in resp


async def test_in_a_batch_only_the_unencodable_answer_is_replaced() -> None:
    resp = await run(json.dumps([
        {"jsonrpc": "2.0", "id": 1, "method": "num.echo", "params": {"n": 7}},
        {"jsonrpc": "2.0", "id": 2, "method": "num.nan"},
        {"jsonrpc": "2.0", "id": 3, "method": "num.echo", "params": {"x": 0.5}},
    ]))
    by_id = {r["id"]: r for r in resp}
    assert by_id[1]["result"]["n"] == 7 and by_id[3]["result"]["x"] == 0.5
    assert by_id[2]["error"]["code"] == -32603


# -- integers a SQLite column can hold -----------------------------------------


@pytest.mark.parametrize(("params", "field"), [
    ({"n": INT64_MAX + 1}, "n"),
    ({"n": INT64_MIN - 1}, "n"),
    ({"n": 10**30}, "n"),
    ({"ns": [1, INT64_MAX + 1]}, "ns.1"),
])
async def test_integers_beyond_64_bits_are_invalid_params(params: dict[str, Any],
                                                          field: str) -> None:
    resp = await run(request(json.dumps(params)))
    assert resp["error"]["code"] == -32602
    assert resp["error"]["data"]["field"] == field


async def test_64_bit_integers_pass() -> None:
    resp = await run(request(json.dumps({"n": INT64_MAX, "ns": [INT64_MIN, 0]})))
    assert resp["result"]["n"] == INT64_MAX and resp["result"]["ns"] == [INT64_MIN, 0]


def test_floats_must_be_finite_even_from_python() -> None:
    # JSON from a socket cannot carry them any more; a caller in Python could.
    for value in (float("inf"), float("-inf"), float("nan")):
        with pytest.raises(InvalidInput) as info:
            reg.methods["num.echo"].validate({"x": value})
        assert info.value.field == "x"


# -- strict types ---------------------------------------------------------------


@pytest.mark.parametrize(("params", "field"), [
    ({"n": True}, "n"),  # a boolean is not a number
    ({"n": False}, "n"),
    ({"x": True}, "x"),
    ({"n": 1.5}, "n"),  # a float is not an integer
    ({"n": 1e20}, "n"),
    ({"n": 2.0}, "n"),
    ({"n": "5"}, "n"),  # a string is not a number
    ({"x": "0.5"}, "x"),
    ({"flag": 1}, "flag"),  # a number is not a boolean
    ({"flag": "true"}, "flag"),
    ({"text": 5}, "text"),  # a number is not a string
    ({"ns": [1, True]}, "ns.1"),
])
async def test_types_are_strict(params: dict[str, Any], field: str) -> None:
    resp = await run(request(json.dumps(params)))
    assert resp["error"]["code"] == -32602, resp
    assert resp["error"]["data"]["field"] == field


async def test_an_integer_is_a_float() -> None:
    resp = await run(request('{"x":2,"n":3,"flag":false,"text":"t"}'))
    result = resp["result"]
    assert result == {"n": 3, "x": 2.0, "flag": False, "text": "t", "ns": None}
    assert isinstance(result["x"], float)
