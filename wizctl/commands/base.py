"""What every command shares: the per-run ``State``, output, and ``by_ref``.

A command parses, calls the daemon through ``state(ctx)``, and prints with
``emit``: the raw result as JSON with ``--json``, else text for a person.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from .. import text
from ..client import Client
from ..resolve import Lookup
from ..table import Styles

# The settings of the root app and of every sub-app: plain help (no rich), and
# errors left to main() (no pretty tracebacks).
SETTINGS: dict[str, Any] = dict(no_args_is_help=True, rich_markup_mode=None,
                                pretty_exceptions_enable=False, add_completion=False)

Json = Annotated[bool, typer.Option("--json", help="Print the raw result as JSON.")]
JsonLines = Annotated[bool, typer.Option("--json", help="One JSON object per line.")]


def sub_app(help: str) -> typer.Typer:
    """A sub-app (one noun) with the shared settings."""
    return typer.Typer(help=help, **SETTINGS)


class State:
    """Per-run context: where the daemon is, one connection, one Lookup."""

    def __init__(self, socket: str | None) -> None:
        self.socket = socket
        self._client: Client | None = None
        self._lookup: Lookup | None = None

    def connect(self) -> Client:
        """A new connection (followers own theirs). Raises DaemonNotRunning."""
        return Client(self.socket)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = self.connect()
        return self._client

    def call(self, method: str, /, **params: Any) -> Any:
        """``method`` with the params that are not None (unset options are not sent)."""
        return self.client.call(method, **{k: v for k, v in params.items() if v is not None})

    @property
    def lookup(self) -> Lookup:
        if self._lookup is None:
            self._lookup = Lookup(self.call)
        return self._lookup


def state(ctx: typer.Context) -> State:
    """The State the root callback made for this run."""
    obj = ctx.find_root().obj
    assert isinstance(obj, State)
    return obj


def emit(result: Any, as_json: bool, human: Callable[[Any], str]) -> None:
    """Print ``result`` as JSON for scripts, else as ``human(result)``."""
    sys.stdout.write((text.pretty_json(result) if as_json else human(result)) + "\n")


def color() -> bool:
    """Whether tables on stdout get colour."""
    return text.use_color(sys.stdout)


def status_style(column: int) -> Styles:
    """A table style colouring the status in ``column``."""
    return lambda i, v: text.STATUS_COLORS.get(v) if i == column else None


def by_ref(sub: typer.Typer, name: str, method: str, kind: str, help: str,
           human: Callable[[State], Callable[[Any], str]]) -> None:
    """Register ``<noun> NAME REF``: resolve REF as a ``kind``, call ``method(id=...)``,
    print ``human(state)(result)``."""
    def command(ctx: typer.Context,
                ref: str = typer.Argument(..., metavar=kind.upper(), help="Name, id or id prefix."),
                json: bool = typer.Option(False, "--json", help="Print the raw result as JSON."),
                ) -> None:
        st = state(ctx)
        ident = st.lookup.job_id(ref) if kind == "job" else getattr(st.lookup, kind)(ref)["id"]
        emit(st.call(method, id=ident), json, human(st))
    command.__doc__ = help
    sub.command(name)(command)
