"""wizd beside the floor (bench/floor.py), in the same run, with the same client:
issue 10's per-call and fan-out targets, reply latency and idle RSS.

    .venv/bin/python bench/vs_floor.py [--runs 3] [--calls 3000] [--messages 1000]
                                       [--subscribers 50] [--replies 200] [--backend trio]

Per run, a fresh wizd (on ``--backend``) and a fresh floor, each on its own
socket and database, and for each of them:

- status: ``daemon.status`` one call at a time on one connection, calls/s;
- send: ``message.send`` to a channel nobody answers in (no agent) and
  nobody follows, one at a time, calls/s;
- fan-out: ``--subscribers`` connections (one receiver process, the code of
  bench/fanout.py) follow the conversation; ``message.send`` one after
  another (the next once the previous is answered); deliveries/s = messages
  x subscribers / (last receipt - first send).

Then wizd's RSS once idle, and reply latency (bench/reply_latency.py: send ->
the reply's ``message.created`` at a subscriber, offline provider). The
summary prints the medians of the runs, wiz and the floor side by side, and
each target as met or not.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

import fanout  # noqa: E402
import reply_latency  # noqa: E402

from tests.support.daemon import Wizd  # noqa: E402

WARMUP = 100


class Client(fanout.Client):
    """fanout's one-call-at-a-time client (the same for wizd and the floor), timed."""

    def rate(self, calls: int, method: str, **params: Any) -> float:
        """Calls per second, one at a time (after a warm-up)."""
        for _ in range(WARMUP):
            self.call(method, **params)
        start = time.perf_counter()
        for _ in range(calls):
            self.call(method, **params)
        return calls / (time.perf_counter() - start)


def measure(path: Path, channel: Any, args: argparse.Namespace) -> dict[str, float]:
    """The three figures against one server; ``channel(name)`` makes a conversation."""
    client = Client(path)
    try:
        status = client.rate(args.calls, "daemon.status")
        send = client.rate(args.calls, "message.send", conversation_id=channel("alone"),
                           content="x" * fanout.CONTENT_SIZE)
        if args.per_call:
            return {"status": status, "send": send, "fanout": float("nan")}
        followed = channel("fanout")
        receivers = fanout.Receivers(path, args.subscribers, args.messages, followed)
        first = time.monotonic()
        for i in range(args.messages):
            client.call("message.send", conversation_id=followed, content=fanout.content(i))
        res = receivers.result()
    finally:
        client.close()
    if res["errors"]:
        raise RuntimeError(f"receivers: {res['errors']}")
    return {"status": status, "send": send,
            "fanout": res["deliveries"] / (res["last"] - first)}


def run_wiz(base: Path, args: argparse.Namespace) -> dict[str, float]:
    w = Wizd(base, extra_args=["--log-level", "warning", "--backend", args.backend])
    w.start(fork=False)  # as users run it: python -m wizd
    try:
        project = w.call("project.create", name="bench")

        def channel(name: str) -> str:
            return str(w.call("channel.create", project_id=project["id"], name=name)["id"])

        figures = measure(w.socket, channel, args)
        assert w.proc is not None
        if args.per_call:
            figures["rss"] = float("nan")
            return figures
        time.sleep(1.0)  # idle
        figures["rss"] = fanout._rss_mib(w.proc.pid)
        return figures
    finally:
        w.stop()


