"""Fixtures of the wizctl tests: ``fake``, a scripted wizd on a real Unix socket."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.wizctl.fakewizd import FakeWizd


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeWizd]:
    """A started FakeWizd at ``tmp_path / "wizd.sock"``, stopped after the test."""
    server = FakeWizd(tmp_path / "wizd.sock").start()
    try:
        yield server
    finally:
        server.stop()
