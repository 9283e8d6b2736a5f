"""Fixtures for the job tests (``anyio_backend`` comes from tests/conftest.py)."""

from __future__ import annotations

import pytest
import trio.testing


@pytest.fixture
def clock() -> trio.testing.MockClock:
    """Virtual time for ``@pytest.mark.trio`` tests, jumping to the next deadline once
    every task has been idle for 50 ms of real time.

    Not pytest-trio's ``autojump_clock`` (threshold 0): database calls run in
    worker threads, which the autojump cannot see, so with threshold 0 it would
    jump past deadlines (a job's timeout, a retry's due time) while a query runs.
    """
    return trio.testing.MockClock(autojump_threshold=0.05)
