"""The unit files: one copy of each, and systemd accepts them as user units."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from wizctl import service

ROOT = Path(__file__).resolve().parents[2]
ANALYZE = shutil.which("systemd-analyze")
WIZD = Path(sys.executable).parent / "wizd"


@pytest.mark.parametrize("name", service.UNITS)
def test_the_repository_copy_is_the_shipped_unit(name: str) -> None:
    assert (ROOT / "systemd" / name).read_text() == service.shipped_unit(name)


def test_install_points_execstart_at_wizd_and_changes_nothing_else() -> None:
    shipped = service.shipped_unit("wizd.service").splitlines()
    installed = service.unit_text("wizd.service", Path("/opt/my wiz/bin/wizd")).splitlines()
    changed = [(a, b) for a, b in zip(shipped, installed, strict=True) if a != b]
    assert changed == [(service.SHIPPED_EXEC, 'ExecStart="/opt/my wiz/bin/wizd"')]
    assert service.exec_path(Path("/x/100%/$HOME/wizd")) == "/x/100%%/$$HOME/wizd"


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed (it comes with "
                                            "systemd); the units cannot be verified here")
def test_systemd_analyze_verifies_the_installed_units_without_a_warning(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert ANALYZE is not None and WIZD.exists()
    for name in service.UNITS:
        (tmp_path / name).write_text(service.unit_text(name, WIZD))
    # --user: as the per-user manager would load them (%h, %t); it needs XDG_RUNTIME_DIR.
    # A short private one: verify also loads the machine's own user units, whose
    # socket paths under %t must fit a socket address (108 bytes), which one
    # under tmp_path need not.
    runtime = tempfile.mkdtemp(prefix="xdg-")
    monkeypatch.setenv("XDG_RUNTIME_DIR", runtime)
    units = [str(tmp_path / name) for name in service.UNITS]
    try:
        done = subprocess.run([ANALYZE, "--user", "verify", *units], capture_output=True,
                              text=True, timeout=60, check=False)
    finally:
        shutil.rmtree(runtime)
    # verify exits 0 on an unknown or misspelt option ("..., ignoring"): no output is the bar.
    assert (done.returncode, done.stdout + done.stderr) == (0, "")


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
def test_a_misspelt_option_would_be_caught(tmp_path: Path) -> None:
    text = service.unit_text("wizd.service", WIZD).replace("NoNewPrivileges=", "NoNewPrivilegez=")
    (tmp_path / "wizd.service").write_text(text)
    done = subprocess.run([ANALYZE, "--user", "verify", str(tmp_path / "wizd.service")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert "Unknown key 'NoNewPrivilegez'" in done.stderr
