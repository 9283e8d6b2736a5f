"""A real Runtime over a real SQLite file, as wizd builds it, with the
scheduler app.py gives it (not started: these tests move jobs themselves)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.runtime import started_runtime
from wizd.app import JOB_TYPES
from wizd.jobs.scheduler import Scheduler
from wizd.services.runtime import Runtime


@pytest.fixture
async def rt(tmp_path: Path, anyio_backend: str) -> AsyncIterator[Runtime]:
    async with started_runtime(tmp_path, anyio_backend) as runtime:
        runtime.scheduler = Scheduler(runtime, JOB_TYPES)
        yield runtime
