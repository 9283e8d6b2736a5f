"""``wizctl status``: is wizd running, and how is its queue.

Usually answered by ``wizctl.quick`` without typer; this command is the same
for ``--help`` and whatever the fast path leaves to typer.
"""

from __future__ import annotations

import typer

from ..status import describe
from .base import Json, color, emit, state


def status(ctx: typer.Context, json: Json = False) -> None:
    """Is wizd running, and how is its queue."""
    emit(state(ctx).call("daemon.status"), json, lambda r: describe(r, color=color()))
