"""Settings: defaults < config.toml < WIZ_* environment < flags, and `wizd config`."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.daemon import run_wizd
from wizd import config
from wizd.errors import InvalidInput


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_each_layer_overrides_the_one_below() -> None:
    base = config.load(environ={})
    assert (base.concurrency, base.job_timeout, base.max_attempts) == (8, 120.0, 3)
    write(config.default_config_file(),
          "concurrency = 2\njob_timeout = 30\nmax_attempts = 5\nlog_level = 'WARNING'\n")
    from_file = config.load(environ={})
    assert (from_file.concurrency, from_file.job_timeout, from_file.max_attempts) == (2, 30.0, 5)
    assert from_file.log_level == "warning"
    env = {"WIZ_CONCURRENCY": "3", "WIZ_JOB_TIMEOUT": "40"}
    from_env = config.load(environ=env)
    assert (from_env.concurrency, from_env.job_timeout, from_env.max_attempts) == (3, 40.0, 5)
    flagged = config.load({"concurrency": 4, "job_timeout": None}, environ=env)
    assert (flagged.concurrency, flagged.job_timeout, flagged.max_attempts) == (4, 40.0, 5)


def test_paths_default_to_xdg_and_relative_ones_follow_their_source(tmp_path: Path) -> None:
    cfg = config.load(environ={})
    assert cfg.socket == Path(os.environ["XDG_RUNTIME_DIR"]) / "wiz" / "wizd.sock"
    assert cfg.db == Path(os.environ["XDG_DATA_HOME"]) / "wiz" / "wiz.db"
    file = write(tmp_path / "elsewhere" / "wiz.toml", "db = 'data/wiz.db'\nsocket = '~/s.sock'\n")
    cfg = config.load(config_file=file, environ={})
    assert cfg.db == tmp_path / "elsewhere" / "data" / "wiz.db"
    assert cfg.socket == Path.home() / "s.sock"
    cfg = config.load(environ={"WIZ_CONFIG": str(file), "WIZ_DB": "/abs/wiz.db"})
    assert cfg.db == Path("/abs/wiz.db")


@pytest.mark.parametrize(("text", "env", "message"), [
    ("colour = 'blue'\n", {}, "invalid colour: unknown setting"),
    ("concurrency = 2.5\n", {}, "invalid concurrency: expected int, got 2.5"),
    ("concurrency = true\n", {}, "invalid concurrency: expected int"),
    ("log_level = 3\n", {}, "invalid log_level: expected str"),
    ("", {"WIZ_JOB_TIMEOUT": "soon"}, "invalid job_timeout: expected float, got 'soon' "
                                      "(from $WIZ_JOB_TIMEOUT)"),
    ("", {"WIZ_JOB_TIMEOUT": "inf"}, "invalid job_timeout"),
    ("concurrency = 0\n", {}, "invalid concurrency: must be at least 1"),
    ("backoff_base = 10\nbackoff_cap = 5\n", {}, "invalid backoff_cap"),
    ("shutdown_grace = -1\n", {}, "invalid shutdown_grace"),
    ("log_level = 'loud'\n", {}, "invalid log_level: must be one of"),
    ("backend = 'curio'\n", {}, "invalid backend"),
    ("concurrency = \n", {}, "config.toml"),  # not TOML at all
])
def test_bad_values_are_refused_naming_the_setting(text: str, env: dict[str, str],
                                                     message: str) -> None:
    write(config.default_config_file(), text)
    with pytest.raises(InvalidInput) as caught:
        config.load(environ=env)
    assert message in caught.value.message


def test_a_config_file_asked_for_must_exist(tmp_path: Path) -> None:
    config.load(environ={})  # the default file may be missing
    with pytest.raises(InvalidInput, match="No such file"):
        config.load(config_file=tmp_path / "missing.toml", environ={})
    with pytest.raises(InvalidInput, match="No such file"):
        config.load(environ={"WIZ_CONFIG": str(tmp_path / "missing.toml")})


def wizd_cmd(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run wizd (a fork of the test fork server, as ``python -m wizd``) to completion."""
    code, out, err = run_wizd(list(args), {**os.environ, **(env or {})}, timeout=30)
    return subprocess.CompletedProcess(["wizd", *args], code, out, err)


def test_wizd_config_shows_the_effective_values(tmp_path: Path) -> None:
    file = write(tmp_path / "c.toml", "concurrency = 2\njob_timeout = 30\nshutdown_grace = 5\n"
                                      "context_messages = 7\n")
    done = wizd_cmd("--config", str(file), "--concurrency", "6", "config",
                    env={"WIZ_JOB_TIMEOUT": "45"})
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["concurrency"] == 6  # flag over file
    assert shown["job_timeout"] == 45.0  # environment over file
    assert shown["shutdown_grace"] == 5.0  # file over default
    assert shown["context_messages"] == 7
    assert shown["max_attempts"] == 3  # default
    assert set(shown) == {f.name for f in dataclasses.fields(config.Config)}


def test_wizd_refuses_a_bad_setting_in_one_line() -> None:
    done = wizd_cmd("config", env={"WIZ_CONCURRENCY": "many"})
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "wizd: invalid concurrency: expected int, got 'many' (from $WIZ_CONCURRENCY)"]


def test_db_takes_a_postgresql_url_from_every_layer_and_hides_its_password(
    tmp_path: Path,
) -> None:
    url = "postgresql://wiz:s3cret@db.example/wiz"
    shown = "postgresql://wiz:***@db.example/wiz"
    (tmp_path / "c.toml").write_text(f'db = "{url}"\n')
    from_file = config.load(environ={}, config_file=tmp_path / "c.toml")
    from_env = config.load(environ={"WIZ_DB": url})
    from_flag = config.load({"db": url}, environ={})
    for cfg in (from_file, from_env, from_flag):
        assert cfg.db == url and cfg.db_path is None
        assert cfg.public()["db"] == shown and cfg.db_shown == shown
    socket_only = "postgresql:///wiz?host=/run/postgresql&password=s3cret"
    assert config.load({"db": socket_only}, environ={}).db_shown == (
        "postgresql:///wiz?host=/run/postgresql&password=***")
    ssl = "postgresql://wiz@db.example/wiz?sslpassword=k3y&sslmode=require"
    assert config.load({"db": ssl}, environ={}).db_shown == (
        "postgresql://wiz@db.example/wiz?sslpassword=***&sslmode=require")
    path = config.load({"db": "wiz.db"}, environ={})
    assert path.db_path == Path.cwd() / "wiz.db" and path.db_shown == str(Path.cwd() / "wiz.db")


def test_a_url_wizd_cannot_use_is_refused_not_taken_for_a_file() -> None:
    """SQLAlchemy's spelling of a PostgreSQL URL (or another database's) is not
    a path: it is refused, saying what wizd takes."""
    for url in ("postgresql+psycopg://wiz:s3cret@db.example/wiz", "mysql://db/wiz"):
        with pytest.raises(InvalidInput) as caught:
            config.load({"db": url}, environ={})
        assert "is not a database wizd knows" in caught.value.message
        assert "s3cret" not in caught.value.message
