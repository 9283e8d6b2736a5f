"""Frozen settings of one wizd run.

Precedence, lowest to highest: built-in defaults, ``$XDG_CONFIG_HOME/wiz/config.toml``,
environment variables (``WIZ_SOCKET``, ``WIZ_DB``, ``WIZ_<FIELD>``), command-line flags.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import InvalidInput


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
    db: Path = field(default_factory=lambda: data_dir() / "wiz.db")
    log_level: str = "info"
    backend: str = "trio"
    # Scheduler
    concurrency: int = 8
    job_timeout: float = 120.0
    max_attempts: int = 3
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    shutdown_grace: float = 0.0
    # Context building
    context_messages: int = 20
    # RPC and events
    max_line_bytes: int = 1024 * 1024
    subscriber_buffer: int = 1024
    # SQLite durability: NORMAL in WAL mode survives process crashes (kill -9);
    # FULL also survives power loss at the price of an fsync per commit.
    synchronous: str = "NORMAL"

    def public(self) -> dict[str, Any]:
        """The effective values, as shown by ``wizd config`` and ``daemon.status``."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}


def _jsonable(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value


_ENV_NAMES = {"socket": "WIZ_SOCKET", "db": "WIZ_DB"}


def _coerce(name: str, raw: Any) -> Any:
    kind = {f.name: f for f in fields(Config)}[name]
    default = getattr(Config(), name) if name not in ("socket", "db") else Path()
    try:
        if isinstance(default, Path):
            return Path(os.path.expanduser(str(raw)))
        if isinstance(default, bool):
            return str(raw).lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        return str(raw)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(kind.name, f"cannot use {raw!r}: {exc}") from exc


def load(
    flags: dict[str, Any] | None = None,
    *,
    environ: dict[str, str] | None = None,
    config_file: Path | None = None,
) -> Config:
    """Build the effective Config.

    Raises InvalidInput for an unknown key or a value of the wrong type, naming it.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    path = config_file or Path(env.get("WIZ_CONFIG", "") or default_config_file())
    known = {f.name for f in fields(Config)}
    if path.is_file():
        with path.open("rb") as fh:
            try:
                data = tomllib.load(fh)
            except tomllib.TOMLDecodeError as exc:
                raise InvalidInput(str(path), str(exc)) from exc
        for key, raw in data.items():
            if key not in known:
                raise InvalidInput(f"{path}: {key}", "unknown setting")
            values[key] = _coerce(key, raw)
    for name in known:
        env_name = _ENV_NAMES.get(name, f"WIZ_{name.upper()}")
        if env.get(env_name):
            values[name] = _coerce(name, env[env_name])
    for name, raw in (flags or {}).items():
        if raw is not None:
            values[name] = _coerce(name, raw)
    cfg = Config(**values)
    if cfg.backend not in ("trio", "asyncio"):
        raise InvalidInput("backend", "must be trio or asyncio")
    if cfg.concurrency < 1:
        raise InvalidInput("concurrency", "must be at least 1")
    if cfg.synchronous.upper() not in ("OFF", "NORMAL", "FULL", "EXTRA"):
        raise InvalidInput("synchronous", "must be OFF, NORMAL, FULL or EXTRA")
    return dataclasses.replace(cfg, log_level=cfg.log_level.lower())