def run_floor(base: Path, args: argparse.Namespace) -> dict[str, float]:
    base.mkdir(parents=True)
    sock = base / "floor.sock"
    proc = subprocess.Popen([sys.executable, str(BENCH / "floor.py"), str(sock),
                             str(base / "floor.db")], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline().strip()
        assert ready == "ready", ready
        names = iter(range(1_000_000))
        figures = measure(sock, lambda name: f"{name}-{next(names)}", args)
        figures["rss"] = fanout._rss_mib(proc.pid)
        return figures
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--subscribers", type=int, default=50)
    parser.add_argument("--replies", type=int, default=200)
    parser.add_argument("--backend", default="trio", choices=("trio", "asyncio"))
    parser.add_argument("--per-call", action="store_true",
                        help="status and send only (no fan-out, RSS or reply latency),"
                             " wiz and the floor in alternating order")
    args = parser.parse_args()
    wiz: list[dict[str, float]] = []
    floor: list[dict[str, float]] = []
    latency: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="wiz-vs-floor-") as tmp:
        for run in range(args.runs):
            base = Path(tmp) / f"run-{run}"
            if args.per_call and run % 2:  # alternate: neither always runs first
                wiz.append(run_wiz(base / "wiz", args))
                floor.append(run_floor(base / "floor", args))
            else:
                floor.append(run_floor(base / "floor", args))
                wiz.append(run_wiz(base / "wiz", args))
            w, f = wiz[-1], floor[-1]
            if args.per_call:
                print(f"run {run + 1}: status {w['status']:,.0f} vs {f['status']:,.0f} calls/s"
                      f" ({w['status'] / f['status']:.0%}); send {w['send']:,.0f} vs"
                      f" {f['send']:,.0f} calls/s ({w['send'] / f['send']:.0%})", flush=True)
                continue
            client, _daemon = reply_latency.one_run(base / "reply", args.replies, args.backend)
            latency.append((statistics.median(client),
                            reply_latency.percentile(client, 0.99)))
            print(f"run {run + 1}: status {w['status']:,.0f} vs {f['status']:,.0f} calls/s;"
                  f" send {w['send']:,.0f} vs {f['send']:,.0f} calls/s;"
                  f" fan-out {w['fanout']:,.0f} vs {f['fanout']:,.0f} deliveries/s;"
                  f" reply p50 {latency[-1][0]:.2f} ms p99 {latency[-1][1]:.2f} ms;"
                  f" wizd idle RSS {w['rss']:.0f} MiB", flush=True)

    def med(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT MET"

    if args.per_call:
        print(f"\nwizd on {args.backend}, {args.runs} runs: the median of the per-run ratios")
        for key in ("status", "send"):
            ratios = sorted(wr[key] / fr[key] for wr, fr in zip(wiz, floor, strict=True))
            print(f"{key}: wiz {med(wiz, key):,.0f} / floor {med(floor, key):,.0f} calls/s;"
                  f" ratio {statistics.median(ratios):.0%} ({ratios[0]:.0%}-{ratios[-1]:.0%})"
                  f" >= 50%: {verdict(statistics.median(ratios) >= 0.5)}")
        return

    p50 = statistics.median(x[0] for x in latency)
    p99 = statistics.median(x[1] for x in latency)
    print(f"\nwizd on {args.backend}, medians of {args.runs} runs")
    print("| figure | wiz | floor | ratio | target | result |")
    print("| --- | ---: | ---: | ---: | --- | --- |")
    for key, what, unit in (("status", "daemon.status, sequential", "calls/s"),
                            ("send", "message.send, no agent, sequential", "calls/s"),
                            ("fanout", f"fan-out to {args.subscribers} subscribers",
                             "deliveries/s")):
        wm, fm = med(wiz, key), med(floor, key)
        print(f"| {what} ({unit}) | {wm:,.0f} | {fm:,.0f} | {wm / fm:.0%} | >= 50% |"
              f" {verdict(wm >= 0.5 * fm)} |")
    print(f"| send -> reply (offline), p50 / p99 | {p50:.2f} / {p99:.2f} ms | - | - |"
          f" < 5 / < 20 ms | {verdict(p50 < 5 and p99 < 20)} |")
    rss = med(wiz, "rss")
    print(f"| idle wizd RSS after the benchmarks | {rss:.0f} MiB | {med(floor, 'rss'):.0f} MiB"
          f" | - | < 80 MiB | {verdict(rss < 80)} |")


if __name__ == "__main__":
    main()
