"""Queue throughput: no-op jobs per second, enqueue to complete, wizd's queue
against huey's SqliteHuey, in the same run and at the same SQLite durability.

    .venv/bin/python bench/queue_throughput.py [--jobs 3000] [--runs 3]
        [--workers 8] [--producers 1,8] [--synchronous NORMAL|FULL] [--backend trio|asyncio]

Both sides: one SQLite file in WAL mode with the same ``synchronous``;
``producers`` producers (tasks for wizd, threads for huey) adding jobs one
transaction each (as ``message.send`` does) while the consumers run; ``workers``
jobs at a time; the clock runs from the first enqueue to the last job finished.
With one producer the figure is the latency of one enqueue commit (each waits
for the last); with several, as many clients sending at once would, wizd's
writes commit one after another on its event loop.

- wizd: the real Scheduler (wake on enqueue, claim, run, complete with a
  result row) over the real Database runner, in process.
- huey: SqliteHuey with a thread consumer of ``workers`` workers, polling
  every millisecond when idle (its default is 100 ms, backing off to 10 s),
  periodic tasks off. Its ``synchronous`` is set to match (huey's ``fsync``
  flag knows only FULL and OFF).

Each run prints both rates; the table shows the median of the runs.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def run_wizd(path: Path | str, jobs: int, workers: int, producers: int, synchronous: str,
             backend: str) -> float:
    """Jobs per second through wizd's queue on the SQLite file ``path`` (or the
    PostgreSQL database a URL names: bench/pg_queue.py)."""
    import anyio
    from sqlalchemy import Connection

    from wizd.config import Config
    from wizd.events.hub import Hub
    from wizd.jobs.queue import JobContext
    from wizd.jobs.registry import JobTypes
    from wizd.jobs.scheduler import Scheduler
    from wizd.services.runtime import QueueClock, Runtime
    from wizd.store import jobs as store
    from wizd.store.database import Database

    async def main() -> float:
        ran = [0]
        all_ran = anyio.Event()

        async def noop(ctx: JobContext) -> None:
            ran[0] += 1
            if ran[0] == jobs:
                all_ran.set()

        config = Config(db=path, concurrency=workers, synchronous=synchronous, backend=backend)
        db = Database(path, synchronous=synchronous)
        await db.open()
        rt = Runtime(config=config, db=db, hub=Hub(), clock=QueueClock())
        scheduler = rt.scheduler = Scheduler(rt, JobTypes.of({"noop": noop}))
        try:
            async with anyio.create_task_group() as tg:
                await tg.start(scheduler.run)
                start = time.perf_counter()

                async def produce(count: int) -> None:
                    for _ in range(count):
                        now = rt.clock.now_ms()

                        def add(conn: Connection, now: int = now) -> Any:
                            return store.add_job(conn, name="noop", data={}, now_ms=now,
                                                 max_attempts=3)

                        await db.write(add)
                        rt.scheduler.wake()

                for share in shares(jobs, producers):
                    tg.start_soon(produce, share)
                await all_ran.wait()
                # Writes commit in the order they are called, and the last
                # job's completion was called before this write: once it
                # returns, every job is completed in the database.
                await db.write(lambda conn: None)
                elapsed = time.perf_counter() - start
                counts = await db.read(store.count_by_status)
                assert counts["completed"] == jobs, counts
                tg.cancel_scope.cancel()
        finally:
            await db.close()
        return jobs / elapsed

    return anyio.run(main, backend=backend)


def shares(jobs: int, producers: int) -> list[int]:
    return [jobs // producers + (1 if i < jobs % producers else 0) for i in range(producers)]


def run_huey(path: Path, jobs: int, workers: int, producers: int, synchronous: str) -> float:
    """Jobs per second through huey's SqliteHuey."""
    from huey import SqliteHuey
    from huey.storage import SqliteStorage

    class Storage(SqliteStorage):
        def _create_connection(self) -> Any:
            conn = super()._create_connection()
            conn.execute(f"pragma synchronous={synchronous}")
            return conn

    huey = SqliteHuey("bench", filename=str(path), storage_class=Storage)
    finished = threading.Event()
    count = [0]
    lock = threading.Lock()

    @huey.task()
    def noop() -> None:
        with lock:
            count[0] += 1
            if count[0] == jobs:
                finished.set()

    consumer = huey.create_consumer(workers=workers, periodic=False, initial_delay=0.001,
                                    backoff=1.0, max_delay=0.001, check_worker_health=False)
    consumer.start()
    try:
        def produce(count: int) -> None:
            for _ in range(count):
                noop()

        threads = [threading.Thread(target=produce, args=(share,))
                   for share in shares(jobs, producers)]
        start = time.perf_counter()
        for thread in threads:
            thread.start()
        finished.wait()
        elapsed = time.perf_counter() - start
        for thread in threads:
            thread.join()
    finally:
        consumer.stop(graceful=True)
        huey.storage.close()
    return jobs / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--producers", default="1,8",
                        help="comma-separated producer counts to measure")
    parser.add_argument("--synchronous", default="NORMAL", choices=["NORMAL", "FULL"])
    parser.add_argument("--backend", default="trio", choices=["trio", "asyncio"])
    args = parser.parse_args()
    logging.disable(logging.INFO)  # huey logs every task
    counts = [int(p) for p in args.producers.split(",")]

    rates: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            for producers in counts:
                w = run_wizd(Path(tmp) / f"wiz-{run}-{producers}.db", args.jobs, args.workers,
                             producers, args.synchronous, args.backend)
                h = run_huey(Path(tmp) / f"huey-{run}-{producers}.db", args.jobs, args.workers,
                             producers, args.synchronous)
                rates.setdefault(("wizd", producers), []).append(w)
                rates.setdefault(("huey", producers), []).append(h)
                print(f"run {run + 1}, {producers} producer(s): wizd {w:7.0f} jobs/s   "
                      f"huey {h:7.0f} jobs/s   ratio {w / h:.2f}", flush=True)
    print(f"\n{args.jobs} no-op jobs, {args.workers} at a time, WAL + synchronous="
          f"{args.synchronous}, wizd on {args.backend}; median jobs/s of {args.runs} runs")
    print(f"{'producers':>10}{'wizd':>10}{'huey':>10}{'wizd/huey':>11}")
    for producers in counts:
        w = statistics.median(rates[("wizd", producers)])
        h = statistics.median(rates[("huey", producers)])
        print(f"{producers:>10}{w:>10.0f}{h:>10.0f}{w / h:>10.2f}x")


if __name__ == "__main__":
    main()
