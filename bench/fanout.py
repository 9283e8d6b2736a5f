"""Fan-out (issue 10): messages sent one after another to the subscribers of a
conversation, wizd beside the floor (bench/floor.py), same client, same run.

    .venv/bin/python bench/fanout.py [--runs 5] [--messages 1000] [--subscribers 50]
                                     [--backend trio]

Per run, a fresh floor and a fresh wizd, each on its own socket and database:

- fan-out: ``--subscribers`` connections, held by one receiver process (the
  same code for both), follow one conversation; one client sends
  ``message.send`` one after another (the next once the previous is answered).
  deliveries/s = messages x subscribers / (last receipt - first send). Also
  the CPU per message (from /proc and rusage) of the server and of the
  receiver process: on two CPUs they compete, so fewer writes (and fewer
  wake-ups of the receivers) is most of what coalescing buys.
- beside a lazy subscriber (wizd only): the same again with one more
  subscriber that never reads (its socket fills, its buffer of 256 events
  overflows, it is dropped with ``events.lagged``): deliveries/s to the others, and wizd's
  RSS before and after (a figure that tests/events/test_slow_subscriber.py
  used to bound with a wall-clock ratio and an RSS limit).

Medians over runs; the ratio is taken run by run (wiz and the floor of one run
share the machine's state), then its median.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
CONTENT_SIZE = 120  # a chat message: the content, padded to this many characters
WARMUP = 100


def content(i: int) -> str:
    text = f"{i} {time.monotonic():.6f} "
    return text + "x" * max(0, CONTENT_SIZE - len(text))


# ---------------------------------------------------------------- the receivers

def _field(line: bytes, key: bytes, end: bytes) -> bytes:
    start = line.index(key) + len(key)
    return line[start:line.index(end, start)]


async def receive(path: str, subscribers: int, messages: int, conversation: str) -> None:
    """Hold the subscriber sockets; print "ready", then one JSON line of figures."""
    latencies: list[float] = []  # send -> receipt, seconds
    last = [0.0]
    counts = [0] * subscribers
    reads = [0]
    errors: list[str] = []

    async def one(k: int, stream: trio.SocketStream) -> None:
        buf = b""
        prev = 0
        sample = k % 10 == 0  # latency from a tenth of the subscribers is plenty
        while counts[k] < messages:
            data = await stream.receive_some(1 << 18)
            if not data:
                errors.append(f"subscriber {k}: end of stream at {counts[k]}")
                return
            reads[0] += 1
            now = time.monotonic()
            buf += data
            *lines, buf = buf.split(b"\n")
            for line in lines:
                if b'"message.created"' not in line:
                    if b'"events.lagged"' in line:
                        errors.append(f"subscriber {k}: lagged")
                    continue
                seq = int(_field(line, b'"seq":', b","))
                if seq <= prev:
                    errors.append(f"subscriber {k}: seq {seq} after {prev}")
                prev = seq
                counts[k] += 1
                if sample:
                    sent = float(_field(line, b'"content":"', b'"').split()[1])
                    latencies.append(now - sent)
        last[0] = max(last[0], time.monotonic())

    streams = []
    for _ in range(subscribers):
        stream = await trio.open_unix_socket(path)
        await stream.send_all(json.dumps({
            "jsonrpc": "2.0", "id": 1, "method": "events.subscribe",
            "params": {"conversation_id": conversation}}).encode() + b"\n")
        reply = await stream.receive_some(4096)
        assert b'"subscription"' in reply, reply
        streams.append(stream)
    print("ready", flush=True)
    async with trio.open_nursery() as nursery:
        for k, stream in enumerate(streams):
            nursery.start_soon(one, k, stream)
    for stream in streams:
        await stream.aclose()
    latencies.sort()
    print(json.dumps({
        "last": last[0], "errors": errors[:5], "deliveries": sum(counts), "reads": reads[0],
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
    }), flush=True)


class Receivers:
    """The receiver process: ``result()`` waits for its figures (and its CPU time)."""

    def __init__(self, path: Path, subscribers: int, messages: int, conversation: str) -> None:
        cmd = [sys.executable, __file__, "_receive", str(path), str(subscribers), str(messages),
               conversation]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        ready = self.proc.stdout.readline().strip()
        assert ready == "ready", ready

    def result(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        out: dict[str, Any] = json.loads(self.proc.stdout.readline())
        _pid, _status, usage = os.wait4(self.proc.pid, 0)
        self.proc.returncode = 0
        out["cpu_s"] = usage.ru_utime + usage.ru_stime
        return out


# ---------------------------------------------------------------- the driver

class Client:
    """One connection, one call at a time: the same for wizd and the floor."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))
        self.reader = self.sock.makefile("rb")
        self.ids = 0

    def call(self, method: str, **params: Any) -> Any:
        self.ids += 1
        self.sock.sendall(json.dumps({"jsonrpc": "2.0", "id": self.ids, "method": method,
                                      "params": params}).encode() + b"\n")
        while True:
            reply = json.loads(self.reader.readline())
            if reply.get("id") == self.ids:
                break
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply["result"]

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def fan_out(path: Path, conversation: str, server_pid: int, messages: int,
            subscribers: int) -> dict[str, float]:
    """Send ``messages`` one after another to ``subscribers`` followers of ``conversation``."""
    client = Client(path)
    try:
        for _ in range(WARMUP):
            client.call("daemon.status")
        receivers = Receivers(path, subscribers, messages, conversation)
        cpu0 = _cpu_s(server_pid)
        first = time.monotonic()
        for i in range(messages):
            client.call("message.send", conversation_id=conversation, content=content(i))
        res = receivers.result()
        cpu = _cpu_s(server_pid) - cpu0
    finally:
        client.close()
    if res["errors"]:
        raise RuntimeError(f"receivers: {res['errors']}")
    return {"rate": res["deliveries"] / (res["last"] - first),
            "server_ms": 1000 * cpu / messages, "receivers_ms": 1000 * res["cpu_s"] / messages,
            "per_read": res["deliveries"] / res["reads"], "p50_ms": res["p50_ms"]}


