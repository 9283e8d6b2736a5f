"""The events tests that start a wizd run it on both engines: on PostgreSQL
with ``--db`` naming a database of the run's server (tests/support/postgres.py)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import postgres
from tests.support.daemon import Wizd


@pytest.fixture
def wizd_factory(tmp_path: Path, engine: str) -> Iterator[Any]:
    """As tests/conftest.py's, each wizd on ``engine`` (its own database)."""
    made: list[Wizd] = []
    with contextlib.ExitStack() as databases:
        def make(name: str = "wizd", **kwargs: Any) -> Wizd:
            if engine == "postgresql":
                url = databases.enter_context(postgres.database())
                kwargs["extra_args"] = ["--db", url, *kwargs.get("extra_args", [])]
            w = Wizd(tmp_path / name, **kwargs)
            made.append(w)
            return w

        try:
            yield make
        finally:
            for w in made:
                w.close()


@pytest.fixture
def wizd(wizd_factory: Any) -> Wizd:
    """A started wizd subprocess (trio backend) on ``engine``."""
    daemon: Wizd = wizd_factory().start()
    return daemon
