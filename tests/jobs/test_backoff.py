"""Backoff decisions: pure functions, no clock."""

from __future__ import annotations

import random

import pytest

from wizd.errors import (
    Conflict,
    ProviderAuthError,
    ProviderBadRequest,
    ProviderError,
    ProviderProtocolError,
    ProviderRateLimited,
    ProviderTimeout,
    StorageUnavailable,
)
from wizd.jobs.backoff import Policy, is_retryable, retry_delay, window

# Pure functions: once is enough (tests/jobs/conftest.py runs the others on both engines).
pytestmark = pytest.mark.sqlite_only("no database")

POLICY = Policy(base=1.0, cap=60.0)


def test_window_doubles_up_to_the_cap() -> None:
    assert [window(n, POLICY) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert window(10_000, POLICY) == 60  # no overflow however many attempts


@pytest.mark.parametrize(("exc", "retryable"), [
    (ProviderError("500", status=500), True),
    (ProviderTimeout("slow"), True),
    (ProviderProtocolError("garbled"), True),
    (ProviderRateLimited("429", status=429), True),
    (ProviderAuthError("401", status=401), False),
    (ProviderAuthError("403", status=403), False),
    (ProviderBadRequest("unknown model", status=404), False),
    (Conflict("conversation archived"), False),
    (OSError("database is locked"), True),
    (StorageUnavailable("disk full"), True),  # space may be freed before the next attempt
])
def test_what_is_worth_another_attempt(exc: Exception, retryable: bool) -> None:
    assert is_retryable(exc) is retryable


def test_full_jitter_stays_inside_the_window_and_follows_the_seed() -> None:
    exc = ProviderError("down")
    delays = [retry_delay(exc, attempts=3, max_attempts=9, policy=POLICY, rng=random.Random(7))
              for _ in range(3)]
    assert delays[0] == delays[1] == delays[2]  # same seed, same delay
    rng = random.Random(1)
    spread = [retry_delay(exc, attempts=3, max_attempts=9, policy=POLICY, rng=rng)
              for _ in range(500)]
    assert all(d is not None and 0 <= d <= 4 for d in spread)
    assert max(d for d in spread if d is not None) > 3.5  # the whole window is used
    assert min(d for d in spread if d is not None) < 0.5


def test_retry_after_wins_over_the_computed_delay() -> None:
    exc = ProviderRateLimited("slow down", status=429, retry_after=90)
    assert retry_delay(exc, attempts=1, max_attempts=3, policy=POLICY,
                       rng=random.Random(0)) == 90


def test_an_absurd_retry_after_is_capped() -> None:
    """A provider's Retry-After of 1e17 s would overflow the job's run_at and keep the
    agent busy for ever; it is honoured up to MAX_RETRY_AFTER."""
    from wizd.jobs.backoff import MAX_RETRY_AFTER

    exc = ProviderRateLimited("slow down", status=429, retry_after=1e17)
    assert retry_delay(exc, attempts=1, max_attempts=3, policy=POLICY,
                       rng=random.Random(0)) == MAX_RETRY_AFTER


def test_no_delay_when_attempts_are_used_up_or_the_error_is_final() -> None:
    rng = random.Random(0)
    assert retry_delay(ProviderError("x"), attempts=3, max_attempts=3, policy=POLICY,
                       rng=rng) is None
    assert retry_delay(ProviderAuthError("x", status=401), attempts=1, max_attempts=3,
                       policy=POLICY, rng=rng) is None
