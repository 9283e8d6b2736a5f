"""JSON-RPC dispatch on anyio, built from jsonrpcserver's pure pipeline.

jsonrpcserver parses, validates requests against the JSON-RPC schema, finds
methods and shapes responses; its own ``async_dispatch`` is asyncio-only (it
calls ``asyncio.gather``), so the one step that awaits (calling the methods,
concurrently within a batch, each holding a place of the connection's calls in
flight) is done here with an anyio task group. Parsing and encoding are ours
too, to keep to JSON proper: no NaN or infinities in, none out.

``dispatch(line, registry, call)`` is a pure function of its inputs apart from
the methods it calls: tested without sockets in tests/rpc/test_dispatch.py.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from typing import Any

import anyio
from jsonrpcserver.dispatcher import (
    create_request,
    deserialize_request,
    extract_list,
    get_method,
    not_notification,
    to_response,
    validate_request,
)
from jsonrpcserver.request import Request
from jsonrpcserver.response import InvalidRequestResponse, to_serializable
from jsonrpcserver.result import (
    ErrorResult,
    InternalErrorResult,
    InvalidParamsResult,
    Result,
    SuccessResult,
)
from jsonrpcserver.sentinels import NODATA
from jsonrpcserver.utils import make_list
from oslash.either import Left, Right  # type: ignore[import-untyped]

from ..errors import INTERNAL_ERROR, INVALID_REQUEST, WizError, rpc_code
from .registry import MethodSpec, Registry

log = logging.getLogger(__name__)


def _error_result(exc: WizError) -> Result:
    data = exc.data if exc.data is not None else NODATA
    return Left(ErrorResult(code=rpc_code(exc), message=exc.message, data=data))


async def _call(spec: MethodSpec, request: Request, call: Any) -> Result:
    if isinstance(request.params, list):
        if request.params:
            return Left(InvalidParamsResult(
                {"field": "params", "problem": "params must be an object (by name)"}))
        params: dict[str, Any] = {}
    else:
        params = request.params
    try:
        kwargs = spec.validate(params)
        value = await spec.func(call, **kwargs)
    except WizError as exc:
        return _error_result(exc)
    except Exception:
        # A bug of ours: the operator gets the traceback, the client a generic error.
        log.exception("internal error in %s", spec.name)
        return Left(InternalErrorResult("internal error; see the wizd log"))
    return Right(SuccessResult(value))


async def _dispatch_one(registry: Registry, call: Any, request: Request) -> tuple[Request, Result]:
    found = get_method(registry.methods, request.method)  # type: ignore[arg-type]
    if isinstance(found, Left):
        return request, found
    return request, await _call(found._value, request, call)


_REQUEST_KEYS = frozenset({"jsonrpc", "method", "id", "params"})


def _is_request(value: Any) -> bool:
    # jsonrpcserver's request schema (request-schema.json), spelled out:
    # jsonschema takes ~50 us a request to check it, this ~1 us.
    if type(value) is not dict or not value.keys() <= _REQUEST_KEYS:
        return False
    if value.get("jsonrpc") != "2.0" or type(value["jsonrpc"]) is not str:
        return False
    if type(value.get("method")) is not str:
        return False
    if "id" in value and not (
        value["id"] is None or type(value["id"]) in (str, int, float)
    ):  # a JSON number, not a boolean
        return False
    return "params" not in value or type(value["params"]) in (list, dict)


def validate_jsonrpc(request: Any) -> None:
    """Raise ValueError unless ``request`` is a JSON-RPC 2.0 request or a non-empty
    batch of them: the same verdict as jsonrpcserver's default (jsonschema) validator."""
    if type(request) is list:
        if request and all(_is_request(item) for item in request):
            return
    elif _is_request(request):
        return
    raise ValueError("not a JSON-RPC 2.0 request")


