"""The fast path of ``wizctl status``: the same call and output as the typer
command (``wizctl.commands.status``), without importing typer.

Only the exact forms ``[--socket PATH | --socket=PATH] status [--json]`` are
taken; anything else (``--help``, a repeated or unknown option, a value typer
would read differently) returns None and goes to typer. Errors propagate to
``wizctl.main``, which reports them for both paths.
"""

from __future__ import annotations

import os
import sys

from .client import Client
from .status import describe
from .text import pretty_json, use_color


def match(args: list[str]) -> tuple[str | None, bool] | None:
    """``(socket, as_json)`` if ``args`` is a form this path takes, else None.
    ``socket`` is what typer would give: the option, else a non-empty
    ``WIZ_SOCKET``, else None (the client's default)."""
    rest = list(args)
    socket: str | None = None
    if rest and rest[0].startswith("--socket="):
        socket = rest.pop(0).partition("=")[2]
    elif rest[:1] == ["--socket"] and len(rest) > 1:
        socket, rest = rest[1], rest[2:]
    if socket is not None and (not socket or socket.startswith("-")):
        return None  # typer's reading of these is its own business
    if rest not in (["status"], ["status", "--json"]):
        return None
    if socket is None:
        socket = os.environ.get("WIZ_SOCKET") or None  # click ignores an empty variable
    return socket, len(rest) == 2


def run(args: list[str]) -> int | None:
    """Run ``args`` if this path takes them and return the exit code; None if not."""
    found = match(args)
    if found is None:
        return None
    socket, as_json = found
    with Client(socket) as client:
        result = client.call("daemon.status")
    text = (pretty_json(result) if as_json
            else describe(result, color=use_color(sys.stdout)))
    sys.stdout.write(text + "\n")
    return 0
