"""What every service function needs: the database, the event hub, the
settings, the queue clock and a way to wake the scheduler.

Services are plain async functions taking a Runtime first; RPC methods and
job processors are thin adapters over them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import anyio

from ..config import Config
from ..events.hub import Event, Hub
from ..llm.clients import ClientCache
from ..store.database import Database
from .tallies import Tallies


def new_id() -> str:
    return str(uuid.uuid4())


class QueueClock:
    """Milliseconds since the epoch, advancing with the event loop's clock.

    Anchored to the wall clock once, then driven by ``anyio.current_time()``:
    immune to wall-clock jumps, and under trio's MockClock it advances with
    virtual time, so delays and backoff are testable without real sleeping.
    """

    def __init__(self) -> None:
        self._wall0 = time.time()
        self._loop0 = anyio.current_time()

    def now_ms(self) -> int:
        return int((self._wall0 + anyio.current_time() - self._loop0) * 1000)

    def loop_time(self, epoch_ms: int) -> float:
        """The event-loop time at which ``epoch_ms`` falls."""
        return self._loop0 + epoch_ms / 1000 - self._wall0


@dataclass
class Runtime:
    config: Config
    db: Database
    hub: Hub
    clock: QueueClock
    started_at: float = field(default_factory=anyio.current_time)
    # Set by the scheduler when it starts; waking it is a no-op before that.
    wake_scheduler: Callable[[], None] = lambda: None
    # Set by the scheduler while it runs: cancel a running job and wait until
    # its cancellation is recorded.
    cancel_running: Callable[[str], Awaitable[None]] | None = None
    local_user_id: str = ""
    # HTTP clients of the LLM providers, kept alive between replies.
    llm_clients: ClientCache = field(default_factory=ClientCache)
    # Queue counts and the last seq, maintained at commit (when ``db`` was
    # opened with ``tallies.watch`` and ``tallies.start`` has run).
    tallies: Tallies = field(default_factory=Tallies)

    def publish(self, method: str, params: dict, *, conversation_id: str | None = None) -> None:
        """Publish a non-message event (job.updated, agent.status, message.delta)."""
        self.hub.publish(Event(method, params, conversation_id))
