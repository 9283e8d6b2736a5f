"""A real PostgreSQL server for the tests: one per test run, a database per test.

The server is Debian's PostgreSQL (``/usr/lib/postgresql/<version>/bin``, or
``pg_ctl`` on PATH), initdb'ed into a private temporary folder, listening on
a Unix socket only (no TCP), with fsync off (a test's data need not survive
a power cut). It is shared by the xdist workers of one run: the first worker
that needs it starts it under a file lock (initdb costs about two seconds of
one core: once per run, not once per worker), each worker registers itself,
and the last one out stops it. Each test gets a database of its own, made
from ``wiz_template`` (migrated once per server) with ``CREATE DATABASE ...
TEMPLATE``; after the test it is emptied (every table, identities restarted:
as new) and kept for the worker's next test, since a copy of a database
costs a hundred times as much as emptying a small one. Tests that need a
database from nothing (migrations) get a new, empty one, dropped after.

PostgreSQL refuses to run as root: when the tests run as root (CI images
do), initdb and the server run as the ``postgres`` user (or ``nobody``)
through ``runuser``; the tests connect through the socket as the database
user ``wiz`` (trust authentication: the socket's folder is private to the
test run).

Missing binaries skip the tests that need a server, with the reason; with
``WIZ_TESTS_REQUIRE_PG=1`` (.ci/run sets it) they fail instead.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from wizd.store import postgres
from wizd.store.migrations import LATEST

USER = "wiz"
TEMPLATE = "wiz_template"
REQUIRE = "WIZ_TESTS_REQUIRE_PG"


def bin_dir() -> Path | None:
    """The folder of initdb and pg_ctl, or None when PostgreSQL is not installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


def require() -> None:
    """Skip the calling test when PostgreSQL is missing (fail under REQUIRE)."""
    if bin_dir() is None:
        reason = "PostgreSQL binaries (initdb, pg_ctl) not found; apt-get install postgresql"
        if os.environ.get(REQUIRE) == "1":
            pytest.fail(f"{reason} ({REQUIRE}=1: CI must run the PostgreSQL tests)")
        pytest.skip(reason)


def _run_as() -> list[str]:
    """The command prefix that runs initdb and the server as a non-root user."""
    if os.geteuid() != 0:
        return []
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return ["runuser", "-u", name, "--"]
    raise RuntimeError("running as root and no postgres or nobody user to run PostgreSQL as")


def _owner() -> tuple[int, int] | None:
    prefix = _run_as()
    if not prefix:
        return None
    entry = pwd.getpwnam(prefix[2])
    return entry.pw_uid, entry.pw_gid


class Server:
    """The run's server: its socket folder, and databases on it."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.data = base / "data"

    def url(self, name: str) -> str:
        return f"postgresql:///{name}?host={self.base}&user={USER}"

    def connect(self, name: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.url(name), autocommit=True)

    def alive(self) -> bool:
        """Whether the server runs (pg_ctl's own answer: a connection could fail
        for other reasons, too many clients or still starting, and a server
        judged dead is stopped and its folder removed under the other workers)."""
        bins = bin_dir()
        assert bins is not None
        if not (self.data / "postmaster.pid").exists():
            return False
        done = subprocess.run([*_run_as(), str(bins / "pg_ctl"), "-D", str(self.data), "status"],
                              check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return done.returncode == 0

    def start(self) -> None:
        bins = bin_dir()
        assert bins is not None
        owner = _owner()
        self.base.mkdir(mode=0o700, exist_ok=True)
        if owner is not None:
            os.chown(self.base, *owner)
        prefix = _run_as()
        if not self.data.exists():
            subprocess.run([*prefix, str(bins / "initdb"), "-D", str(self.data), "-U", USER,
                            "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.start_again()
        with self.connect() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE}")
            conn.execute(f"CREATE DATABASE {TEMPLATE}")
        postgres.migrate(self.url(TEMPLATE), latest=LATEST)
        with self.connect() as conn:
            conn.execute(f"ALTER DATABASE {TEMPLATE} IS_TEMPLATE true")

    def start_again(self) -> None:
        """Start the server on its data (after ``stop(keep=True)``)."""
        bins = bin_dir()
        assert bins is not None
        prefix = _run_as()
        options = (f"-k {self.base} -c listen_addresses= -c fsync=off"
                   " -c synchronous_commit=off -c full_page_writes=off -c max_connections=300")
        subprocess.run([*prefix, str(bins / "pg_ctl"), "-D", str(self.data), "-w", "-s",
                        "-o", options, "-l", str(self.base / "log"), "start"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def stop(self, *, keep: bool = False) -> None:
        """Stop the server (at once: its data may be thrown away), and remove its
        folder unless ``keep`` (a test that starts it again)."""
        bins = bin_dir()
        assert bins is not None
        # immediate: no checkpoint for data thrown away; fast (a clean shutdown)
        # keeps every commit for a start again, even with synchronous_commit off.
        subprocess.run([*_run_as(), str(bins / "pg_ctl"), "-D", str(self.data), "-s",
                        "-m", "fast" if keep else "immediate", "stop"], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if not keep:
            shutil.rmtree(self.base, ignore_errors=True)

    def create(self, *, migrated: bool = True) -> str:
        """A new database (migrated to the latest schema, or empty); its URL."""
        name = "t_" + uuid.uuid4().hex[:16]
        with self.connect() as conn:
            conn.execute(f"CREATE DATABASE {name} TEMPLATE "
                         f"{TEMPLATE if migrated else 'template0'}")
        return self.url(name)

    def drop(self, url: str) -> None:
        name = url.split("///", 1)[1].split("?", 1)[0]
        with self.connect() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


_server: Server | None = None


@contextlib.contextmanager
def private_server(base: Path) -> Iterator[Server]:
    """A server of the test's own in ``base`` (for tests that stop it)."""
    require()
    found = Server(base)
    found.start()
    try:
        yield found
    finally:
        found.stop()


