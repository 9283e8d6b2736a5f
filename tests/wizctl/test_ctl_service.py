"""`wizctl service install|uninstall` into a private XDG_CONFIG_HOME."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.ctlrun import WIZCTL, run
from wizctl import service

WIZD = Path(sys.executable).parent / "wizd"


def wizctl(*args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if path is not None:
        env["PATH"] = path
    return run([WIZCTL, *args], capture_output=True, text=True, env=env, timeout=60)


def units_dir() -> Path:
    return Path(os.environ["XDG_CONFIG_HOME"]) / "systemd" / "user"


def fake_systemctl(tmp_path: Path) -> Path:
    """A ``systemctl`` that answers like a user manager and records its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "systemctl"
    script.write_text(f'#!/bin/sh\necho "$*" >> {tmp_path / "calls"}\n')
    script.chmod(0o755)
    return bin_dir


def test_install_without_systemctl_writes_the_units_and_says_so(tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    done = wizctl("service", "install", path=str(empty))
    assert done.returncode == 0, done.stderr
    assert "not reloading systemd: systemctl is not installed" in done.stdout
    assert "systemctl --user enable --now wizd.socket" in done.stdout
    assert "systemctl --user enable --now wizd.service" in done.stdout
    for name in service.UNITS:
        assert (units_dir() / name).read_text() == service.unit_text(name, WIZD)
    assert f"ExecStart={WIZD}" in (units_dir() / "wizd.service").read_text()
    again = wizctl("service", "install", path=str(empty))
    assert f"unchanged {units_dir() / 'wizd.service'}" in again.stdout


@pytest.mark.skipif(not Path("/usr/bin/systemctl").exists(), reason="needs a real systemctl")
def test_install_with_systemctl_but_no_user_manager_says_so() -> None:
    # XDG_RUNTIME_DIR is a private empty folder: no user bus answers there.
    done = wizctl("service", "install", path=f"/usr/bin:{os.environ['PATH']}")
    assert done.returncode == 0, done.stderr
    assert "not reloading systemd: no systemd user manager answers" in done.stdout
    assert (units_dir() / "wizd.socket").exists()


def test_install_and_uninstall_drive_the_user_manager(tmp_path: Path) -> None:
    path = f"{fake_systemctl(tmp_path)}:{os.environ['PATH']}"
    assert wizctl("service", "install", path=path).returncode == 0
    done = wizctl("service", "uninstall", path=path)
    assert done.returncode == 0, done.stderr
    assert not any((units_dir() / name).exists() for name in service.UNITS)
    assert (tmp_path / "calls").read_text().splitlines() == [
        "--user show-environment", "--user daemon-reload",
        "--user show-environment", "--user disable --now wizd.service wizd.socket",
        "--user daemon-reload",
    ]
    assert "removed" in done.stdout


def test_wizctl_service_imports_nothing_of_the_daemon() -> None:
    code = ("import sys, wizctl.main, wizctl.service; "
            "heavy = {'wizd', 'anyio', 'trio', 'sqlalchemy', 'pydantic', 'openai'}; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == "[]"
