"""Frozen settings of one wizd run.

Precedence, lowest to highest: built-in defaults, the config file
(``--config``, else ``$WIZ_CONFIG``, else ``$XDG_CONFIG_HOME/wiz/config.toml``),
environment variables (``WIZ_SOCKET``, ``WIZ_DB``, ``WIZ_<SETTING>``), flags.

The file is flat TOML with the field names of ``Config``::

    concurrency = 4
    job_timeout = 300
    db = "~/wiz/wiz.db"      # relative paths are relative to the file's folder

``db`` is a SQLite file's path, or a PostgreSQL URL (``postgresql://...``,
see wizd/store/urls.py); a URL's password is shown as ``***``.

Nothing here is secret: API keys live in the database (``provider.create``)
or in the environment variable a provider names (``api_key_env``), so
``public()`` can show every value.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, cast

from .errors import InvalidInput
from .objects import Settings
from .store.urls import is_url, shown, unknown_scheme

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def runtime_dir() -> Path:
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return Path(xdg) / "wiz"
    return Path(f"/tmp/wiz-{os.getuid()}")


def default_socket() -> Path:
    return runtime_dir() / "wizd.sock"


def data_dir() -> Path:
    xdg = os.environ.get("XDG_DATA_HOME")
    return (Path(xdg) if xdg else Path.home() / ".local" / "share") / "wiz"


def config_dir() -> Path:
    xdg = os.environ.get("XDG_CONFIG_HOME")
    return (Path(xdg) if xdg else Path.home() / ".config") / "wiz"


def default_config_file() -> Path:
    return config_dir() / "config.toml"


@dataclass(frozen=True)
class Config:
    socket: Path = field(default_factory=default_socket)
    # A SQLite file, or a PostgreSQL database's URL (str).
    db: Path | str = field(default_factory=lambda: data_dir() / "wiz.db")
    log_level: str = "info"
    backend: str = "trio"
    # Scheduler
    concurrency: int = 8  # jobs running at once, across all agents
    job_timeout: float = 120.0  # seconds one attempt may take
    max_attempts: int = 3
    backoff_base: float = 1.0  # seconds before the first retry; doubles each time
    backoff_cap: float = 60.0  # the longest wait between attempts
    # Seconds a running job may take to finish after SIGTERM before it is
    # cancelled and returned to the queue (0: requeue at once).
    shutdown_grace: float = 0.0
    # Context building: messages of history sent with each request, and the
    # most text (UTF-8 bytes) they may carry together: older ones are left out
    # first, and one message over the cap is cut.
    context_messages: int = 20
    max_context_bytes: int = 512 * 1024
    # The longest reply stored (UTF-8 bytes): a stream past it is cut off
    # there, and the reply is stored truncated and marked so.
    max_reply_bytes: int = 256 * 1024
    # RPC and events
    max_line_bytes: int = 1024 * 1024
    max_batch: int = 100  # calls in one JSON-RPC batch
    subscriber_buffer: int = 1024
    # SQLite durability: NORMAL in WAL mode survives process crashes (kill -9);
    # FULL also survives power loss at the price of an fsync per commit.
    synchronous: str = "NORMAL"
    # Retention of finished (completed and failed) jobs, as BullMQ's
    # removeOnComplete/removeOnFail {age, count}: a finished job is pruned once
    # it is older than keep_finished_days or not among the newest
    # keep_finished_jobs; 0 turns that limit off. Pruning runs every
    # prune_interval seconds, in small batches (see wizd.jobs.retention).
    keep_finished_jobs: int = 10_000
    keep_finished_days: float = 7.0
    prune_interval: float = 60.0
    # Several wizd on one PostgreSQL (docs/scale-out.md): this one's node id
    # ("": <host>:<socket>, unique per machine as the socket is), and the
    # seconds its lease lasts: renewed every third of it; once it lapses (the
    # node died or lost the database), other nodes take back its jobs.
    node: str = ""
    lease: float = 15.0

    def public(self) -> Settings:
        """The effective values, as shown by ``wizd config`` and ``daemon.status``."""
        return cast(Settings, {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)})

    @property
    def db_shown(self) -> str:
        """``db`` as logs and RPC results show it (a URL without its password)."""
        return shown(self.db) if isinstance(self.db, str) else str(self.db)

    @property
    def db_path(self) -> Path | None:
        """The SQLite file, or None when ``db`` is a PostgreSQL URL."""
        return self.db if isinstance(self.db, Path) else None


def _jsonable(value: Any) -> Any:
    if is_url(value):
        return shown(value)
    return str(value) if isinstance(value, Path) else value


_PATHS = ("socket", "db")
_ENV_NAMES = {"socket": "WIZ_SOCKET", "db": "WIZ_DB"}


def env_name(setting: str) -> str:
    """The environment variable that sets ``setting``."""
    return _ENV_NAMES.get(setting, f"WIZ_{setting.upper()}")


def _kind(name: str) -> type:
    if name in _PATHS:
        return Path
    return type(next(f for f in fields(Config) if f.name == name).default)


def _coerce(name: str, raw: Any, origin: str, base: Path) -> Any:
    """``raw`` (a TOML value, or a string from the environment or a flag) as the
    type of setting ``name``. Raises InvalidInput naming the setting and its origin."""
    kind = _kind(name)

    def bad(problem: str) -> InvalidInput:
        return InvalidInput(name, f"{problem} (from {origin})")

    if isinstance(raw, Path):
        raw = str(raw)
    if name == "db" and is_url(raw):
        problem = unknown_scheme(raw)
        if problem is not None:
            raise bad(problem)
        return raw
    if kind is Path:
        if not isinstance(raw, str) or not raw:
            raise bad(f"expected a path, got {raw!r}")
        path = Path(os.path.expanduser(raw))
        return path if path.is_absolute() else base / path
    if isinstance(raw, bool) or (kind is str and not isinstance(raw, str)):
        raise bad(f"expected {kind.__name__}, got {raw!r}")
    try:
        if kind is int:
            if isinstance(raw, float):
                raise ValueError("not a whole number")
            return int(raw)
        if kind is float:
            value = float(raw)
            if not math.isfinite(value):
                raise ValueError("not a finite number")
            return value
    except (TypeError, ValueError) as exc:
        raise bad(f"expected {kind.__name__}, got {raw!r}") from exc
    return raw


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(str(path), str(exc)) from exc
    except OSError as exc:
        raise InvalidInput(str(path), exc.strerror or str(exc)) from exc


def load(
    flags: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> Config:
    """Build the effective Config from defaults, the file, the environment and ``flags``.

    ``flags`` maps setting names to values; None means "not given". A missing
    default config file is fine; a missing file named by ``config_file`` or
    ``$WIZ_CONFIG`` is not. Raises InvalidInput for an unknown setting, a value
    of the wrong type or out of range, naming the setting and where it came from.
    """
    env = os.environ if environ is None else environ
    known = {f.name for f in fields(Config)}
    values: dict[str, Any] = {}

    named = config_file or (Path(env["WIZ_CONFIG"]) if env.get("WIZ_CONFIG") else None)
    path = named or default_config_file()
    if named is not None or path.is_file():
        path = Path(os.path.expanduser(path))
        for key, raw in _read_file(path).items():
            if key not in known:
                raise InvalidInput(key, f"unknown setting (in {path})")
            values[key] = _coerce(key, raw, str(path), path.parent.absolute())
    cwd = Path.cwd()
    for name in known:
        if env.get(env_name(name)):
            values[name] = _coerce(name, env[env_name(name)], f"${env_name(name)}", cwd)
    for name, raw in (flags or {}).items():
        if raw is None:
            continue
        if name not in known:
            raise InvalidInput(name, "unknown setting")
        values[name] = _coerce(name, raw, "--" + name.replace("_", "-"), cwd)

    cfg = Config(**values)
    cfg = dataclasses.replace(cfg, log_level=cfg.log_level.lower(),
                              synchronous=cfg.synchronous.upper())
    _validate(cfg)
    return cfg


def _validate(cfg: Config) -> None:
    checks: list[tuple[str, bool, str]] = [
        ("backend", cfg.backend in ("trio", "asyncio"), "must be trio or asyncio"),
        ("log_level", cfg.log_level in LOG_LEVELS, "must be one of " + ", ".join(LOG_LEVELS)),
        ("synchronous", cfg.synchronous in ("OFF", "NORMAL", "FULL", "EXTRA"),
         "must be OFF, NORMAL, FULL or EXTRA"),
        ("concurrency", cfg.concurrency >= 1, "must be at least 1"),
        ("job_timeout", cfg.job_timeout > 0, "must be more than 0 seconds"),
        ("max_attempts", cfg.max_attempts >= 1, "must be at least 1"),
        ("backoff_base", cfg.backoff_base >= 0, "must not be negative"),
        ("backoff_cap", cfg.backoff_cap >= cfg.backoff_base, "must not be below backoff_base"),
        ("shutdown_grace", cfg.shutdown_grace >= 0, "must not be negative"),
        ("context_messages", cfg.context_messages >= 1, "must be at least 1"),
        ("max_context_bytes", cfg.max_context_bytes >= 1024, "must be at least 1024"),
        ("max_reply_bytes", cfg.max_reply_bytes >= 1024, "must be at least 1024"),
        ("max_line_bytes", cfg.max_line_bytes >= 1024, "must be at least 1024"),
        ("max_batch", cfg.max_batch >= 1, "must be at least 1"),
        ("subscriber_buffer", cfg.subscriber_buffer >= 1, "must be at least 1"),
        ("keep_finished_jobs", cfg.keep_finished_jobs >= 0, "must not be negative (0: no limit)"),
        ("keep_finished_days", cfg.keep_finished_days >= 0, "must not be negative (0: no limit)"),
        ("prune_interval", cfg.prune_interval > 0, "must be more than 0 seconds"),
        ("lease", cfg.lease >= 1, "must be at least 1 second"),
        ("node", len(cfg.node) <= 200, "must be at most 200 characters"),
    ]
    for name, ok, problem in checks:
        if not ok:
            raise InvalidInput(name, f"{problem}, got {getattr(cfg, name)!r}")
