"""How long another client waits for one call while others load the daemon.

    .venv/bin/python bench/rpc_fairness.py [--probes 200] [--loaders 4] [--backend trio]

Starts a real ``wizd`` and times ``daemon.status`` round trips from a probe
connection, one call at a time, in four situations of the same run:

- idle: nothing else (the baseline);
- pipelined: ``--loaders`` connections each keep ``max_batch`` single calls
  in flight (a window: one new call per answer);
- batches: the same connections send batches of ``max_batch`` calls instead,
  one after the other;
- discover: ``--discover-clients`` connections call ``rpc.discover`` (a 15 kB
  result) in a loop.

A batch should cost the probe no more than the same calls pipelined. Load
runs in threads of this process (blocking sockets, GIL released while
waiting); every loop is bounded by the probe's count.
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
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def connect(path: Path, timeout: float = 20.0) -> socket.socket:
    deadline = time.monotonic() + timeout
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(path))
            return sock
        except OSError:
            sock.close()
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def line(id: int, method: str) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": id, "method": method}).encode() + b"\n"


def probe(path: Path, count: int) -> list[float]:
    """Milliseconds per daemon.status round trip, one call in flight."""
    sock = connect(path)
    reader = sock.makefile("rb")
    samples = []
    try:
        for i in range(count):
            start = time.perf_counter()
            sock.sendall(line(i, "daemon.status"))
            if b'"result"' not in reader.readline():
                raise RuntimeError("probe call failed")
            samples.append((time.perf_counter() - start) * 1000)
    finally:
        reader.close()
        sock.close()
    return samples


def pipelined(path: Path, window: int, stop: threading.Event) -> None:
    sock = connect(path)
    reader = sock.makefile("rb")
    try:
        sock.sendall(b"".join(line(i, "daemon.status") for i in range(window)))
        i = window
        while not stop.is_set():
            reader.readline()
            sock.sendall(line(i, "daemon.status"))
            i += 1
        for _ in range(window):
            reader.readline()
    finally:
        reader.close()
        sock.close()


def batches(path: Path, size: int, stop: threading.Event) -> None:
    sock = connect(path)
    reader = sock.makefile("rb")
    batch = json.dumps([{"jsonrpc": "2.0", "id": i, "method": "daemon.status"}
                        for i in range(size)]).encode() + b"\n"
    try:
        while not stop.is_set():
            sock.sendall(batch)
            if not reader.readline().startswith(b"[{"):
                raise RuntimeError("batch refused")
    finally:
        reader.close()
        sock.close()


def discover(path: Path, stop: threading.Event) -> None:
    sock = connect(path)
    reader = sock.makefile("rb")
    try:
        i = 0
        while not stop.is_set():
            sock.sendall(line(i, "rpc.discover"))
            reader.readline()
            i += 1
    finally:
        reader.close()
        sock.close()


def under_load(path: Path, probes: int, loads: list[Callable[[threading.Event], None]]
               ) -> list[float]:
    stop = threading.Event()
    threads = [threading.Thread(target=load, args=(stop,)) for load in loads]
    for t in threads:
        t.start()
    time.sleep(0.5)  # let the load build up
    try:
        return probe(path, probes)
    finally:
        stop.set()
        for t in threads:
            t.join(60)


def summary(samples: list[float]) -> str:
    p99 = statistics.quantiles(samples, n=100, method="inclusive")[98]
    return f"{statistics.median(samples):8.2f} | {p99:8.2f} | {max(samples):8.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--loaders", type=int, default=4)
    parser.add_argument("--discover-clients", type=int, default=100)
    parser.add_argument("--backend", default="trio", choices=("trio", "asyncio"))
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="wiz-bench-") as tmp:
        base = Path(tmp)
        env = dict(os.environ, XDG_CONFIG_HOME=str(base / "config"),
                   XDG_RUNTIME_DIR=str(base / "xdg-run"), XDG_DATA_HOME=str(base / "xdg-data"))
        for name in ("WIZ_SOCKET", "WIZ_DB", "WIZ_CONFIG", "NOTIFY_SOCKET", "LISTEN_FDS"):
            env.pop(name, None)
        path = base / "run" / "wizd.sock"
        log = (base / "wizd.log").open("wb")
        wizd = subprocess.Popen(
            [sys.executable, "-m", "wizd", "--socket", str(path), "--db",
             str(base / "data" / "wiz.db"), "--log-level", "warning", "--backend", args.backend],
            stdout=log, stderr=log, env=env, cwd=ROOT)
        try:
            probe(path, 20)  # started, and warm
            sock = connect(path)
            sock.sendall(line(0, "daemon.status"))
            size = json.loads(sock.makefile("rb").readline())["result"]["config"]["max_batch"]
            sock.close()
            n = args.loaders
            rows = {
                "idle": probe(path, args.probes),
                f"{n} x {size} pipelined": under_load(path, args.probes, [
                    lambda stop: pipelined(path, size, stop)] * n),
                f"{n} x batches of {size}": under_load(path, args.probes, [
                    lambda stop: batches(path, size, stop)] * n),
                f"{args.discover_clients} x rpc.discover": under_load(path, args.probes, [
                    lambda stop: discover(path, stop)] * args.discover_clients),
            }
        finally:
            wizd.terminate()
            wizd.wait(timeout=30)
            log.close()

    print(f"\n| probe daemon.status ({args.backend}), while | median ms | p99 ms | max ms |")
    print("| --- | ---: | ---: | ---: |")
    for name, samples in rows.items():
        print(f"| {name} | {summary(samples)} |")


if __name__ == "__main__":
    main()
