"""Queue throughput on PostgreSQL: no-op jobs per second, enqueue to complete,
wizd's queue against procrastinate's, on the same server, in the same run.

    .venv/bin/python bench/pg_queue.py [--jobs 3000] [--runs 3] [--workers 8]
        [--producers 1,8] [--settings default|tests] [--backend trio|asyncio]

Needs Debian's PostgreSQL (``/usr/lib/postgresql/<version>/bin``) and
procrastinate 3.x in the venv (``.venv/bin/pip install 'procrastinate>=3,<4'``:
a bench-only package, not one of wiz's dependencies).

One private server for the whole run (``PgServer``: initdb'ed in a temporary
folder, Unix socket only), with PostgreSQL's default durability
(``--settings default``: fsync on, ``synchronous_commit`` on), or the test
suite's (``tests``: fsync, ``synchronous_commit`` and ``full_page_writes``
off); both sides run on the same server, each run on a database of its own.

Both sides: ``producers`` producers adding jobs one transaction each (as
``message.send`` does) while the consumers run; ``workers`` jobs at a time;
the clock runs from the first enqueue to the last job's completion
committed.

- wizd: the real Scheduler (wake on enqueue, claim with ``FOR UPDATE SKIP
  LOCKED``, run, complete with a result row) over the real Database runner
  on a ``postgresql://`` URL, in process (as ``queue_throughput.py`` does on
  SQLite); producers are tasks on its event loop.
- procrastinate: its ``PsycopgConnector`` (a psycopg pool with room for every
  producer and worker), one worker of ``concurrency=workers`` woken by
  LISTEN/NOTIFY (its polling fallback at its default, 5 s: polling every
  millisecond measured slower), jobs kept after they succeed
  (``delete_jobs="never"``, as wizd keeps its finished jobs); producers are
  asyncio tasks calling ``defer_async``. Its last completion is seen by
  polling the jobs table every millisecond once the last task has run.

Each run prints both rates and their ratio; the table shows the medians of
the rates, their ratio, and the median of the runs' ratios (the machine's
load changes between runs; within a run the two sides follow each other).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import queue_throughput  # noqa: E402

from tests.support import postgres as pgsupport  # noqa: E402

# Server options on top of the socket folder, per --settings. "default" is
# PostgreSQL's own durability; "tests" is tests/support/postgres.py's.
SETTINGS = {
    "default": "",
    "tests": " -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
}


class PgServer(pgsupport.Server):
    """tests/support/postgres.py's private server, with the bench's settings."""

    def __init__(self, base: Path, settings: str) -> None:
        super().__init__(base)
        self.settings = settings

    def start_again(self) -> None:
        import subprocess

        bins = pgsupport.bin_dir()
        assert bins is not None
        options = (f"-k {self.base} -c listen_addresses= -c max_connections=300"
                   + SETTINGS[self.settings])
        subprocess.run([*pgsupport._run_as(), str(bins / "pg_ctl"), "-D", str(self.data), "-w",
                        "-s", "-o", options, "-l", str(self.base / "log"), "start"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


@contextlib.contextmanager
def pg_server(settings: str = "default") -> Iterator[PgServer]:
    """A private PostgreSQL server for the block (stopped and removed after)."""
    if pgsupport.bin_dir() is None:
        raise SystemExit("PostgreSQL not found (/usr/lib/postgresql/*/bin): "
                         "apt-get install postgresql")
    # SIGTERM (timeout, kill) ends the bench through the finally below: the
    # server does not outlive it.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="wiz-bench-pg-") as tmp:
        os.chmod(tmp, 0o711)  # the server may run as another user (postgres, under root)
        server = PgServer(Path(tmp) / "pg", settings)
        server.start()
        try:
            yield server
        finally:
            server.stop()


def run_wizd(url: str, jobs: int, workers: int, producers: int, backend: str) -> float:
    """Jobs per second through wizd's queue on the PostgreSQL database at ``url``
    (queue_throughput.py's harness; ``synchronous`` is SQLite's only)."""
    return queue_throughput.run_wizd(url, jobs, workers, producers, "NORMAL", backend)


def run_procrastinate(url: str, jobs: int, workers: int, producers: int) -> float:
    """Jobs per second through procrastinate on the (empty) database at ``url``."""
    import procrastinate
    import psycopg

    async def main() -> float:
        conninfo = url.replace("postgresql:///", "dbname=", 1).replace("?", " ").replace("&", " ")
        app = procrastinate.App(connector=procrastinate.PsycopgConnector(
            conninfo=conninfo, min_size=1, max_size=producers + workers + 4))
        ran = [0]
        all_ran = asyncio.Event()

        @app.task(name="noop")
        async def noop() -> None:
            ran[0] += 1
            if ran[0] == jobs:
                all_ran.set()

        async with app.open_async():
            await app.schema_manager.apply_schema_async()
            worker = asyncio.create_task(app.run_worker_async(
                concurrency=workers, wait=True, listen_notify=True, delete_jobs="never",
                install_signal_handlers=False))
            # The worker is listening before the clock starts (a wake-up lost
            # before its LISTEN would cost it a polling interval).
            await asyncio.sleep(0.5)
            start = time.perf_counter()

            async def produce(count: int) -> None:
                for _ in range(count):
                    await noop.defer_async()

            tasks = [asyncio.create_task(produce(share))
                     for share in queue_throughput.shares(jobs, producers)]
            await all_ran.wait()
            async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
                while True:
                    cur = await conn.execute("SELECT count(*) FROM procrastinate_jobs"
                                             " WHERE status = 'succeeded'")
                    row = await cur.fetchone()
                    assert row is not None
                    if row[0] == jobs:
                        break
                    await asyncio.sleep(0.001)
            elapsed = time.perf_counter() - start
            await asyncio.gather(*tasks)
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        return jobs / elapsed

    return asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--producers", default="1,8",
                        help="comma-separated producer counts to measure")
    parser.add_argument("--settings", default="default", choices=sorted(SETTINGS))
    parser.add_argument("--backend", default="trio", choices=["trio", "asyncio"])
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # procrastinate logs every job
    counts = [int(p) for p in args.producers.split(",")]

    rates: dict[tuple[str, int], list[float]] = {}
    with pg_server(args.settings) as server:
        for run in range(args.runs):
            for producers in counts:
                url = server.create()
                try:
                    w = run_wizd(url, args.jobs, args.workers, producers, args.backend)
                finally:
                    server.drop(url)
                url = server.create(migrated=False)
                try:
                    p = run_procrastinate(url, args.jobs, args.workers, producers)
                finally:
                    server.drop(url)
                rates.setdefault(("wizd", producers), []).append(w)
                rates.setdefault(("procrastinate", producers), []).append(p)
                print(f"run {run + 1}, {producers} producer(s): wizd {w:7.0f} jobs/s   "
                      f"procrastinate {p:7.0f} jobs/s   ratio {w / p:.2f}", flush=True)
    print(f"\n{args.jobs} no-op jobs, {args.workers} at a time, PostgreSQL ({args.settings} "
          f"settings), wizd on {args.backend}; median jobs/s of {args.runs} runs")
    print(f"{'producers':>10}{'wizd':>10}{'procr.':>10}{'wizd/procr.':>13}"
          f"{'median of runs':>16}")
    for producers in counts:
        ws, ps = rates[("wizd", producers)], rates[("procrastinate", producers)]
        w, p = statistics.median(ws), statistics.median(ps)
        by_run = statistics.median(a / b for a, b in zip(ws, ps, strict=True))
        print(f"{producers:>10}{w:>10.0f}{p:>10.0f}{w / p:>12.2f}x{by_run:>15.2f}x")


if __name__ == "__main__":
    main()
