"""Fixtures for the LLM layer's tests.

``anyio_backend`` (trio and asyncio) comes from ``tests/conftest.py``.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest


class DeltaRecorder:
    """An ``on_delta`` callback that remembers every piece it was given."""

    def __init__(self) -> None:
        self.pieces: list[str] = []

    async def __call__(self, piece: str) -> None:
        self.pieces.append(piece)


@pytest.fixture
def deltas() -> DeltaRecorder:
    return DeltaRecorder()


@pytest.fixture(autouse=True)
def collect_garbage() -> Iterator[None]:
    """Collect at teardown, so that an async generator left suspended by this test
    (trio warns about those) fails this test rather than a later one. The young
    generations suffice for that and cost far less than a full collection."""
    yield
    gc.collect(1)
