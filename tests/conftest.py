"""Fixtures every test may use: isolation, both anyio backends, a real wizd."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import tmproot
from tests.support.daemon import Wizd
from tests.support.engines import ENGINES, database_at


def pytest_configure(config: pytest.Config) -> None:
    """Ctrl-C works in the processes the tests start, however the suite was started.

    A shell starts a background job (`pytest ... &`, nohup) with SIGINT
    ignored; every process the tests start would inherit that, and a wizctl
    that a test interrupts would never exit (Python installs its Ctrl-C
    handler only where SIGINT is not ignored). Runs in each xdist worker too.
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    tmproot.choose(config)
    config.addinivalue_line(
        "markers", "sqlite_only(reason): holds for SQLite only; not run on PostgreSQL")


# Where a test runs on PostgreSQL on both anyio backends; elsewhere on trio
# only (see tests/support/engines.py).
_PG_BOTH_BACKENDS = ("tests/store/", "tests/e2e/", "tests/events/")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test marked sqlite_only runs on SQLite only; on PostgreSQL, a test
    outside _PG_BOTH_BACKENDS runs on trio only (tests/support/engines.py)."""
    kept, dropped = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        on_pg = params.get("engine") == "postgresql"
        if on_pg and item.get_closest_marker("sqlite_only"):
            dropped.append(item)
        elif on_pg and params.get("anyio_backend") == "asyncio" and not \
                item.nodeid.startswith(_PG_BOTH_BACKENDS):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    """The database engine a test runs on: each test using it runs on both."""
    return str(request.param)


@pytest.fixture
def db_at(engine: str, tmp_path: Path) -> Iterator[Path | str]:
    """The test's database on ``engine``: a SQLite path (not created yet) or the
    URL of a migrated, empty PostgreSQL database."""
    with database_at(engine, tmp_path) as where:
        yield where


@pytest.fixture(autouse=True)
def clean_environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test gets its own runtime, data and config folders; nothing leaks in."""
    for name in ("WIZ_SOCKET", "WIZ_DB", "WIZ_CONFIG", "NOTIFY_SOCKET", "LISTEN_FDS",
                 "LISTEN_PID", "WATCHDOG_USEC", "JOURNAL_STREAM", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    for var, sub in (("XDG_RUNTIME_DIR", "xdg-run"), ("XDG_DATA_HOME", "xdg-data"),
                     ("XDG_CONFIG_HOME", "xdg-config"), ("XDG_STATE_HOME", "xdg-state")):
        path = tmp_path / sub
        path.mkdir(mode=0o700)
        monkeypatch.setenv(var, str(path))


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Backend-neutral tests marked ``@pytest.mark.anyio`` run on both backends."""
    return str(request.param)


@pytest.fixture
def wizd(tmp_path: Path) -> Iterator[Wizd]:
    """A started wizd subprocess (trio backend) on a private socket and database."""
    daemon = Wizd(tmp_path / "wizd")
    try:
        yield daemon.start()
    finally:
        daemon.close()


@pytest.fixture
def wizd_factory(tmp_path: Path) -> Iterator[type[Wizd]]:
    """Build wizd processes (not started) under tmp_path; all are killed at the end."""
    made: list[Wizd] = []

    def make(name: str = "wizd", **kwargs: object) -> Wizd:
        w = Wizd(tmp_path / name, **kwargs)  # type: ignore[arg-type]
        made.append(w)
        return w

    try:
        yield make  # type: ignore[misc]
    finally:
        for w in made:
            w.close()

