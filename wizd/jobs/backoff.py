"""When a failed job runs again, if at all: pure functions, no I/O.

Exponential backoff with *full jitter* (AWS Architecture Blog, "Exponential
Backoff And Jitter"): attempt n waits a uniform random time in
``[0, min(cap, base * 2**(n-1))]``. Spreading retries over the whole window
keeps many jobs that failed together (a provider outage) from retrying
together. A provider's ``Retry-After`` wins over the computed delay: it is the
only party that knows when it will take requests again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..errors import McpServerError, ProviderError, StorageUnavailable, WizError


@dataclass(frozen=True)
class Policy:
    base: float = 1.0  # seconds; the window of the first retry
    cap: float = 60.0  # seconds; no computed window grows beyond this


def window(attempt: int, policy: Policy) -> float:
    """The upper bound (seconds) of the random wait after failed attempt ``attempt`` (1-based)."""
    exponent = min(max(attempt, 1) - 1, 62)  # 2**62 already dwarfs any cap
    return float(min(policy.cap, policy.base * 2**exponent))


def is_retryable(exc: BaseException) -> bool:
    """Whether another attempt could succeed.

    Provider errors say so themselves (401/403/400/unknown model do not); a
    database that cannot store or read now (disk full) and an MCP server that
    failed (a reply resuming a step needs it) may work again later; other
    WizErrors (e.g. the conversation is gone) are final; anything else is
    unexpected and treated as transient (a locked database, a dropped socket).
    """
    if isinstance(exc, ProviderError):
        return bool(exc.retryable)
    if isinstance(exc, (StorageUnavailable, McpServerError)):
        return True
    return not isinstance(exc, WizError)


# The longest wait a provider's Retry-After can impose on one retry, in seconds.
MAX_RETRY_AFTER = 600.0


def retry_delay(
    exc: BaseException,
    *,
    attempts: int,
    max_attempts: int,
    policy: Policy,
    rng: random.Random,
) -> float | None:
    """Seconds until the next attempt, or None if the job has failed for good.

    ``attempts`` counts the attempts made so far, the failed one included.
    """
    if not is_retryable(exc) or attempts >= max_attempts:
        return None
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        # Honoured, within reason: a provider's "Retry-After: 1e17" must not park
        # the job (and keep its agent busy) for ever, nor overflow a timestamp.
        return min(max(float(retry_after), 0.0), MAX_RETRY_AFTER)
    return rng.uniform(0.0, window(attempts, policy))
