"""The full-text index follows the messages, after their commits.

Storing a message does not touch the index: FTS5 writes a new segment per
transaction, more than half of the pages a small message's commit would
write (bench/README.md). Instead ``SearchIndex.run`` indexes what was stored,
in seq order, a batch per write, ``DELAY`` after a message arrives, so that
the messages of that while share one segment; and a search first indexes
everything stored before it (``catch_up``), so it finds every message
committed before the search began.

How far the index has got is stored with it (``search_indexed``), in the
same transaction as each batch: after a kill -9 it goes on from there, and
a message is never indexed twice nor skipped.
"""

from __future__ import annotations

import logging
from functools import partial

import anyio

from ..errors import StorageUnavailable
from ..store import search as store
from ..store.database import Database
from .tallies import Tallies

log = logging.getLogger(__name__)

# Messages per write: a few milliseconds of the writer at most, so that a
# backlog (after a restart) never holds other writes for long.
BATCH = 200
# From the first unindexed message to its batch (seconds): what arrives
# meanwhile is indexed in the same write. Searches do not wait for it.
DELAY = 0.05
# After the storage refused a batch (a full disk), the next try (seconds).
RETRY = 1.0


class SearchIndex:
    """Keeps ``messages_fts`` up with ``messages``; ``indexed`` is the seq it has reached."""

    def __init__(self) -> None:
        self.indexed = 0

    async def catch_up(self, db: Database) -> None:
        """Index every message committed so far. Raises StorageUnavailable."""
        while True:
            done = await db.write(partial(store.index_next, limit=BATCH),
                                  after_commit=self._advance)
            if done.added < BATCH:
                return

    def _advance(self, done: store.Indexed) -> None:
        self.indexed = max(self.indexed, done.upto)

    async def run(self, db: Database, tallies: Tallies, *,
                  task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Index new messages as they are committed (``db`` opened with
        ``tallies.watch``), and at start what a stopped wizd left unindexed."""
        task_status.started()
        covered = 0  # every message up to this seq was committed before a catch-up
        while True:
            await tallies.wait_for_message(after_seq=max(self.indexed, covered))
            await anyio.sleep(DELAY)
            newest = tallies.last_seq
            try:
                await self.catch_up(db)
            except StorageUnavailable:
                # The database logs the storage's trouble once; try again later.
                await anyio.sleep(RETRY)
            else:
                # Even if the newest were deleted before being indexed (the index
                # then stops short of them), there is nothing to wait for below it.
                covered = newest
