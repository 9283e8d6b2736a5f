"""Figures that calls read often, kept in memory: the queue's job counts by
status and the newest message seq. ``daemon.status`` and the STATUS= report
to systemd read these, never a table, so their cost does not grow with the
history.

Counted in one place: temporary triggers on the write connection report
every job that enters, changes status or leaves the jobs table, and every
message stored, whatever statement did it (a transition, a pause, a
pruning); ``apply`` takes a committed write's reports (see
``store.database.Watch``). ``load`` reads the stored figures once, in a write
transaction, so that it falls in commit order between the writes before it
and the writes after it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio
from sqlalchemy import Connection

from ..store import tallies as store
from ..store.database import Database, Watch
from ..store.tallies import TRIGGERS

# Shown even at 0, in this order; other statuses (paused) only while some job has them.
SHOWN = ("waiting", "active", "delayed", "failed", "completed")


class Tallies:
    """Queue counts by status and the last message seq, as of the last commit."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = dict.fromkeys(SHOWN, 0)
        self.last_seq = 0
        self.watch = Watch(TRIGGERS, self.apply)
        # The counts follow the commits (``start`` has run on a database
        # opened with ``watch``): what readers may rely on.
        self.live = False
        # Set (and dropped) once a message past last_seq commits, if anyone waits.
        self._new_message: anyio.Event | None = None

    async def wait_for_message(self, after_seq: int) -> None:
        """Return once a message with a seq past ``after_seq`` has committed."""
        while self.last_seq <= after_seq:
            if self._new_message is None:
                self._new_message = anyio.Event()
            await self._new_message.wait()

    def queue(self) -> dict[str, int]:
        """Job counts by status: every SHOWN status, and any other one some job has."""
        return {status: n for status, n in self._counts.items() if n or status in SHOWN}

    @staticmethod
    def read(conn: Connection) -> tuple[dict[str, int], int]:
        """The stored figures (a full count: once, at start)."""
        return store.figures(conn)

    async def start(self, db: Database) -> None:
        """Read the stored figures; ``db`` was opened with ``self.watch``."""
        await db.write(self.read, after_commit=self.load)
        self.live = db.watch is self.watch

    def load(self, figures: tuple[Mapping[str, int], int]) -> None:
        """Replace the figures with ``read``'s (from that write's after_commit)."""
        counts, last_seq = figures
        self._counts = dict.fromkeys(SHOWN, 0)
        self._counts.update(counts)
        self.last_seq = max(self.last_seq, last_seq)

    def apply(self, changes: list[tuple[Any, ...]]) -> None:
        """A committed write's reports: ('job', old, new) and ('message', seq)."""
        counts = self._counts
        for change in changes:
            if change[0] == "job":
                _, old, new = change
                if old is not None:
                    counts[old] = counts.get(old, 0) - 1
                if new is not None:
                    counts[new] = counts.get(new, 0) + 1
            elif change[0] == "message" and change[1] > self.last_seq:
                self.last_seq = change[1]
                if self._new_message is not None:
                    self._new_message.set()
                    self._new_message = None
