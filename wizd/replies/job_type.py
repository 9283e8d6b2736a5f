"""The reply job type as app.py registers it with the scheduler."""

from __future__ import annotations

from ..jobs.registry import JobType
from .job import NAME
from .outcome import ReplyOutcome
from .processor import process

REPLY = JobType(NAME, process, ReplyOutcome())
