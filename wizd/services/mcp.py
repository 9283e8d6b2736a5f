"""MCP servers registered in wizd: add, list, get, remove, and their tools.

A server is run as a command over stdio (``command``: the program and its
arguments) or reached over streamable HTTP (``url``). Its secrets never enter
the database: ``env`` maps a variable of the server's environment to the name
of a variable of wizd's own, read when the server starts (as a provider's
``api_key_env``). Only those names are stored and returned. A stdio server
gets these variables and the few ``mcp`` passes on (HOME, LOGNAME, PATH,
SHELL, TERM, USER), nothing else of wizd's environment. ``env`` is for stdio
servers only.

Servers are referred to by id or name. Names are what tools are called by
(``server.tool``), so they hold letters, digits, ``_`` and ``-`` only.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import re
from typing import cast

import anyio
import pydantic
from sqlalchemy import Connection

from ..errors import Conflict, InvalidInput, NotFound, WizError
from ..mcp import ServerSpec, ToolInfo
from ..objects import DeletedMcpServer, McpFailure, McpServer, McpTool, McpToolList
from ..store import mcp_servers as store
from ..store.mcp_servers import McpServerRow
from . import checks
from .runtime import Runtime, new_id

log = logging.getLogger(__name__)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}\Z")
MAX_ARG = 4096
MAX_ARGS = 200


class McpServerCreate(pydantic.BaseModel):
    """What ``mcp.add`` takes: its RPC params and ``add``'s input.

    Exactly one of ``command`` (a stdio server: the program, then its
    arguments) and ``url`` (streamable HTTP). ``env``: the server's variable
    -> the name of wizd's variable that gives its value when it starts.
    ``idempotent``: patterns of the tools that may safely run twice (a call
    in flight when wizd stopped is run again); ``confirm``: of those whose
    calls wait for the user's approval. ``["*"]``: every tool of the server.
    """

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True)

    name: str
    command: list[str] | None = None
    url: str | None = None
    env: dict[str, str] | None = None
    idempotent: list[str] | None = None
    confirm: list[str] | None = None


def public(row: McpServerRow, running: bool) -> McpServer:
    return {
        "id": row["id"],
        "name": row["name"],
        "transport": row["transport"],
        "command": None if row["command"] is None else json.loads(row["command"]),
        "url": row["url"],
        "env": json.loads(row["env"]),
        "idempotent": json.loads(row["idempotent"]),
        "confirm": json.loads(row["confirm"]),
        "running": running,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def spec_of(row: McpServerRow) -> ServerSpec:
    """What the manager runs."""
    command = () if row["command"] is None else tuple(json.loads(row["command"]))
    env = tuple(sorted(cast(dict[str, str], json.loads(row["env"])).items()))
    return ServerSpec(row["id"], row["name"], row["transport"], command, row["url"], env)


def resolve(conn: Connection, ref: str) -> McpServerRow:
    """The live server whose id or name is ``ref``. Raises NotFound."""
    row = store.by_ref(conn, ref)
    if row is None:
        raise NotFound("MCP server", ref)
    return row


def _check_name(value: str) -> str:
    value = checks.name("name", value, max_len=64)
    if not _NAME.match(value):
        raise InvalidInput("name", "letters, digits, '_' and '-' only, starting with a letter "
                           "or digit (tools are called server.tool)")
    return value


def _check_command(command: list[str]) -> list[str]:
    if not command or not command[0].strip():
        raise InvalidInput("command", "give the program to run, then its arguments")
    if len(command) > MAX_ARGS:
        raise InvalidInput("command", f"more than {MAX_ARGS} arguments")
    for arg in command:
        if "\x00" in arg:
            raise InvalidInput("command", "an argument holds a NUL character")
        if len(arg) > MAX_ARG:
            raise InvalidInput("command", f"an argument is longer than {MAX_ARG} characters")
    return command


def _check_patterns(field: str, patterns: list[str]) -> list[str]:
    if len(patterns) > MAX_ARGS:
        raise InvalidInput(field, f"more than {MAX_ARGS} patterns")
    for pattern in patterns:
        if not pattern.strip() or len(pattern) > 200 or "\x00" in pattern:
            raise InvalidInput(field, "a pattern is empty, too long or holds a NUL character")
    return patterns


def _check_env(env: dict[str, str]) -> dict[str, str]:
    for name, source in env.items():
        checks.env_name("env", name)
        checks.env_name("env", source)
    return dict(sorted(env.items()))


async def add(rt: Runtime, spec: McpServerCreate) -> McpServer:
    """Register a server (not started: it starts on first use).

    Raises InvalidInput (a bad name, command, URL or env; both or neither of
    command and url; env for an HTTP server) and Conflict (the name is taken).
    """
    name = _check_name(spec.name)
    if (spec.command is None) == (spec.url is None):
        raise InvalidInput("command", "give a command (stdio) or a url (streamable HTTP), "
                           "one of the two")
    env = _check_env(spec.env or {})
    idempotent = _check_patterns("idempotent", spec.idempotent or [])
    confirm = _check_patterns("confirm", spec.confirm or [])
    if spec.command is not None:
        command: str | None = json.dumps(_check_command(spec.command))
        url = None
    else:
        assert spec.url is not None
        if env:
            raise InvalidInput("env", "only a stdio server (command) gets environment variables")
        command, url = None, checks.base_url("url", spec.url)
    now = rt.clock.now_ms()

    def q(conn: Connection) -> McpServer:
        if store.id_named(conn, name) is not None:
            raise Conflict(f"an MCP server named {name!r} already exists", name=name)
        sid = new_id()
        store.insert(conn, id=sid, name=name, transport="stdio" if command else "http",
                     command=command, url=url, env=json.dumps(env), now_ms=now,
                     idempotent=json.dumps(idempotent), confirm=json.dumps(confirm))
        row = store.get(conn, sid)
        assert row is not None, "read inside the transaction that wrote it"
        return public(row, False)

    server = await rt.db.write(q)
    log.info("MCP server %s added (%s)", name, server["transport"])  # env names never logged
    return server


async def list_servers(rt: Runtime) -> list[McpServer]:
    """Every live server, by name."""
    rows = await rt.db.read(store.list_live)
    return [public(r, rt.mcp.is_running(r["id"])) for r in rows]


async def get(rt: Runtime, ref: str) -> McpServer:
    """One live server by id or name. Raises NotFound."""
    row = await rt.db.read(lambda conn: resolve(conn, ref))
    return public(row, rt.mcp.is_running(row["id"]))


async def remove(rt: Runtime, ref: str) -> DeletedMcpServer:
    """Remove a server (by id or name): the removal is stored, then the server
    is stopped if it runs, and waited for. Raises NotFound."""
    now = rt.clock.now_ms()

    def q(conn: Connection) -> McpServerRow:
        row = resolve(conn, ref)
        store.soft_delete(conn, row["id"], now)
        found = store.get(conn, row["id"])
        assert found is not None
        return found

    row = await rt.db.write(q)
    await rt.mcp.stop(row["id"])
    log.info("MCP server %s removed", row["name"])
    return {**public(row, False), "deleted": True}


def _agent_tools(conn: Connection, ref: str) -> list[str]:
    from . import agents  # agents does not need mcp: no cycle at import time

    row = agents.resolve(conn, ref)
    return list(json.loads(row["tools"])) if row["tools"] else []


def _allowed(patterns: list[str], name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _tools_of(row: McpServerRow, tools: list[ToolInfo]) -> list[McpTool]:
    return [{"name": f"{row['name']}.{t['name']}", "server": row["name"], "tool": t["name"],
             "description": t["description"], "input_schema": t["input_schema"]}
            for t in tools]


async def tools(rt: Runtime, ref: str | None = None, agent: str | None = None
                ) -> McpToolList:
    """The tools of server ``ref``, or of every server (starting those not
    running), as ``server.tool`` names; with ``agent`` (id or name), only
    those that agent may call (its ``tools`` patterns).

    For one server, its failure is raised (NotFound, McpServerError: it cannot
    start, or answers nothing in time). For every server, each failure is
    reported in ``failures`` and the other servers' tools are listed.
    """
    if agent is not None:
        patterns = await rt.db.read(lambda conn: _agent_tools(conn, agent))
        found_tools = await tools(rt, ref)
        return {"tools": [t for t in found_tools["tools"] if _allowed(patterns, t["name"])],
                "failures": [f for f in found_tools["failures"]
                             if any(_allowed([p.split(".", 1)[0]], f["server"])
                                    for p in patterns)]}
    if ref is not None:
        row = await rt.db.read(lambda conn: resolve(conn, ref))
        return {"tools": _tools_of(row, await rt.mcp.tools(spec_of(row))), "failures": []}
    rows = await rt.db.read(store.list_live)
    found: dict[str, list[McpTool]] = {}
    failures: dict[str, McpFailure] = {}

    async def one(row: McpServerRow) -> None:
        try:
            found[row["id"]] = _tools_of(row, await rt.mcp.tools(spec_of(row)))
        except WizError as exc:
            failures[row["id"]] = {"server": row["name"], "error": exc.message}

    async with anyio.create_task_group() as tg:
        for row in rows:
            tg.start_soon(one, row)
    return {"tools": [t for r in rows for t in found.get(r["id"], [])],
            "failures": [failures[r["id"]] for r in rows if r["id"] in failures]}