async def dispatch_parsed(
    registry: Registry, call: Any, deserialized: Any, *, max_batch: int,
    in_flight: anyio.Semaphore,
) -> Any:
    """Dispatch an already-parsed JSON value; returns the serialisable response or None.

    A batch of more than ``max_batch`` calls is refused whole (-32600, none of
    them runs). Every call, alone or in a batch, holds a place of ``in_flight``
    while it runs: the calls of a batch wait for places like pipelined calls
    of the same connection do, so a batch is no harder on other clients than
    the same calls sent one by one.
    """
    if type(deserialized) is list and len(deserialized) > max_batch:
        return to_serializable(Left(InvalidRequestResponse(
            f"batch of {len(deserialized)} calls; at most {max_batch}")))
    checked = validate_request(validate_jsonrpc, deserialized)  # type: ignore[arg-type]
    if isinstance(checked, Left):
        return to_serializable(checked)
    requests = [create_request(r) for r in make_list(deserialized)]
    results: list[tuple[Request, Result] | None] = [None] * len(requests)

    async def run(index: int, request: Request) -> None:
        try:
            results[index] = await _dispatch_one(registry, call, request)
        finally:
            in_flight.release()

    if len(requests) == 1:
        await in_flight.acquire()
        await run(0, requests[0])
    else:
        async with anyio.create_task_group() as tg:
            for index, request in enumerate(requests):
                await in_flight.acquire()
                tg.start_soon(run, index, request)
    answered = [pair for pair in results if pair is not None and not_notification(pair)]
    responses = [to_response(req, res) for req, res in answered]
    response = extract_list(isinstance(deserialized, list), responses)
    return None if response is None else to_serializable(response)  # type: ignore[arg-type]


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 overflows to infinity
        raise ValueError(f"number out of range: {text}")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse(line: bytes | str) -> Any:
    """The JSON value of a line. Raises ValueError for anything RFC 8259 does not
    call JSON, including what Python's json accepts beyond it: ``NaN``,
    ``Infinity``, ``-Infinity`` and numbers that overflow a float (``1e999``)."""
    return json.loads(line, parse_float=_finite_float, parse_constant=_no_constant)


async def dispatch(
    registry: Registry, call: Any, line: bytes | str, *, max_batch: int,
    in_flight: anyio.Semaphore,
) -> bytes | None:
    """Handle one framed line; returns the response line (with ``\\n``) or None.

    ``max_batch`` and ``in_flight`` as for ``dispatch_parsed``.
    """
    parsed = deserialize_request(parse, line)  # type: ignore[arg-type]  # bytes are fine
    if isinstance(parsed, Left):
        body = to_serializable(parsed)
    else:
        body = await dispatch_parsed(registry, call, parsed._value, max_batch=max_batch,
                                     in_flight=in_flight)
    return None if body is None else encode_response(body)


# Compact, UTF-8 rather than ASCII escapes, and JSON only: allow_nan=False makes
# NaN and the infinities raise ValueError instead of writing non-JSON tokens.
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
_ASCII = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def _json(value: Any) -> bytes:
    text = _COMPACT.encode(value)
    try:
        return text.encode()
    except UnicodeEncodeError:
        # A lone surrogate (JSON allows "\ud800", UTF-8 does not) that a client
        # sent and an error message repeats goes out escaped.
        return _ASCII.encode(value).encode()


@dataclass(frozen=True)
class RawJSON:
    """A method's result already encoded as JSON, written into its response as it
    is: a large result that never changes (the rpc.discover document) is encoded
    once, not on every call."""

    data: bytes

    @classmethod
    def of(cls, value: Any) -> RawJSON:
        """``value`` encoded. Raises ValueError or TypeError as ``encode`` does."""
        return cls(_json(value))


def encode(message: Any) -> bytes:
    """One message as a framed line.

    Raises ValueError for a number JSON cannot hold (NaN, an infinity) and
    TypeError for a value JSON has no type for.
    """
    return _json(message) + b"\n"


def encode_response(body: Any) -> bytes:
    """The framed line of a response, or of a batch of them (a list).

    Never raises and never writes non-JSON: a response that cannot be encoded
    (a NaN or an infinity in a result, a bug of ours or a provider's number
    stored as it came) is answered as an internal error for its id instead, the
    rest of its batch as they are.
    """
    if isinstance(body, list):
        return b"[" + b",".join(_response_json(r) for r in body) + b"]\n"
    return _response_json(body) + b"\n"


def _response_json(response: dict[str, Any]) -> bytes:
    result = response.get("result")
    if isinstance(result, RawJSON):
        return (b'{"jsonrpc":"2.0","result":' + result.data
                + b',"id":' + _json(response["id"]) + b"}")
    try:
        return _json(response)
    except (TypeError, ValueError):
        log.exception("the response to id %r cannot be encoded as JSON", response.get("id"))
        return _json({"jsonrpc": "2.0", "error": {
            "code": INTERNAL_ERROR, "message": "Internal error",
            "data": "internal error; see the wizd log"}, "id": response.get("id")})


def error_line(code: int, message: str, data: Any = None, id: Any = None) -> bytes:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return encode({"jsonrpc": "2.0", "error": err, "id": id})


def line_too_long(limit: int) -> bytes:
    return error_line(INVALID_REQUEST, "Invalid request", f"line longer than {limit} bytes")

