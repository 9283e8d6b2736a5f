"""The ``wizd`` command: flags -> Config -> run the app."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import config as config_mod
from .errors import WizError

app = typer.Typer(add_completion=False, no_args_is_help=False,
                  help="wizd: the local daemon for talking to LLM agents.")

Socket = Annotated[Optional[Path], typer.Option("--socket", help="Unix socket path [env WIZ_SOCKET]")]
Db = Annotated[Optional[Path], typer.Option("--db", help="SQLite database path [env WIZ_DB]")]
Level = Annotated[Optional[str], typer.Option("--log-level", help="debug, info, warning, error")]
Backend = Annotated[Optional[str], typer.Option("--backend", help="trio (default) or asyncio")]
ConfigFile = Annotated[Optional[Path], typer.Option("--config", help="config.toml to read")]


def _load(config_file: Path | None, **flags: object) -> config_mod.Config:
    try:
        return config_mod.load(flags, config_file=config_file)
    except WizError as exc:
        typer.echo(f"wizd: {exc.message}", err=True)
        raise typer.Exit(2) from None


@app.callback(invoke_without_command=True)
def main_command(
    ctx: typer.Context,
    socket: Socket = None,
    db: Db = None,
    log_level: Level = None,
    backend: Backend = None,
    config_file: ConfigFile = None,
) -> None:
    """Run the daemon in the foreground (what systemd runs)."""
    ctx.obj = dict(socket=socket, db=db, log_level=log_level, backend=backend)
    ctx.meta["config_file"] = config_file
    if ctx.invoked_subcommand is not None:
        return
    cfg = _load(config_file, **ctx.obj)
    from . import logs

    logs.setup(cfg.log_level)
    import anyio

    from .app import serve

    try:
        anyio.run(serve, cfg, backend=cfg.backend)
    except WizError as exc:
        logging.getLogger("wizd").error("%s", exc.message)
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        pass


@app.command("config")
def show_config(ctx: typer.Context) -> None:
    """Print the effective settings (defaults < config.toml < environment < flags)."""
    cfg = _load(ctx.meta.get("config_file"), **(ctx.obj or {}))
    json.dump(cfg.public(), sys.stdout, indent=2)
    sys.stdout.write("\n")


def main() -> None:
    app(prog_name="wizd")
