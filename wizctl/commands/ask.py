"""``wizctl ask AGENT QUESTION``: a one-shot question; the flow is in ``wizctl.ask``."""

from __future__ import annotations

from typing import Annotated

import typer

from .. import ask as ask_mod
from .base import state
from .messages import read_text


def ask(ctx: typer.Context,
        agent: Annotated[str, typer.Argument(help="The agent (name, id or id prefix).")],
        question: Annotated[str, typer.Argument(help="The question; '-' reads it from stdin.")],
        timeout: Annotated[float, typer.Option(help="Seconds to wait for the answer.")] = 300.0,
        json: Annotated[bool, typer.Option(
            "--json", help="Print the reply message object instead of its text.")] = False,
        ) -> None:
    """Ask an agent one question (in your DM with it); stream the answer."""
    code = ask_mod.ask(state(ctx).connect, agent, read_text(question), timeout=timeout,
                       json=json)
    raise typer.Exit(code)
