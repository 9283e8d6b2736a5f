"""How wizctl ends: an exit code for each kind of failure, and the failure told
as one line for a person (``wizctl: error: ...``) or, under ``--json``, as one
JSON object on stderr for a script: ``{"code", "message", "data"}``.

    exit  kind                                          "code" under --json
    0     ok
    1     any other error                               the daemon's; -33000, -33002, -33004
    2     usage: a bad option or value, an ambiguous    -32602
          name, content over the size limit
    3     not found                                     -32001
    4     conflict: a wrong state, a name taken         -32002
    5     wizd is not running                           -33001
    6     provider error, or an agent's reply is one    -32003
    7     storage unavailable (disk full, read-only)    -32004
    8     timed out                                     -33003
    9     an MCP server failed (cannot start, no answer) -32005
    130   interrupted (Ctrl-C)

Codes from -32768 to -32000 are JSON-RPC's, as the daemon answered them (or
as it would have, for what wizctl finds out itself: an unknown name is
-32001 with the daemon's ``{kind, ref}``); -33xxx are failures only a client
meets, outside the range JSON-RPC reserves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import client as c
from .objects import Message
from .resolve import NoMatch, ResolveError
from .text import dump_json

OK, ERROR, USAGE, NOT_FOUND, CONFLICT, NOT_RUNNING, PROVIDER, STORAGE, TIMEOUT, TOOL_SERVER = (
    range(10))
INTERRUPTED = 130

# Failures only a client meets.
CLIENT_ERROR = -33000
NOT_RUNNING_CODE = -33001
CONNECTION_CODE = -33002
TIMEOUT_CODE = -33003
UNSAFE_SOCKET_CODE = -33004

# The daemon's JSON-RPC error code -> wizctl's exit code; others exit 1.
BY_RPC_CODE = {
    c.INVALID_PARAMS: USAGE,
    c.NOT_FOUND: NOT_FOUND,
    c.CONFLICT: CONFLICT,
    c.PROVIDER_ERROR: PROVIDER,
    c.STORAGE_UNAVAILABLE: STORAGE,
    c.TOOL_SERVER_ERROR: TOOL_SERVER,
}

# For `wizctl --help` (\b keeps click from rewrapping the table).
HELP = """\b
Exit codes: 0 ok, 1 any other error, 2 usage (a bad option or value, an
ambiguous name), 3 not found, 4 conflict, 5 wizd is not running, 6 provider
error (an agent's reply is an error), 7 storage unavailable, 8 timed out,
9 an MCP server failed, 130 interrupted. With --json, an error is one JSON object on stderr:
{"code": ..., "message": ..., "data": ...} (see the README)."""


class ReplyFailed(c.WizClientError):
    """An agent's reply is an error message (its job failed for good)."""

    def __init__(self, who: str, message: Message) -> None:
        super().__init__(f"{who}: {message.get('content')}")
        self.message = message


@dataclass(frozen=True)
class Failure:
    """One failure as wizctl reports it."""

    exit: int
    code: int
    message: str
    data: Any = None

    def json(self) -> str:
        return dump_json({"code": self.code, "message": self.message, "data": self.data})

    def line(self) -> str:
        return f"wizctl: error: {self.message}"


def is_usage_error(exc: BaseException) -> bool:
    """Whether ``exc`` is click's usage error (a bad option, a missing argument).
    Duck-typed: typer ships click under a private name, or not at all."""
    return (isinstance(getattr(exc, "exit_code", None), int)
            and callable(getattr(exc, "format_message", None))
            and callable(getattr(exc, "show", None)))


def failure(exc: BaseException) -> Failure | None:
    """The Failure ``exc`` stands for; None if it is none of wizctl's (a bug)."""
    if isinstance(exc, c.RpcError):
        return Failure(BY_RPC_CODE.get(exc.code, ERROR), exc.code, exc.describe(), exc.data)
    if isinstance(exc, ReplyFailed):
        return Failure(PROVIDER, c.PROVIDER_ERROR, str(exc), {"reply": exc.message})
    if isinstance(exc, NoMatch):
        return Failure(NOT_FOUND, c.NOT_FOUND, str(exc), {"kind": exc.kind, "ref": exc.ref})
    if isinstance(exc, ResolveError):  # Ambiguous: say which one
        return Failure(USAGE, c.INVALID_PARAMS, str(exc), {"kind": exc.kind, "ref": exc.ref})
    if isinstance(exc, c.DaemonNotRunning):
        return Failure(NOT_RUNNING, NOT_RUNNING_CODE, str(exc), {"socket": exc.path})
    if isinstance(exc, c.UnsafeSocket):
        return Failure(ERROR, UNSAFE_SOCKET_CODE, str(exc),
                       {"folder": exc.folder, "problem": exc.problem})
    if isinstance(exc, TimeoutError):  # RpcTimeout, and replies.WaitTimeout
        return Failure(TIMEOUT, TIMEOUT_CODE, str(exc))
    if isinstance(exc, c.ConnectionLost | c.ProtocolError):
        return Failure(ERROR, CONNECTION_CODE, str(exc))
    if isinstance(exc, c.WizClientError):
        return Failure(ERROR, CLIENT_ERROR, str(exc))
    if is_usage_error(exc):
        code = getattr(exc, "exit_code", USAGE)
        return Failure(code, c.INVALID_PARAMS if code == USAGE else CLIENT_ERROR,
                       exc.format_message())  # type: ignore[attr-defined]
    return None
