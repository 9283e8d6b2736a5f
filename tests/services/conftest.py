"""A real Runtime over a real database (SQLite and PostgreSQL), built in
process, for service tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.engines import runtime_on
from wizd.services.runtime import Runtime


@pytest.fixture
async def rt(tmp_path: Path, anyio_backend: str, engine: str) -> AsyncIterator[Runtime]:
    """A started runtime as ``wizd`` builds it: local user and built-in provider
    exist; on each engine."""
    async with runtime_on(engine, tmp_path, anyio_backend) as runtime:
        yield runtime
