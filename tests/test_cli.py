"""``wizd --help`` looks like ``wizctl --help``: plain text, no boxes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

WIZD = str(Path(sys.executable).with_name("wizd"))
BOX = set("─│╭╮╰╯┌┐└┘├┤┬┴┼━┃")


@pytest.mark.parametrize("args", [["--help"], ["config", "--help"]])
def test_wizd_help_is_plain(args: list[str]) -> None:
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "100"}
    env.pop("NO_COLOR", None)
    proc = subprocess.run([WIZD, *args], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert not BOX & set(proc.stdout), proc.stdout
    assert "\x1b[" not in proc.stdout
    assert "<bool>" not in proc.stdout and "<path>" not in proc.stdout  # metavars as wizctl's
    assert proc.stdout.startswith("Usage: wizd")
