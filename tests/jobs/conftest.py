"""Every harness test runs on both engines (tests/jobs/helpers.py ``ENGINE``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.jobs import helpers


@pytest.fixture(autouse=True)
def harness_engine(engine: str) -> Iterator[None]:
    helpers.ENGINE = engine
    try:
        yield
    finally:
        helpers.finish_test()
