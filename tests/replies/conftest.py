"""A real Runtime over a real database (SQLite, PostgreSQL), as wizd builds it, with the
scheduler app.py gives it (not started: these tests move jobs themselves)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.jobs import helpers
from tests.support.engines import runtime_on
from wizd.app import JOB_TYPES
from wizd.jobs.scheduler import Scheduler
from wizd.services.runtime import Runtime


@pytest.fixture
async def rt(tmp_path: Path, anyio_backend: str, engine: str) -> AsyncIterator[Runtime]:
    async with runtime_on(engine, tmp_path, anyio_backend) as runtime:
        runtime.scheduler = Scheduler(runtime, JOB_TYPES)
        yield runtime


@pytest.fixture(autouse=True)
def harness_engine(engine: str) -> Iterator[None]:
    """Tests using the job harness run on both engines too (tests/jobs/helpers.py)."""
    helpers.ENGINE = engine
    try:
        yield
    finally:
        helpers.finish_test()
