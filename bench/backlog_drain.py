"""Backlog drain: the time per job to drain N queued replies of ONE
(conversation, agent) group, for several N; the cost per job must not grow
with N.

    .venv/bin/python bench/backlog_drain.py [--sizes 100,1000,10000] [--runs 5]
        [--large-runs 1] [--backend trio|asyncio]

A real ``wizd`` on a temporary socket and database, its built-in ``offline``
provider (no network: the time is wizd's own), one agent in one DM. The queue
is paused, N messages are sent (N reply jobs, all of the group
``dm:agent``, which run one at a time, in order), then the queue is resumed
and the clock runs until the last reply job has finished. Everything on the
path runs for real: the claim (with its look for the next due time),
loading the agent and the history, the streamed reply, and storing it with
the job's outcome and the agent's status.

Figures per run, from the daemon's own clock and from /proc:

- wall: the first job's ``processed_on`` to the last job's ``finished_on``,
  divided by N (whole milliseconds, so only N >= 100 says much);
- cpu: wizd's CPU time (user + system) from the resume to the end, divided
  by N: less disturbed by other programs on the machine than wall time.

Sizes up to 1,000 are run ``--runs`` times, larger ones ``--large-runs``
times; the summary shows the median of each and its ratio to the smallest
size (target: within 1.2x).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.daemon import Conn, Wizd  # noqa: E402

PIPELINE = 100  # message.send requests in flight while queueing
TARGET = 1.2


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def queue_messages(conn: Conn, dm: str, count: int) -> list[str]:
    """Send ``count`` messages to ``dm``, ``PIPELINE`` at a time; the reply jobs' ids."""
    jobs: list[str] = []
    sent = 0
    while sent < count:
        batch = range(sent, min(sent + PIPELINE, count))
        for i in batch:
            conn.send({"jsonrpc": "2.0", "id": f"m{i}", "method": "message.send",
                       "params": {"conversation_id": dm, "content": f"message {i}"}})
        for i in batch:
            reply = conn.response(f"m{i}")
            if "error" in reply:
                raise RuntimeError(reply["error"])
            jobs.extend(reply["result"]["jobs"])
        sent = batch.stop
    return jobs


def one_run(base: Path, count: int, backend: str) -> tuple[float, float]:
    """Milliseconds per job (wall, from the daemon's clock; wizd's CPU) to drain
    ``count`` jobs of one group."""
    w = Wizd(base, extra_args=["--log-level", "warning", "--backend", backend])
    w.start(fork=False)  # as users run it: python -m wizd
    try:
        assert w.proc is not None
        agent = w.call("agent.create", name="ada", role="Researcher", backstory="b", goal="g")
        dm = w.call("dm.create", participants=[agent["id"]])["id"]
        with w.connect() as conn:
            conn.call("queue.pause")
            jobs = queue_messages(conn, dm, count)
            assert len(jobs) == count, len(jobs)
            cpu0 = cpu_seconds(w.proc.pid)
            conn.call("queue.resume")
            while conn.call("job.get", id=jobs[-1])["status"] != "completed":
                time.sleep(0.02)
            cpu = cpu_seconds(w.proc.pid) - cpu0
            first = conn.call("job.get", id=jobs[0])
            last = conn.call("job.get", id=jobs[-1])
            counts = conn.call("daemon.status")["queue"]
            assert counts["completed"] == count, counts
        wall_ms = last["finished_on"] - first["processed_on"]
        return wall_ms / count, cpu * 1000 / count
    finally:
        w.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,10000")
    parser.add_argument("--runs", type=int, default=5, help="runs of each size up to 1,000")
    parser.add_argument("--large-runs", type=int, default=1, help="runs of larger sizes")
    parser.add_argument("--backend", default="trio", choices=["trio", "asyncio"])
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    results: dict[int, list[tuple[float, float]]] = {size: [] for size in sizes}
    with tempfile.TemporaryDirectory() as tmp:
        # Round by round, every size in each, so a slower spell of the machine
        # weighs on all sizes alike.
        for run in range(max(args.runs, args.large_runs)):
            for size in sizes:
                if run >= (args.runs if size <= 1000 else args.large_runs):
                    continue
                wall, cpu = one_run(Path(tmp) / f"{size}-{run}", size, args.backend)
                results[size].append((wall, cpu))
                print(f"{size:>7} jobs, run {run + 1}: {wall:6.2f} ms/job wall, "
                      f"{cpu:6.2f} ms/job wizd cpu", flush=True)

    print(f"\nOne group's backlog of N reply jobs (offline provider), wizd on {args.backend};"
          " medians per job")
    print(f"{'N':>7}{'runs':>6}{'wall ms':>10}{'ratio':>8}{'cpu ms':>10}{'ratio':>8}")
    base_wall = base_cpu = 0.0
    worst_wall = worst_cpu = 0.0
    for size in sizes:
        wall = statistics.median(w for w, _ in results[size])
        cpu = statistics.median(c for _, c in results[size])
        if not base_wall:
            base_wall, base_cpu = wall, cpu
        worst_wall = max(worst_wall, wall / base_wall)
        worst_cpu = max(worst_cpu, cpu / base_cpu)
        print(f"{size:>7}{len(results[size]):>6}{wall:>10.2f}{wall / base_wall:>7.2f}x"
              f"{cpu:>10.2f}{cpu / base_cpu:>7.2f}x")
    for name, worst in (("wall", worst_wall), ("cpu", worst_cpu)):
        verdict = "met" if worst <= TARGET else "not met"
        print(f"target: every size within {TARGET}x of N={sizes[0]} per job ({name}): "
              f"{worst:.2f}x, {verdict}")


if __name__ == "__main__":
    main()
