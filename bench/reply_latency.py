"""Reply latency: from ``message.send`` to the reply's ``message.created``.

    .venv/bin/python bench/reply_latency.py [--messages 300] [--runs 3] [--backend trio|asyncio]

A real ``wizd`` on a temporary socket and database, its built-in ``offline``
provider (no network: the time is wizd's own), one agent in one DM. One
connection subscribes to the DM and sends one message at a time; the clock
runs from writing the ``message.send`` request to reading the
``message.created`` notification of the agent's reply. Everything in between
is the real path: the send transaction (message + job), waking the scheduler,
the claim, loading the agent and the history, the provider's streamed reply
(published as deltas), and the completion transaction.

Two figures per reply:

- client: what a subscriber sees, wall clock in this process (the event
  feed holds no event back: see ``wizd.events.feed``).
- daemon: the trigger's ``created_at`` to its job's ``finished_on`` (the
  reply's commit), from the daemon's own clock: whole milliseconds.

Each run prints the median and the 99th percentile; the summary shows the
median of the runs for each.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.daemon import Wizd  # noqa: E402

WARMUP = 20


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def one_run(base: Path, messages: int, backend: str,
            db: str | None = None) -> tuple[list[float], list[float]]:
    """Milliseconds per reply: as the client saw it, and inside the daemon
    (on a SQLite file in ``base``, or on the database ``db`` names)."""
    where = ["--db", db] if db else []
    w = Wizd(base, extra_args=["--log-level", "warning", "--backend", backend, *where])
    w.start(fork=False)  # as users run it: python -m wizd
    try:
        agent = w.call("agent.create", name="ada", role="Researcher", backstory="b", goal="g")
        dm = w.call("dm.create", participants=[agent["id"]])["id"]
        samples, jobs = [], []
        with w.connect() as conn:
            conn.call("events.subscribe", conversation_id=dm)
            for i in range(WARMUP + messages):
                start = time.perf_counter()
                conn.send({"jsonrpc": "2.0", "id": i, "method": "message.send",
                           "params": {"conversation_id": dm, "content": f"message {i}"}})
                while True:
                    msg: dict[str, Any] = conn.read()
                    if "error" in msg:
                        raise RuntimeError(msg["error"])
                    if msg.get("id") == i and i >= WARMUP:
                        jobs.extend(msg["result"]["jobs"])
                    if (msg.get("method") == "message.created"
                            and msg["params"]["message"]["author_id"] == agent["user_id"]):
                        break
                if i >= WARMUP:
                    samples.append((time.perf_counter() - start) * 1000)
            inside = []
            for job_id in jobs:
                job = conn.call("job.get", id=job_id)
                inside.append(float(job["finished_on"] - job["created_at"]))
        return samples, inside
    finally:
        w.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backend", default="trio", choices=["trio", "asyncio"])
    args = parser.parse_args()
    figures: dict[str, tuple[list[float], list[float]]] = {"client": ([], []), "daemon": ([], [])}
    with tempfile.TemporaryDirectory() as tmp:
        for run in range(args.runs):
            client, daemon = one_run(Path(tmp) / f"run-{run}", args.messages, args.backend)
            line = [f"run {run + 1}:"]
            for name, samples in (("client", client), ("daemon", daemon)):
                medians, p99s = figures[name]
                medians.append(statistics.median(samples))
                p99s.append(percentile(samples, 0.99))
                line.append(f"{name} median {medians[-1]:6.2f} ms p99 {p99s[-1]:6.2f} ms")
            print("   ".join(line), flush=True)
    print(f"\nsend -> reply, offline provider, {args.messages} messages one at a time, "
          f"wizd on {args.backend}, median of {args.runs} runs")
    for name, (medians, p99s) in figures.items():
        print(f"{name:<7} median {statistics.median(medians):6.2f} ms   "
              f"p99 {statistics.median(p99s):6.2f} ms")


if __name__ == "__main__":
    main()
