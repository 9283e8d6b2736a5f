"""A real Runtime over a real SQLite file, built in process, for service tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.runtime import started_runtime
from wizd.services.runtime import Runtime


@pytest.fixture
async def rt(tmp_path: Path, anyio_backend: str) -> AsyncIterator[Runtime]:
    """A started runtime as ``wizd`` builds it: local user and built-in provider exist."""
    async with started_runtime(tmp_path, anyio_backend) as runtime:
        yield runtime
