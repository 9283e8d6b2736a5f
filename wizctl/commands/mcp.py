"""``wizctl mcp ...``: MCP servers registered in wizd, and their tools.

A server's secrets are never typed here: ``--env NAME=VAR`` gives the server
the variable NAME with the value of wizd's variable VAR, read when wizd
starts the server.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .. import exits, table, text
from ..objects import DeletedMcpServer, McpServer, McpToolList
from .base import Json, color, emit, state, sub_app

app = sub_app("MCP servers: tools for agents (Model Context Protocol).")

ENV_HELP = ("NAME=VAR: the server gets the variable NAME with the value of wizd's "
            "environment variable VAR, read when it starts (repeat for more).")


def parse_env(pairs: list[str] | None) -> dict[str, str] | None:
    """``["NAME=VAR", ...]`` as a dict. Raises BadParameter for a pair without ``=``."""
    if not pairs:
        return None
    env: dict[str, str] = {}
    for pair in pairs:
        name, sep, var = pair.partition("=")
        if not sep or not name or not var:
            raise typer.BadParameter(f"{pair!r} is not NAME=VAR", param_hint="'--env'")
        env[name] = var
    return env


def _split(patterns: str | None) -> list[str] | None:
    return None if patterns is None else [p.strip() for p in patterns.split(",") if p.strip()]


def _where(s: McpServer) -> str:
    if s.get("command"):
        return " ".join(s.get("command") or [])
    return str(s.get("url"))


def _env(s: McpServer) -> str:
    return " ".join(f"{k}=${v}" for k, v in (s.get("env") or {}).items()) or "-"


def _table(servers: list[McpServer]) -> str:
    rows = [(s.get("name"), s.get("transport"), _where(s), _env(s),
             "yes" if s.get("running") else "no") for s in servers]
    return table.table(("name", "transport", "command / url", "env", "running"), rows,
                       color=color())


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(
        metavar="NAME", help="Its tools are called NAME.TOOL: letters, digits, _ and -.")],
    command: Annotated[list[str] | None, typer.Argument(
        metavar="-- COMMAND ARGS...",
        help="The program that runs a stdio server, then its arguments (after --).",
        show_default=False)] = None,
    url: Annotated[str | None, typer.Option(help="A streamable HTTP server's URL.")] = None,
    env: Annotated[list[str] | None, typer.Option(metavar="NAME=VAR", help=ENV_HELP)] = None,
    idempotent: Annotated[str | None, typer.Option(
        metavar="TOOLS", help="Tools safe to run twice, comma-separated patterns ('*': all): "
        "a call in flight when wizd stopped runs again.")] = None,
    confirm: Annotated[str | None, typer.Option(
        metavar="TOOLS", help="Tools whose calls wait for approval (comma-separated "
        "patterns).")] = None,
    json: Json = False,
) -> None:
    """Add an MCP server: a command wizd runs (stdio), or a URL (streamable HTTP).

    \b
      wizctl mcp add fs -- npx -y @modelcontextprotocol/server-filesystem ~/notes
      wizctl mcp add gh --env GITHUB_TOKEN=MY_GH_TOKEN -- github-mcp-server stdio
      wizctl mcp add web --url http://localhost:8000/mcp

    wizd starts it when it is first used (wizctl mcp tools NAME). The command
    is stored and shown as given: pass secrets with --env."""
    result: McpServer = state(ctx).call("mcp.add", name=name, command=command or None,
                                        url=url, env=parse_env(env),
                                        idempotent=_split(idempotent), confirm=_split(confirm))
    emit(result, json, lambda s: f"added MCP server {s.get('name')} ({_where(s)})")


@app.command("list")
def list_(ctx: typer.Context, json: Json = False) -> None:
    """List MCP servers."""
    emit(state(ctx).call("mcp.list"), json, lambda r: _table(r["servers"]))


@app.command("remove")
def remove(ctx: typer.Context,
           name: Annotated[str, typer.Argument(metavar="SERVER", help="Name or id.")],
           json: Json = False) -> None:
    """Remove an MCP server (stopped if it runs)."""
    st = state(ctx)
    ref = {"name": name} if name in {s["name"] for s in st.call("mcp.list")["servers"]} \
        else {"id": name}
    result: DeletedMcpServer = st.call("mcp.remove", **ref)
    emit(result, json, lambda s: f"removed MCP server {s.get('name')}")


@app.command("tools")
def tools(ctx: typer.Context,
          server: Annotated[str | None, typer.Argument(
              metavar="[SERVER]", help="One server (name or id); every one if absent.",
              show_default=False)] = None,
          agent: Annotated[str | None, typer.Option(
              help="Only the tools this agent (name or id) may call.")] = None,
          json: Json = False) -> None:
    """List the tools of MCP servers, as SERVER.TOOL names (starting the servers).

    A server that fails is told on stderr and the exit code is 9 (with
    --json, failures are in the output's "failures" and the exit code is 0)."""
    result: McpToolList = state(ctx).call("mcp.tools", server=server, agent=agent)
    emit(result, json, lambda r: table.table(
        ("tool", "description"),
        [(t.get("name"), text.one_line(t.get("description") or "", 80)) for t in r["tools"]],
        color=color()))
    failures = [] if json else result.get("failures") or []
    for failure in failures:
        sys.stderr.write(f"wizctl: {failure.get('error')}\n")
    if failures:
        raise typer.Exit(exits.TOOL_SERVER)
