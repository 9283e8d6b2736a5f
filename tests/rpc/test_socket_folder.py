"""The socket's folder: a hostile local user cannot get between wizctl and wizd.

Whoever can write to the folder holding the socket can move wizd's socket away
and bind an impostor; a symbolic link could point anywhere. wizd refuses such
a folder at start, and wizctl refuses to connect through one.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.daemon import Wizd
from wizd import config
from wizd.errors import UnsafePath
from wizd.private_dir import ensure_private_dir

NOBODY = 65534
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder to another uid needs root")


def test_a_missing_folder_is_made_private(tmp_path: Path) -> None:
    folder = tmp_path / "run" / "wiz"
    ensure_private_dir(folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert folder.stat().st_uid == os.geteuid()


def test_an_existing_folder_of_ours_is_used_and_left_as_it_is(tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    folder.chmod(0o755)
    ensure_private_dir(folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o755


def test_a_folder_others_can_write_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "open"
    folder.mkdir()
    folder.chmod(0o777)
    with pytest.raises(UnsafePath, match="can be written by other users"):
        ensure_private_dir(folder)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o777  # not "fixed": refused


def test_a_symlinked_folder_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    target.chmod(0o750)
    link = tmp_path / "wiz"
    link.symlink_to(target)
    with pytest.raises(UnsafePath, match="symbolic link"):
        ensure_private_dir(link)
    assert stat.S_IMODE(target.stat().st_mode) == 0o750


@as_root
def test_a_folder_of_another_user_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "wiz-taken"
    folder.mkdir(mode=0o700)
    os.chown(folder, NOBODY, NOBODY)
    with pytest.raises(UnsafePath, match=f"belongs to uid {NOBODY}"):
        ensure_private_dir(folder)


def test_without_xdg_runtime_dir_the_folder_is_per_user_under_tmp(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    assert config.runtime_dir() == Path(f"/tmp/wiz-{os.getuid()}")


def _hostile_folder(base: Path) -> Path:
    """A folder as another local user would prepare it: theirs (where we can give it
    away, as root), and open to everyone."""
    folder = base / "hijack"
    folder.mkdir()
    folder.chmod(0o777)
    if os.geteuid() == 0:
        os.chown(folder, NOBODY, NOBODY)
    return folder


def _start_refused(base: Path, socket_path: Path) -> str:
    """Start a real wizd on ``socket_path``; it must exit non-zero. Its log."""
    daemon = Wizd(base)
    daemon.socket = socket_path
    daemon.start(wait=False)
    assert daemon.proc is not None
    code = daemon.proc.wait(timeout=30)
    daemon.proc = None
    assert code != 0
    return daemon.log_text()


def test_wizd_refuses_to_start_in_a_hostile_folder(tmp_path: Path) -> None:
    folder = _hostile_folder(tmp_path)
    log = _start_refused(tmp_path / "wizd", folder / "wizd.sock")
    assert f"refusing the socket folder {folder}" in log
    assert "Traceback" not in log and len(log.strip().splitlines()) == 1
    assert list(folder.iterdir()) == []  # neither a socket nor a lock file went in
    assert stat.S_IMODE(folder.stat().st_mode) == 0o777


def test_wizd_refuses_a_symlinked_socket_folder(tmp_path: Path) -> None:
    target = tmp_path / "target"
    target.mkdir(mode=0o755)
    link = tmp_path / "run-link"
    link.symlink_to(target)
    assert "is a symbolic link" in _start_refused(tmp_path / "wizd", link / "wizd.sock")
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    assert list(target.iterdir()) == []


def test_wizctl_will_not_talk_to_an_impostor_in_a_hostile_folder(tmp_path: Path) -> None:
    folder = _hostile_folder(tmp_path)
    path = folder / "wizd.sock"
    impostor = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    impostor.bind(str(path))
    impostor.listen(1)
    impostor.setblocking(False)
    try:
        env = dict(os.environ, WIZ_SOCKET=str(path))
        done = subprocess.run([sys.executable, "-m", "wizctl", "status"], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode != 0
        assert f"refusing to connect: the socket folder {folder}" in done.stderr
        assert "Traceback" not in done.stderr
        with pytest.raises(BlockingIOError):
            impostor.accept()  # wizctl never connected
    finally:
        impostor.close()
