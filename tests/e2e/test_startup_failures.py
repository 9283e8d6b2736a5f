"""A wizd that cannot start because of its environment says so in one line
(what, where, what to do) and exits 3, never with a traceback: a read-only
folder or file, a directory or a file in the way, a damaged database, a full
disk. Real ``wizd`` processes (forks of the fork server, as everywhere:
tests/support/forkserver.py); the failures are made with real mounts (root
ignores permissions), so those cases skip where mounting is not permitted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.daemon import Wizd, run_wizd
from tests.support.tmpfs import fill, read_only_file, remount_read_only, tmpfs

# What `wizd` exits with when its environment (storage) stops it.
CANNOT_START = 3


def start_once(base: Path, db: Path, backend: str = "trio") -> tuple[int, list[str]]:
    """Run wizd until it exits (it is expected to fail); its exit code and stderr lines."""
    env = dict(os.environ, XDG_CONFIG_HOME=str(base / "config"), WIZ_BACKEND=backend)
    code, _, err = run_wizd(["--socket", str(base / "run" / "wizd.sock"), "--db", str(db)], env)
    return code, err.splitlines()


def assert_one_line(code: int, lines: list[str], *expected: str) -> str:
    assert code == CANNOT_START, lines
    assert len(lines) == 1, lines
    [line] = lines
    assert "Traceback" not in line and "crashed" not in line, line
    for part in expected:
        assert part in line, line
    return line


def made(base: Path, backend: str = "trio") -> Wizd:
    """A wizd that ran once (its database exists, with data) and stopped."""
    w = Wizd(base, env={"WIZ_BACKEND": backend})
    try:
        w.start()
        w.call("agent.create", name="ada", role="r", backstory="b", goal="g")
        assert w.stop() == 0
    finally:
        w.close()
    return w


@pytest.mark.parametrize("existing", [False, True], ids=["empty", "existing"])
def test_a_read_only_folder(tmp_path: Path, existing: bool) -> None:
    base = tmp_path / "w"
    with tmpfs(base / "data") as data:
        if existing:
            made(base)
        remount_read_only(data)
        code, lines = start_once(base, data / "wiz.db")
    assert_one_line(code, lines, "read-only", str(data / "wiz.db.lock"), "writable")


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
def test_a_read_only_database_file(tmp_path: Path, backend: str) -> None:
    base = tmp_path / "w"
    w = made(base, backend)
    with read_only_file(w.db):
        code, lines = start_once(base, w.db, backend)
    assert_one_line(code, lines, "read-only", str(w.db), "writable")


def test_a_directory_at_the_database_path(tmp_path: Path) -> None:
    db = tmp_path / "data" / "wiz.db"
    db.mkdir(parents=True)
    code, lines = start_once(tmp_path, db)
    assert_one_line(code, lines, "a directory is in the way", str(db), "move it away")


def test_a_file_where_the_database_folder_should_be(tmp_path: Path) -> None:
    (tmp_path / "data").write_text("not a folder")
    code, lines = start_once(tmp_path, tmp_path / "data" / "wiz.db")
    assert_one_line(code, lines, "a file is in the way", str(tmp_path / "data"), "move it away")


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
def test_a_damaged_database(tmp_path: Path, backend: str) -> None:
    """A valid header, then a page of garbage: found at start, not at the first use."""
    base = tmp_path / "w"
    w = made(base, backend)
    with w.db.open("r+b") as f:
        f.seek(4096)  # page 2 onwards: the first tables' pages
        f.write(os.urandom(4096 * 3))
    code, lines = start_once(base, w.db, backend)
    assert_one_line(code, lines, str(w.db), "damaged", ".recover")


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
@pytest.mark.parametrize("existing", [False, True], ids=["new", "existing"])
def test_a_full_disk(tmp_path: Path, backend: str, existing: bool) -> None:
    base = tmp_path / "w"
    with tmpfs(base / "data", "2m") as data:
        if existing:
            made(base, backend)
        fill(data)
        code, lines = start_once(base, data / "wiz.db", backend)
    assert_one_line(code, lines, "disk full", str(data), "free some space")