def run_floor(base: Path, args: argparse.Namespace) -> dict[str, float]:
    base.mkdir(parents=True)
    sock = base / "floor.sock"
    proc = subprocess.Popen([sys.executable, str(BENCH / "floor.py"), str(sock),
                             str(base / "floor.db")], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline().strip()
        assert ready == "ready", ready
        return fan_out(sock, "fanout", proc.pid, args.messages, args.subscribers)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def run_wiz(base: Path, args: argparse.Namespace) -> dict[str, float]:
    sys.path.insert(0, str(ROOT))
    from tests.support.daemon import Wizd

    # A buffer of 256 events (not 1,024): small enough that the lazy subscriber
    # overflows it within one phase; the others never hold more than a few.
    w = Wizd(base, extra_args=["--log-level", "warning", "--backend", args.backend],
             env={"WIZ_SUBSCRIBER_BUFFER": "256"})
    w.start(fork=False)  # as users run it: python -m wizd
    try:
        assert w.proc is not None
        project = w.call("project.create", name="bench")

        def channel(name: str) -> str:
            return str(w.call("channel.create", project_id=project["id"], name=name)["id"])

        figures = fan_out(w.socket, channel("fanout"), w.proc.pid, args.messages,
                          args.subscribers)
        # Beside a subscriber that never reads.
        followed = channel("lazy")
        rss0 = _rss_mib(w.proc.pid)
        with w.connect() as lazy:
            lazy.call("events.subscribe", conversation_id=followed)
            beside = fan_out(w.socket, followed, w.proc.pid, args.messages, args.subscribers)
            figures["lazy_rss_growth"] = _rss_mib(w.proc.pid) - rss0
            figures["lazy_dropped"] = w.call("daemon.status")["subscriptions"] == 0
        figures["lazy_rate"] = beside["rate"]
        return figures
    finally:
        w.stop()


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_receive":
        trio.run(receive, sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--subscribers", type=int, default=50)
    parser.add_argument("--backend", default="trio", choices=("trio", "asyncio"))
    args = parser.parse_args()
    wiz: list[dict[str, float]] = []
    floor: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="wiz-fanout-") as tmp:
        for run in range(args.runs):
            floor.append(run_floor(Path(tmp) / f"floor-{run}", args))
            wiz.append(run_wiz(Path(tmp) / f"wiz-{run}", args))
            w, f = wiz[-1], floor[-1]
            print(f"run {run + 1}: wiz {w['rate']:,.0f} deliveries/s, floor {f['rate']:,.0f}"
                  f" ({w['rate'] / f['rate']:.0%}); CPU per message: wizd {w['server_ms']:.2f} ms,"
                  f" floor {f['server_ms']:.2f} ms, receivers {w['receivers_ms']:.2f} /"
                  f" {f['receivers_ms']:.2f} ms; deliveries per read {w['per_read']:.1f} /"
                  f" {f['per_read']:.1f}; beside a lazy subscriber {w['lazy_rate']:,.0f}/s,"
                  f" wizd RSS +{w['lazy_rss_growth']:.1f} MiB"
                  f"{'' if w['lazy_dropped'] else ' (the lazy one was NOT dropped)'}", flush=True)

    def med(rows: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    ratio = statistics.median(w["rate"] / f["rate"] for w, f in zip(wiz, floor, strict=True))
    print(f"\n{args.messages:,} messages one after another x {args.subscribers} subscribers,"
          f" wizd on {args.backend}, medians of {args.runs} runs on {os.cpu_count()} CPUs")
    for name, rows in (("wiz", wiz), ("floor", floor)):
        print(f"  {name:5} {med(rows, 'rate'):>9,.0f} deliveries/s; CPU per message: server"
              f" {med(rows, 'server_ms'):.2f} ms, receivers {med(rows, 'receivers_ms'):.2f} ms;"
              f" {med(rows, 'per_read'):.1f} deliveries per read; send -> receipt p50"
              f" {med(rows, 'p50_ms'):.1f} ms")
    verdict = "met" if ratio >= 0.5 else "NOT MET"
    print(f"  wiz / floor: {ratio:.0%} (target: at least 50%: {verdict})")
    print(f"  wiz beside a lazy subscriber: {med(wiz, 'lazy_rate'):,.0f} deliveries/s to the"
          f" others ({statistics.median(w['lazy_rate'] / w['rate'] for w in wiz):.0%} of without);"
          f" wizd RSS +{med(wiz, 'lazy_rss_growth'):.1f} MiB")


if __name__ == "__main__":
    main()