def _base() -> Path:
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID") or f"pid{os.getpid()}"
    return Path(tempfile.gettempdir()) / f"wiz-pg-{os.getuid()}-{run[:16]}"


@contextlib.contextmanager
def _locked(base: Path) -> Iterator[None]:
    with open(f"{base}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def server() -> Server:
    """The run's server, started if no worker has yet (skips or fails the test
    when PostgreSQL is missing; see ``require``)."""
    global _server
    require()
    if _server is None:
        base = _base()
        _sweep(base)
        found = Server(base)
        with _locked(base):
            if not found.alive():
                found.stop()  # what a crashed run left
                found.start()
            users = base.parent / f"{base.name}.users"
            users.mkdir(exist_ok=True)
            (users / str(os.getpid())).touch()
        atexit.register(_leave, found, users)
        _server = found
    return _server


def _sweep(ours: Path) -> None:
    """Stop the servers of earlier runs that ended without stopping theirs (a
    killed pytest): no process of theirs is alive, and none holds their lock."""
    for users in ours.parent.glob(f"wiz-pg-{os.getuid()}-*.users"):
        base = users.with_name(users.name.removesuffix(".users"))
        if base == ours:
            continue
        with open(f"{base}.lock", "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            if not any(u.name.isdigit() and _pid_alive(int(u.name)) for u in users.iterdir()):
                Server(base).stop()
                shutil.rmtree(users, ignore_errors=True)
                with contextlib.suppress(OSError):
                    os.unlink(f"{base}.lock")


def _leave(found: Server, users: Path) -> None:
    """This process is done with the server: the last one stops it."""
    with _locked(found.base):
        (users / str(os.getpid())).unlink(missing_ok=True)
        for user in users.iterdir():
            if user.name.isdigit() and _pid_alive(int(user.name)):
                return
        found.stop()
        shutil.rmtree(users, ignore_errors=True)
    with contextlib.suppress(OSError):
        os.unlink(f"{found.base}.lock")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# This worker's emptied databases, ready for the next test.
_idle: list[str] = []


@contextlib.contextmanager
def database(*, migrated: bool = True) -> Iterator[str]:
    """A database on the run's server for the block, as new (migrated to the
    latest schema, or empty); its URL."""
    srv = server()
    if not migrated:
        url = srv.create(migrated=False)
        try:
            yield url
        finally:
            srv.drop(url)
        return
    url = _idle.pop() if _idle else srv.create()
    try:
        yield url
    finally:
        try:
            empty(url)
        except psycopg.Error:
            srv.drop(url)
        else:
            _idle.append(url)


# What ``empty`` runs: the same for every database of the run (one schema).
_emptying: bytes | None = None


def empty(url: str) -> None:
    """Make the migrated database at ``url`` as new: no rows, identities restarted,
    the rows migrations insert put back."""
    global _emptying
    with psycopg.connect(url, autocommit=True) as conn:
        if _emptying is None:
            _emptying = _emptying_script(conn)
        conn.execute(_emptying)


def _emptying_script(conn: psycopg.Connection[tuple[object, ...]]) -> bytes:
    tables = [row[0] for row in conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        " AND tablename != 'schema_version'")]
    identities = conn.execute(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = 'public' AND is_identity = 'YES'").fetchall()
    # replica: foreign keys are not checked, so the tables go in any order.
    script = ["BEGIN", "SET LOCAL session_replication_role = replica"]
    script += [f"DELETE FROM {table}" for table in tables]
    script += [f"ALTER TABLE {table} ALTER COLUMN {column} RESTART"
               for table, column in identities]
    script += ["INSERT INTO search_indexed (id, seq) VALUES (1, 0)", "COMMIT"]
    return "; ".join(script).encode()
