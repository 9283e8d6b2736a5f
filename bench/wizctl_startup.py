"""``wizctl status`` as a whole process beside a stdlib one-call client
(bench/stdlib_status.py), against one real wizd, in the same run: issue 10's
start-up target (median <= 120 ms and <= 5x the stdlib client).

    .venv/bin/python bench/wizctl_startup.py [--runs 21] [--backend trio]

The commands run in turn (A B C A B C ...), after one warm-up each, so a drift
in the machine's speed touches all of them alike. Per run: wall time from
spawn to exit, and the child's CPU time (user + sys). For reference, a
one-call command that goes through typer (``wizctl agent list``) shows what
the fast path avoids.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.daemon import Wizd  # noqa: E402

WIZCTL = str(Path(sys.executable).with_name("wizctl"))
COMMANDS = {
    "stdlib client": [sys.executable, str(ROOT / "bench" / "stdlib_status.py")],
    "wizctl status": [WIZCTL, "status"],
    "wizctl agent list (typer path)": [WIZCTL, "agent", "list"],
}
TARGET_MS = 120.0
TARGET_RATIO = 5.0


def once(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall ms, CPU ms) of one run of ``cmd``; fails if it does not exit 0."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = (time.perf_counter() - start) * 1000
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.decode()}")
    cpu = (after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000
    return wall, cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--backend", default="trio", choices=["trio", "asyncio"])
    opts = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="wiz-startup-") as tmp:
        wizd = Wizd(Path(tmp) / "wizd", extra_args=["--backend", opts.backend]).start(fork=False)
        try:
            env = dict(os.environ, WIZ_SOCKET=str(wizd.socket))
            for cmd in COMMANDS.values():  # warm-up: page cache, .pyc files
                once(cmd, env)
            walls: dict[str, list[float]] = {name: [] for name in COMMANDS}
            cpus: dict[str, list[float]] = {name: [] for name in COMMANDS}
            ratios: list[float] = []
            for _ in range(opts.runs):
                pair = {}
                for name, cmd in COMMANDS.items():
                    wall, cpu = once(cmd, env)
                    walls[name].append(wall)
                    cpus[name].append(cpu)
                    pair[name] = wall
                ratios.append(pair["wizctl status"] / pair["stdlib client"])
        finally:
            wizd.close()
    print(f"{opts.runs} runs each, wizd on {opts.backend}, Python {sys.version.split()[0]}")
    print(f"{'command':32} {'wall ms (min/median/max)':>28} {'cpu ms median':>14}")
    for name in COMMANDS:
        w = walls[name]
        print(f"{name:32} {min(w):8.1f} {statistics.median(w):8.1f} {max(w):8.1f}"
              f" {statistics.median(cpus[name]):14.1f}")
    status_ms = statistics.median(walls["wizctl status"])
    ratio = statistics.median(ratios)
    print(f"wizctl status / stdlib client, run by run: median {ratio:.2f}x "
          f"(min {min(ratios):.2f}, max {max(ratios):.2f})")
    print(f"target: wizctl status <= {TARGET_MS:.0f} ms: {status_ms:.1f} ms, "
          f"{'met' if status_ms <= TARGET_MS else 'NOT met'}")
    print(f"target: <= {TARGET_RATIO:.0f}x the stdlib client: {ratio:.2f}x, "
          f"{'met' if ratio <= TARGET_RATIO else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
