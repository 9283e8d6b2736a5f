"""The protocol's own example works as written: one line through socat."""

import json
import shutil
import subprocess

import pytest

from tests.support.daemon import Wizd


def test_status_over_real_socket(wizd: Wizd) -> None:
    status = wizd.call("daemon.status")
    assert status["socket"] == str(wizd.socket)
    assert set(status["queue"]) >= {"waiting", "active", "delayed", "failed", "completed"}


@pytest.mark.skipif(shutil.which("socat") is None, reason="socat is not installed (Debian: socat)")
def test_the_socat_one_liner(wizd: Wizd) -> None:
    line = '{"jsonrpc":"2.0","id":1,"method":"daemon.status"}'
    out = subprocess.run(
        f"printf '%s\\n' '{line}' | socat - UNIX-CONNECT:{wizd.socket}",
        shell=True, capture_output=True, text=True, timeout=30, check=True,
    )
    response = json.loads(out.stdout)
    assert response["id"] == 1 and response["result"]["pid"] == wizd.proc.pid  # type: ignore[union-attr]
