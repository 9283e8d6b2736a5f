"""The job types a scheduler runs: job name -> processor and outcome handler.

app.py builds the registry of the types wizd has and hands it to the
scheduler; the queue finds a job's handler through it (``rt.scheduler``).
The jobs package itself knows no job type.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .outcome import GENERIC, OutcomeHandler

if TYPE_CHECKING:
    from .queue import JobContext

# A processor's result is the job's result (any JSON value, stored as the
# job's ``result``), or an object its job type's outcome handler turns into one.
Processor = Callable[["JobContext"], Awaitable[object]]


@dataclass(frozen=True)
class JobType:
    """One kind of job: what runs it, and what its outcome means."""

    name: str
    process: Processor
    outcome: OutcomeHandler = GENERIC


class JobTypes:
    """A registry of job types by name. A job whose name it does not know fails
    at once (no processor) and is finished by the generic handler."""

    def __init__(self, types: Iterable[JobType] = ()) -> None:
        self._types = {t.name: t for t in types}

    @classmethod
    def of(cls, processors: dict[str, Processor]) -> JobTypes:
        """Job types with the generic outcome handler, from name -> processor."""
        return cls(JobType(name, process) for name, process in processors.items())

    def processor(self, name: str) -> Processor | None:
        found = self._types.get(name)
        return None if found is None else found.process

    def outcome(self, name: str) -> OutcomeHandler:
        """The outcome handler of job ``name`` (the generic one if it has none)."""
        found = self._types.get(name)
        return GENERIC if found is None else found.outcome
