"""JSON-RPC dispatch on anyio, through jsonrpcserver's public API.

jsonrpcserver's ``dispatch_to_serializable`` parses (with our ``parse``),
checks each request's shape (with our ``validate_jsonrpc``), finds the method,
refuses positional params and shapes every response, notifications and batches
included. Its own async dispatch is asyncio-only (it calls ``asyncio.gather``),
so the methods it calls are synchronous stand-ins: each validates its params
and returns ``Success`` of a pending call, which this module then awaits with
anyio (concurrently within a batch, each holding a place of the connection's
calls in flight) and writes into the response. Parsing and encoding are ours,
to keep to JSON proper: no NaN or infinities in, none out.

``dispatch(registry, call, line, ...)`` is a pure function of its inputs apart
from the methods it calls: tested without sockets in tests/rpc/test_dispatch.py.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
from dataclasses import dataclass, field
from typing import Any

import anyio
from jsonrpcserver import Error, InvalidParams, Result, Success, dispatch_to_serializable

from ..errors import INTERNAL_ERROR, INVALID_REQUEST, WizError, rpc_code
from .registry import MethodSpec, Registry

log = logging.getLogger(__name__)

_INTERNAL = "internal error; see the wizd log"


@dataclass(eq=False)
class _Pending:
    """A call whose params are valid, to be awaited; then its value or its error."""

    spec: MethodSpec
    kwargs: dict[str, Any]
    value: Any = None
    error: dict[str, Any] | None = None

    async def run(self, call: Any) -> None:
        try:
            self.value = await self.spec.func(call, **self.kwargs)
        except WizError as exc:
            self.error = _error_object(rpc_code(exc), exc.message, exc.data)
        except Exception:
            # A bug of ours: the operator gets the traceback, the client a generic error.
            log.exception("internal error in %s", self.spec.name)
            self.error = _error_object(INTERNAL_ERROR, "Internal error", _INTERNAL)


def _error_object(code: int, message: str, data: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return error


@dataclass(eq=False)
class _Line:
    """The context jsonrpcserver hands to the stand-ins: one line's calls."""

    max_batch: int
    pending: list[_Pending] = field(default_factory=list)
    # Why the line is not a JSON-RPC request (jsonrpcserver keeps only the verdict).
    refused: str | None = None

    def validate(self, value: Any) -> None:
        if type(value) is list and len(value) > self.max_batch:
            # Checked first: a huge batch of junk costs a length check.
            self.refused = f"batch of {len(value)} calls; at most {self.max_batch}"
            raise ValueError(self.refused)
        validate_jsonrpc(value)


def _stand_in(spec: MethodSpec) -> Any:
    """What jsonrpcserver calls for ``spec``: validates, and defers the call."""

    def method(line: _Line, /, *args: Any, **params: Any) -> Result:
        if args:
            return InvalidParams(
                {"field": "params", "problem": "params must be an object (by name)"})
        try:
            kwargs = spec.validate(params)
        except WizError as exc:
            return Error(**_error_object(rpc_code(exc), exc.message, exc.data))
        pending = _Pending(spec, kwargs)
        line.pending.append(pending)  # notifications run too: they have no response
        return Success(pending)

    # jsonrpcserver checks the params against the method's signature on every
    # call; computed once here instead of by inspect each time.
    method.__signature__ = inspect.signature(method)  # type: ignore[attr-defined]
    return method


def _methods(registry: Registry) -> dict[str, Any]:
    return registry.derived(
        _methods, lambda: {name: _stand_in(spec) for name, spec in registry.methods.items()})


_REQUEST_KEYS = frozenset({"jsonrpc", "method", "id", "params"})


def _is_request(value: Any) -> bool:
    # jsonrpcserver's request schema (request-schema.json), spelled out: its
    # default validator runs jsonschema on every request.
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


def _resolve(response: dict[str, Any]) -> dict[str, Any]:
    pending = response.get("result")
    if not isinstance(pending, _Pending):
        return response
    if pending.error is not None:
        return {"jsonrpc": "2.0", "error": pending.error, "id": response["id"]}
    response["result"] = pending.value
    return response


async def dispatch(
    registry: Registry, call: Any, line: bytes | str, *, max_batch: int,
    in_flight: anyio.Semaphore,
) -> bytes | None:
    """Handle one framed line; returns the response line (with ``\\n``) or None.

    A batch of more than ``max_batch`` calls is refused whole (-32600, none of
    them runs). Every call, alone or in a batch, holds a place of ``in_flight``
    while it runs: the calls of a batch wait for places like pipelined calls
    of the same connection do, so a batch is no harder on other clients than
    the same calls sent one by one.
    """
    context = _Line(max_batch)
    body = dispatch_to_serializable(
        line,  # bytes are fine: the deserializer (json.loads) takes them
        _methods(registry), context=context, deserializer=parse,
        validator=context.validate)
    if context.refused is not None and isinstance(body, dict):
        body["error"]["data"] = context.refused

    async def run(pending: _Pending) -> None:
        try:
            await pending.run(call)
        finally:
            in_flight.release()

    if len(context.pending) == 1:
        await in_flight.acquire()
        await run(context.pending[0])
    elif context.pending:
        async with anyio.create_task_group() as tg:
            for pending in context.pending:
                await in_flight.acquire()
                tg.start_soon(run, pending)
    if body is None:
        return None
    if isinstance(body, list):
        return encode_response([_resolve(r) for r in body])
    return encode_response(_resolve(body))


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
    if isinstance(line, bytes):  # decoded as json.loads decodes bytes
        line = line.decode(json.detect_encoding(line), "surrogatepass")
    return _DECODER.decode(line)


# One decoder for every line (json.loads with these hooks would build one a call).
_DECODER = json.JSONDecoder(parse_float=_finite_float, parse_constant=_no_constant)


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

