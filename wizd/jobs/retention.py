"""Retention: finished jobs do not pile up for ever.

Completed and failed jobs are pruned as BullMQ's removeOnComplete and
removeOnFail ``{age, count}`` do: a finished job goes once it is older than
``keep_finished_days`` or is not among the newest ``keep_finished_jobs``
(0 turns either limit off). ``run`` prunes every ``prune_interval`` seconds,
in batches of ``BATCH`` rows, one write each, with a pause between two, so
that other writes commit between batches and the writer is never held for long.

A pruned job leaves a tombstone (its name, status, failure_reason and
times): ``job.get`` answers NotFound with ``pruned: true`` and those, so a
stored reply's job (an error reply's reason, say) is still explained.
"""

from __future__ import annotations

import logging
from functools import partial

import anyio

from ..errors import StorageUnavailable
from ..services.runtime import Runtime
from ..store import jobs as store

log = logging.getLogger(__name__)

BATCH = 100  # rows per write: a few milliseconds of the writer, even on a cold cache
# Between two batches the writer is left to others for this long (seconds):
# a write queued behind a batch waits for that one batch, never for a train
# of them. Pruning still goes at thousands of rows a second.
PAUSE = 0.005
_DAY_MS = 86_400_000


async def prune(rt: Runtime) -> int:
    """Prune what the retention settings say is due, batch by batch, until
    nothing is; returns how many jobs were removed. Raises StorageUnavailable."""
    config = rt.config
    removed = 0
    while True:
        n = await rt.db.write(partial(
            store.prune_finished, now_ms=rt.clock.now_ms(), keep=config.keep_finished_jobs,
            keep_ms=round(config.keep_finished_days * _DAY_MS), batch=BATCH))
        if n == 0:
            return removed
        removed += n
        await anyio.sleep(PAUSE)


async def run(rt: Runtime, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
              ) -> None:
    """Prune every ``prune_interval`` seconds (the first time one interval after
    the start, which stays quick); a storage failure waits for the next round."""
    task_status.started()
    while True:
        await anyio.sleep(rt.config.prune_interval)
        try:
            removed = await prune(rt)
        except StorageUnavailable as exc:
            log.warning("pruning finished jobs failed, trying again later: %s", exc)
            continue
        if removed:
            log.info("pruned %d finished jobs", removed)
