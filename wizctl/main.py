"""``wizctl``: the command line of wizd. Parses, calls the client, renders.

This is the root: the global ``--socket`` option, the registration of every
command (they live in ``wizctl.commands``, one module per group), and
``main()``, the one place where errors become a single ``wizctl: error: ...``
line (or, with ``--json``, one JSON object) on stderr and an exit code that
tells kinds apart (``wizctl.exits``) — never a traceback. Every command takes
``--json`` for scripts; people get tables and names.

Imports stay light (stdlib + typer): ``wizctl --help`` must be quick.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Annotated

import typer

from . import exits
from .commands import (
    agents,
    ask,
    conversations,
    jobs,
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
                 messages.events, messages.chat, search.search, usage.usage, jobs.jobs):
    app.command()(_command)
for _name, _sub in (("provider", providers.app), ("agent", agents.app),
                    ("dm", conversations.dm_app), ("project", conversations.project_app),
                    ("channel", conversations.channel_app), ("job", jobs.job_app),
                    ("queue", jobs.queue_app)):
    app.add_typer(_sub, name=_name)


@app.callback()
def _root(ctx: typer.Context,
          socket: Annotated[str | None, typer.Option(
              "--socket", envvar="WIZ_SOCKET", metavar="PATH",
              help="wizd's socket [default: $XDG_RUNTIME_DIR/wiz/wizd.sock]")] = None) -> None:
    ctx.obj = State(socket)
    ctx.call_on_close(ctx.obj.close)


def wants_json(argv: list[str]) -> bool:
    """Whether ``--json`` is among the options (not after ``--``)."""
    return "--json" in (argv[:argv.index("--")] if "--" in argv else argv)


def main(argv: list[str] | None = None) -> int:
    """Run wizctl and return its exit code (the table is in ``wizctl.exits``).

    A failure is told once on stderr: one line (click's usage text for a usage
    error), or with ``--json`` one JSON object. Never a traceback, but for a bug.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    as_json = wants_json(args)
    try:
        code = app(args=args, prog_name="wizctl", standalone_mode=False)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except KeyboardInterrupt:
        return exits.INTERRUPTED
    except typer.Abort:  # end of input at a prompt
        return exits.ERROR
    except Exception as exc:
        found = exits.failure(exc)
        if found is None:
            raise
        if as_json:
            sys.stderr.write(found.json() + "\n")
        elif exits.is_usage_error(exc):
            exc.show()  # type: ignore[attr-defined]  # click's usage line and hint
        else:
            sys.stderr.write(found.line() + "\n")
        return found.exit
    return code if isinstance(code, int) else 0


# `wizctl service ...` lives in service.py, written separately; without it,
# wizctl simply has no such command (an error inside it still shows).
if importlib.util.find_spec(f"{__package__}.service") is not None:
    from . import service as _service

    app.add_typer(_service.app, name="service")
