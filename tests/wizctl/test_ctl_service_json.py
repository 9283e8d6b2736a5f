"""``wizctl service install|uninstall --json``: what was done, as one JSON object."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from wizctl import service
from wizctl.main import main

Capsys = pytest.CaptureFixture[str]


@pytest.fixture
def no_systemctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH without systemctl; returns an executable to pass as --wizd."""
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    wizd = tmp_path / "bin" / "wizd"
    wizd.parent.mkdir()
    wizd.write_text("#!/bin/sh\n")
    wizd.chmod(0o755)
    return wizd


def test_install_and_uninstall_as_json(no_systemctl: Path, capsys: Capsys) -> None:
    units = Path(os.environ["XDG_CONFIG_HOME"]) / "systemd" / "user"
    assert main(["service", "install", "--wizd", str(no_systemctl), "--json"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert json.loads(out) == {
        "units": [{"path": str(units / name), "action": "wrote"} for name in service.UNITS],
        "exec_start": str(no_systemctl), "reloaded": False,
        "not_reloaded_because": "systemctl is not installed", "systemctl": [],
    }
    assert main(["service", "uninstall", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == {
        "units": [{"path": str(units / name), "action": "removed"} for name in service.UNITS],
        "systemctl": []}


def test_install_without_wizd_fails_as_json(no_systemctl: Path, tmp_path: Path,
                                            capsys: Capsys) -> None:
    missing = tmp_path / "nowhere" / "wizd"
    assert main(["service", "install", "--wizd", str(missing), "--json"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert json.loads(err) == {"code": -33000, "data": None, "message": (
        f"cannot find an executable wizd ({missing}); pass --wizd PATH")}
