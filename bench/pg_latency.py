"""Reply latency on PostgreSQL: ``message.send`` to the reply's
``message.created``, wizd on PostgreSQL against wizd on SQLite, same run.

    .venv/bin/python bench/pg_latency.py [--messages 300] [--runs 3]
        [--settings default|tests] [--backend trio|asyncio]

The measurement is ``reply_latency.py``'s (a real ``wizd``, ``python -m
wizd``, its offline provider, one agent in one DM, one subscribed connection
sending one message at a time; client figure: wall clock from writing the
request to reading the reply's ``message.created``; daemon figure: the
trigger's ``created_at`` to its job's ``finished_on``, whole milliseconds).
Each run measures wizd on a new database of a private PostgreSQL server
(``pg_queue.PgServer``: PostgreSQL's default durability, or the test
suite's with ``--settings tests``), then wizd on a new SQLite file (its
default ``synchronous=NORMAL``, WAL) as the baseline.

Each run prints p50 and p99 of both; the table shows the median of the runs.
Target (issue 13): PostgreSQL client p50 under 10 ms.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pg_queue import SETTINGS, pg_server  # noqa: E402
from reply_latency import one_run, percentile  # noqa: E402

TARGET_P50_MS = 10.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--settings", default="default", choices=sorted(SETTINGS))
    parser.add_argument("--backend", default="trio", choices=["trio", "asyncio"])
    args = parser.parse_args()
    # (engine, figure) -> (p50s, p99s), one of each per run
    figures: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp, pg_server(args.settings) as server:
        for run in range(args.runs):
            url = server.create()
            try:
                pg = one_run(Path(tmp) / f"pg-{run}", args.messages, args.backend, db=url)
            finally:
                server.drop(url)
            lite = one_run(Path(tmp) / f"sqlite-{run}", args.messages, args.backend)
            line = [f"run {run + 1}:"]
            for engine, (client, daemon) in (("postgresql", pg), ("sqlite", lite)):
                for name, samples in (("client", client), ("daemon", daemon)):
                    p50s, p99s = figures.setdefault((engine, name), ([], []))
                    p50s.append(statistics.median(samples))
                    p99s.append(percentile(samples, 0.99))
                line.append(f"{engine} client p50 {figures[(engine, 'client')][0][-1]:6.2f} "
                            f"p99 {figures[(engine, 'client')][1][-1]:6.2f} ms")
            print("   ".join(line), flush=True)
    print(f"\nsend -> reply, offline provider, {args.messages} messages one at a time, "
          f"wizd on {args.backend}, PostgreSQL {args.settings} settings vs SQLite "
          f"(synchronous=NORMAL); median of {args.runs} runs")
    print(f"{'':<12}{'figure':<8}{'p50 ms':>9}{'p99 ms':>9}")
    for (engine, name), (p50s, p99s) in figures.items():
        print(f"{engine:<12}{name:<8}{statistics.median(p50s):>9.2f}"
              f"{statistics.median(p99s):>9.2f}")
    p50 = statistics.median(figures[("postgresql", "client")][0])
    baseline = statistics.median(figures[("sqlite", "client")][0])
    print(f"PostgreSQL / SQLite client p50: {p50 / baseline:.2f}x; target p50 < "
          f"{TARGET_P50_MS:g} ms: {'met' if p50 < TARGET_P50_MS else 'not met'}")


if __name__ == "__main__":
    main()
