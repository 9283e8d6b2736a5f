"""The ``wizd`` command: flags -> Config -> run the app.

Exit status, for the service manager (docs/systemd.md):

    0  stopped cleanly (SIGTERM, SIGINT)
    1  crashed (a bug: the traceback is logged); or, in one line, another
       wizd holds the database or the socket, or the socket passed by the
       service manager is unusable
    2  a bad setting or flag: starting again cannot help
    3  its storage stops it: read-only, full, a directory or file in the
       way, a damaged database or one from a newer wizd; one line says
       what, where and what to do
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from . import config as config_mod
from .errors import DaemonBusy, SchemaError, StorageUnavailable, WizError, sole

# No rich tracebacks: a crash is one log line (journald keeps one entry per line).
# Plain help (rich_markup_mode=None), as wizctl's (wizctl/commands/base.py SETTINGS).
app = typer.Typer(add_completion=False, no_args_is_help=False, pretty_exceptions_enable=False,
                  rich_markup_mode=None,
                  help="wizd: the local daemon for talking to LLM agents.")
log = logging.getLogger("wizd")

EXIT_CRASH = 1
EXIT_CONFIG = 2
EXIT_STORAGE = 3

Socket = Annotated[Path | None, typer.Option(
    "--socket", metavar="PATH",
    help="Unix socket path (env WIZ_SOCKET; default $XDG_RUNTIME_DIR/wiz/wizd.sock)")]
Db = Annotated[str | None, typer.Option(
    "--db", metavar="PATH|URL",
    help="SQLite database path, or a postgresql:// URL (env WIZ_DB)")]
Level = Annotated[str | None, typer.Option(
    "--log-level", metavar="LEVEL",
    help="debug, info, warning, error (env WIZ_LOG_LEVEL; default info)")]
Backend = Annotated[str | None, typer.Option(
    "--backend", metavar="NAME", help="trio (default) or asyncio")]
ConfigFile = Annotated[Path | None, typer.Option(
    "--config", metavar="FILE",
    help="config.toml to read (env WIZ_CONFIG; default $XDG_CONFIG_HOME/wiz/config.toml)")]
Concurrency = Annotated[int | None, typer.Option(
    "--concurrency", metavar="N", help="jobs running at once (env WIZ_CONCURRENCY; default 8)")]
JobTimeout = Annotated[float | None, typer.Option(
    "--job-timeout", metavar="SECONDS",
    help="seconds one job attempt may take (env WIZ_JOB_TIMEOUT; default 120)")]
ShutdownGrace = Annotated[float | None, typer.Option(
    "--shutdown-grace", metavar="SECONDS",
    help="seconds running jobs may take to finish on SIGTERM before they are requeued "
         "(env WIZ_SHUTDOWN_GRACE; default 0)")]

Node = Annotated[str | None, typer.Option(
    "--node", metavar="NAME",
    help="this node's id among the wizd on one PostgreSQL (env WIZ_NODE; "
         "default <host>:<socket>)")]
Lease = Annotated[float | None, typer.Option(
    "--lease", metavar="SECONDS",
    help="seconds a node's lease lasts: once it lapses, other nodes take back its jobs "
         "(env WIZ_LEASE; default 15)")]


def _load(config_file: Path | None, **flags: object) -> config_mod.Config:
    try:
        return config_mod.load(flags, config_file=config_file)
    except WizError as exc:
        typer.echo(f"wizd: {exc.message}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None


@app.callback(invoke_without_command=True)
def main_command(
    ctx: typer.Context,
    socket: Socket = None,
    db: Db = None,
    log_level: Level = None,
    backend: Backend = None,
    config_file: ConfigFile = None,
    concurrency: Concurrency = None,
    job_timeout: JobTimeout = None,
    shutdown_grace: ShutdownGrace = None,
    node: Node = None,
    lease: Lease = None,
) -> None:
    """Run the daemon in the foreground (what systemd runs).

    Settings: defaults < config.toml < WIZ_* environment variables < flags;
    `wizd [flags] config` prints the effective values.
    """
    ctx.obj = dict(socket=socket, db=db, log_level=log_level, backend=backend,
                   concurrency=concurrency, job_timeout=job_timeout,
                   shutdown_grace=shutdown_grace, node=node, lease=lease)
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
    except KeyboardInterrupt:
        pass
    except Exception as exc:
        # Non-zero either way, so that systemd's Restart=on-failure applies:
        # a disk may get space again, another wizd may stop.
        error = sole(exc)
        if isinstance(error, (StorageUnavailable, SchemaError)):
            log.error("%s", error.message)
            raise typer.Exit(EXIT_STORAGE) from None
        if isinstance(error, WizError):
            log.error("%s", error.message)
        else:
            log.critical("wizd crashed: %r", error, exc_info=error)
        raise typer.Exit(EXIT_CRASH) from None


@app.command("config")
def show_config(ctx: typer.Context) -> None:
    """Print the effective settings (defaults < config.toml < environment < flags)."""
    cfg = _load(ctx.meta.get("config_file"), **(ctx.obj or {}))
    json.dump(cfg.public(), sys.stdout, indent=2)
    sys.stdout.write("\n")


@app.command("migrate-to")
def migrate_to(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(metavar="URL", help="postgresql://... (an empty database)")],
) -> None:
    """Copy the SQLite database (--db) into an empty PostgreSQL database: every
    table, ids and message seqs kept. Stop wizd first; then run it with --db URL."""
    cfg = _load(ctx.meta.get("config_file"), **(ctx.obj or {}))
    from . import logs
    from .store.urls import is_url, shown

    logs.setup(cfg.log_level)
    if cfg.db_path is None or not is_url(url):
        typer.echo("wizd: migrate-to copies a SQLite database (--db PATH) into a "
                   "postgresql:// URL", err=True)
        raise typer.Exit(EXIT_CONFIG)
    if not cfg.db_path.is_file():
        typer.echo(f"wizd: no database at {cfg.db_path}", err=True)
        raise typer.Exit(EXIT_CONFIG)
    from .lock import InstanceLock
    from .store.copy import copy
    from .store.failures import starting

    lock = InstanceLock(cfg.db_path, "database")
    try:
        lock.acquire()
        try:
            with starting(shown(url)):
                counts = copy(cfg.db_path, url)
        finally:
            lock.release()
    except WizError as exc:
        log.error("%s", exc.message)
        busy = isinstance(exc, DaemonBusy)  # exit 1, as a start would
        raise typer.Exit(EXIT_STORAGE if isinstance(exc, (StorageUnavailable, SchemaError))
                         else EXIT_CRASH if busy else EXIT_CONFIG) from None
    total = sum(counts.values())
    typer.echo(f"copied {total} rows from {cfg.db_path} to {shown(url)}: " + ", ".join(
        f"{name} {n}" for name, n in counts.items() if n))


def main() -> None:
    app(prog_name="wizd")
