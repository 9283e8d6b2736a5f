"""The one exception tree of wizd, and its JSON-RPC code table.

    WizError                      -32603 internal
    ├── NotFound                  -32001 unknown id or name
    ├── Conflict                  -32002 duplicate name, wrong state
    ├── InvalidInput              -32602 invalid params (``data.field`` names the culprit)
    ├── ProviderError             -32003 the LLM side refused or failed (retryable)
    │   ├── ProviderAuthError         401/403: never retried
    │   ├── ProviderBadRequest        400/404/422, unknown model: never retried
    │   ├── ProviderRateLimited       429, carries ``retry_after``
    │   ├── ProviderTimeout           no answer in time
    │   └── ProviderProtocolError     the answer could not be understood
    ├── StorageUnavailable        -32004 the database cannot be written (disk full, I/O error)
    ├── UnsafePath                another user could change the socket's folder
    ├── SchemaError               the database is newer than this wizd, or unreadable
    └── DaemonBusy                another wizd holds the socket or the database

Exceptions build their message from structured arguments, so that callers
never format error text, and the RPC layer maps them to codes through
``RPC_CODES`` only (a test pins the table).
"""

from __future__ import annotations

from typing import Any


def sole(exc: BaseException) -> BaseException:
    """The one exception inside nested single-member exception groups (what a
    task group raises for the one child that failed), else ``exc`` itself."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


class WizError(Exception):
    """Base of every error wizd raises on purpose."""

    def __init__(self, message: str, *, data: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.data = data


class NotFound(WizError):
    def __init__(self, kind: str, ref: object) -> None:
        super().__init__(f"{kind} not found: {ref}", data={"kind": kind, "ref": ref})
        self.kind = kind
        self.ref = ref


class Conflict(WizError):
    def __init__(self, reason: str, **data: Any) -> None:
        super().__init__(reason, data=data or None)


class InvalidInput(WizError):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"invalid {field}: {problem}", data={"field": field, "problem": problem})
        self.field = field


class ProviderError(WizError):
    """The LLM provider failed; worth another attempt unless a subclass says otherwise."""

    retryable = True

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        provider: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        detail = f"provider {provider}: " if provider else "provider: "
        code = f" (HTTP {status})" if status is not None else ""
        super().__init__(
            f"{detail}{message}{code}",
            data={"status": status, "message": message, "provider": provider},
        )
        self.status = status
        self.provider = provider
        self.retry_after = retry_after


class ProviderAuthError(ProviderError):
    retryable = False


class ProviderBadRequest(ProviderError):
    retryable = False


class ProviderRateLimited(ProviderError):
    pass


class ProviderTimeout(ProviderError):
    pass


class ProviderProtocolError(ProviderError):
    pass


class StorageUnavailable(WizError):
    """The database could not store a write (disk full, read-only, I/O error).

    Nothing was written; the same call may succeed once the cause is gone.
    """

    def __init__(self, cause: str) -> None:
        super().__init__(f"storage unavailable: {cause}", data={"cause": cause})
        self.cause = cause


class McpServerError(WizError):
    """An MCP server could not be started, answered nothing in time, or failed.

    The message names the server and says what happened; a server that could
    not start also shows its command (never its environment).
    """

    def __init__(self, server: str, problem: str, *, sent: bool = False) -> None:
        super().__init__(f"MCP server {server}: {problem}",
                         data={"server": server, "problem": problem})
        self.server = server
        self.problem = problem
        # The request had reached the server when this happened (no answer in
        # time, the connection closed): what it asked for may have been done.
        self.sent = sent


class UnsafePath(WizError):
    """A folder wizd relies on could be changed by another user; wizd will not use it."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(
            f"refusing the socket folder {path}: it {problem}, so another user could "
            "replace wizd's socket. Remove it, or set XDG_RUNTIME_DIR (or --socket) "
            "to a folder of your own",
            data={"path": path, "problem": problem},
        )
        self.path = path


class SchemaError(WizError):
    pass


class DaemonBusy(WizError):
    pass


# JSON-RPC error codes. Standard ones first, then the application's.
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
NOT_FOUND = -32001
CONFLICT = -32002
PROVIDER_ERROR = -32003
STORAGE_UNAVAILABLE = -32004
TOOL_SERVER_ERROR = -32005

# The only place an exception class becomes a code. Order matters: the first
# matching class wins, so subclasses come before their bases.
RPC_CODES: tuple[tuple[type[WizError], int], ...] = (
    (NotFound, NOT_FOUND),
    (Conflict, CONFLICT),
    (InvalidInput, INVALID_PARAMS),
    (ProviderError, PROVIDER_ERROR),
    (StorageUnavailable, STORAGE_UNAVAILABLE),
    (McpServerError, TOOL_SERVER_ERROR),
    (WizError, INTERNAL_ERROR),
)


def rpc_code(exc: WizError) -> int:
    """The JSON-RPC error code for ``exc``."""
    for cls, code in RPC_CODES:
        if isinstance(exc, cls):
            return code
    raise AssertionError("unreachable: WizError is last in RPC_CODES")
