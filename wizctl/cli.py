"""The typer app of ``wizctl``: the command line of wizd. Parses, calls the
client, renders.

This is the root: the global ``--socket`` option and the registration of every
command (they live in ``wizctl.commands``, one module per group). Every command
takes ``--json`` for scripts; people get tables and names. ``wizctl.main``
runs it (after the fast path, ``wizctl.quick``) and turns errors into one line
and an exit code.

Imports stay light (stdlib + typer): ``wizctl --help`` must be quick.
"""

from __future__ import annotations

import importlib.util
from typing import Annotated

import typer

from . import exits
from .commands import (
    agents,
    ask,
    conversations,
    jobs,
    mcp,
    messages,
    providers,
    search,
    status,
    usage,
)
from .commands.base import SETTINGS, State

app = typer.Typer(name="wizctl", help="Talk to wizd, the local LLM agents daemon.",
                  epilog=exits.HELP, **SETTINGS)

# Verbs first, then one sub-app per noun: the order `wizctl --help` lists them.
for _command in (status.status, ask.ask, messages.send, messages.log, messages.tail,
                 messages.events, messages.chat, search.search, usage.usage, jobs.jobs,
                 jobs.approve, jobs.deny):
    app.command()(_command)
for _name, _sub in (("provider", providers.app), ("agent", agents.app),
                    ("dm", conversations.dm_app), ("project", conversations.project_app),
                    ("channel", conversations.channel_app), ("job", jobs.job_app),
                    ("queue", jobs.queue_app), ("mcp", mcp.app)):
    app.add_typer(_sub, name=_name)


@app.callback()
def _root(ctx: typer.Context,
          socket: Annotated[str | None, typer.Option(
              "--socket", envvar="WIZ_SOCKET", metavar="PATH",
              help="wizd's socket [default: $XDG_RUNTIME_DIR/wiz/wizd.sock]")] = None) -> None:
    ctx.obj = State(socket)
    ctx.call_on_close(ctx.obj.close)


def run(args: list[str]) -> int:
    """Run the app on ``args`` and return its exit code; errors propagate to
    ``wizctl.main`` (but end of input at a prompt, which exits 1)."""
    try:
        code = app(args=args, prog_name="wizctl", standalone_mode=False)
    except typer.Abort:  # end of input at a prompt
        return exits.ERROR
    return code if isinstance(code, int) else 0


# `wizctl service ...` lives in service.py, written separately; without it,
# wizctl simply has no such command (an error inside it still shows).
if importlib.util.find_spec(f"{__package__}.service") is not None:
    from . import service as _service

    app.add_typer(_service.app, name="service")
