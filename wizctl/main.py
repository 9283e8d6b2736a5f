"""``wizctl``: the command line of wizd. Parses, calls the client, renders.

This is the root: the global ``--socket`` option, the registration of every
command (they live in ``wizctl.commands``, one module per group), and
``main()``, the one place where errors become a single ``wizctl: error: ...``
line on stderr and an exit code — never a traceback. Every command takes
``--json`` for scripts; people get tables and names.

Imports stay light (stdlib + typer): ``wizctl --help`` must be quick.
"""

from __future__ import annotations

import importlib.util
import sys
from typing import Annotated

import typer

from . import replies
from .client import RpcError, WizClientError
from .commands import agents, conversations, jobs, messages, providers, status
from .commands.base import SETTINGS, State
from .resolve import ResolveError

app = typer.Typer(name="wizctl", help="Talk to wizd, the local LLM agents daemon.", **SETTINGS)

# Verbs first, then one sub-app per noun: the order `wizctl --help` lists them.
for _command in (status.status, messages.send, messages.log, messages.tail, messages.events,
                 messages.chat, jobs.jobs):
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


def _fail(text: str) -> None:
    sys.stderr.write(f"wizctl: error: {text}\n")


def main(argv: list[str] | None = None) -> int:
    """Run wizctl and return its exit code: 0 ok, 1 an error (one line on
    stderr), 2 a usage error or ``send --wait`` timing out, 130 interrupted."""
    try:
        app(args=argv, prog_name="wizctl")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except replies.WaitTimeout as exc:
        _fail(str(exc))
        return 2
    except RpcError as exc:
        _fail(exc.describe())
        return 1
    except (WizClientError, ResolveError) as exc:
        _fail(str(exc))
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


# `wizctl service ...` lives in service.py, written separately; without it,
# wizctl simply has no such command (an error inside it still shows).
if importlib.util.find_spec(f"{__package__}.service") is not None:
    from . import service as _service

    app.add_typer(_service.app, name="service")
