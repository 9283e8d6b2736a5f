"""The exception tree's JSON-RPC codes, pinned: a code is part of the public contract."""

from __future__ import annotations

import pytest

from wizd import errors
from wizd.errors import (
    Conflict,
    DaemonBusy,
    InvalidInput,
    McpServerError,
    NotFound,
    ProviderAuthError,
    ProviderBadRequest,
    ProviderError,
    ProviderProtocolError,
    ProviderRateLimited,
    ProviderTimeout,
    SchemaError,
    StorageUnavailable,
    WizError,
    rpc_code,
)


def test_standard_and_application_codes() -> None:
    assert (errors.PARSE_ERROR, errors.INVALID_REQUEST, errors.METHOD_NOT_FOUND,
            errors.INVALID_PARAMS, errors.INTERNAL_ERROR) == (-32700, -32600, -32601, -32602,
                                                               -32603)
    assert (errors.NOT_FOUND, errors.CONFLICT, errors.PROVIDER_ERROR,
            errors.STORAGE_UNAVAILABLE, errors.TOOL_SERVER_ERROR) == (-32001, -32002, -32003,
                                                                       -32004, -32005)


def test_rpc_codes_table_is_pinned() -> None:
    assert errors.RPC_CODES == (
        (NotFound, -32001),
        (Conflict, -32002),
        (InvalidInput, -32602),
        (ProviderError, -32003),
        (StorageUnavailable, -32004),
        (McpServerError, -32005),
        (WizError, -32603),
    )


@pytest.mark.parametrize(("exc", "code"), [
    (NotFound("agent", "x"), -32001),
    (Conflict("taken"), -32002),
    (InvalidInput("name", "empty"), -32602),
    (ProviderError("down", status=500), -32003),
    (ProviderAuthError("no", status=401), -32003),
    (ProviderBadRequest("no", status=400), -32003),
    (ProviderRateLimited("slow", status=429, retry_after=2), -32003),
    (ProviderTimeout("late"), -32003),
    (ProviderProtocolError("garbled"), -32003),
    (StorageUnavailable("disk full"), -32004),
    (McpServerError("fs", "cannot start: No such file or directory"), -32005),
    # Errors that are not the caller's fault are internal.
    (SchemaError("too new"), -32603),
    (DaemonBusy("taken"), -32603),
    (WizError("bug"), -32603),
])
def test_each_error_maps_to_its_code(exc: WizError, code: int) -> None:
    assert rpc_code(exc) == code


def test_errors_carry_structured_data() -> None:
    assert InvalidInput("limit", "too big").data == {"field": "limit", "problem": "too big"}
    assert NotFound("agent", "bob").data == {"kind": "agent", "ref": "bob"}
    assert Conflict("taken", name="bob").data == {"name": "bob"}
    assert Conflict("taken").data is None
    err = ProviderError("down", status=503, provider="oa")
    assert err.data == {"status": 503, "message": "down", "provider": "oa"}
    assert str(err) == "provider oa: down (HTTP 503)"
