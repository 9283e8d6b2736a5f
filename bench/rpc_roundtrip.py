"""Round-trip time of one JSON-RPC call to wizd, against a bare echo server.

    .venv/bin/python bench/rpc_roundtrip.py [--calls 10000] [--runs 3] [--backend trio]

Starts a real ``wizd`` on a temporary socket and database and times
``daemon.status`` (figures kept in memory: no database read) over one connection,
one call at a time. In the same run, a baseline: a bare anyio Unix-socket
server in a subprocess that parses each newline-delimited JSON request and
answers with a JSON result, no database, no dispatch. The difference is what
wizd's framing, validation and dispatch cost per call (bench/vs_floor.py
compares with a floor that does the same work).

Each run reports the median and the 99th percentile; the table shows the
median of the runs for both.
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

ROOT = Path(__file__).resolve().parent.parent
WARMUP = 200


def echo_server(path: str, backend: str) -> None:
    """The baseline: newline-JSON in, a JSON-RPC result out, on anyio."""
    import anyio
    from anyio.streams.buffered import BufferedByteReceiveStream

    async def handle(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            reader = BufferedByteReceiveStream(stream)
            while True:
                try:
                    line = await reader.receive_until(b"\n", 1024 * 1024)
                except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError):
                    return
                request = json.loads(line)
                response = {"jsonrpc": "2.0", "id": request["id"],
                            "result": {"pid": os.getpid(), "ok": True}}
                await stream.send(json.dumps(response, separators=(",", ":")).encode() + b"\n")

    async def main() -> None:
        listener = await anyio.create_unix_listener(path)
        print("ready", flush=True)
        await listener.serve(handle)

    anyio.run(main, backend=backend)


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


def measure(path: Path, method: str, calls: int) -> list[int]:
    """Nanoseconds per round trip, one request in flight at a time."""
    sock = connect(path)
    reader = sock.makefile("rb")
    samples = []
    try:
        for i in range(WARMUP + calls):
            line = json.dumps({"jsonrpc": "2.0", "id": i, "method": method}).encode() + b"\n"
            start = time.perf_counter_ns()
            sock.sendall(line)
            answer = reader.readline()
            elapsed = time.perf_counter_ns() - start
            if i == 0 and b'"result"' not in answer:
                raise RuntimeError(f"unexpected answer: {answer!r}")
            if i >= WARMUP:
                samples.append(elapsed)
    finally:
        reader.close()
        sock.close()
    return samples


def p99(samples: list[int]) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[98]


def run_series(name: str, path: Path, method: str, calls: int, runs: int) -> dict[str, float]:
    medians, p99s = [], []
    for run in range(runs):
        samples = measure(path, method, calls)
        medians.append(statistics.median(samples) / 1000)
        p99s.append(p99(samples) / 1000)
        print(f"  {name:<12} run {run + 1}: median {medians[-1]:7.1f} us   p99 {p99s[-1]:7.1f} us",
              file=sys.stderr)
    return {"median": statistics.median(medians), "p99": statistics.median(p99s)}


def wait_for_line(proc: subprocess.Popen[bytes], expected: bytes) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != expected:
        raise RuntimeError(f"server did not start: {line!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backend", default="trio", choices=("trio", "asyncio"))
    parser.add_argument("--echo-server", help=argparse.SUPPRESS)  # internal: run the baseline
    args = parser.parse_args()
    if args.echo_server:
        echo_server(args.echo_server, args.backend)
        return

    with tempfile.TemporaryDirectory(prefix="wiz-bench-") as tmp:
        base = Path(tmp)
        env = dict(os.environ, XDG_CONFIG_HOME=str(base / "config"),
                   XDG_RUNTIME_DIR=str(base / "xdg-run"), XDG_DATA_HOME=str(base / "xdg-data"))
        for name in ("WIZ_SOCKET", "WIZ_DB", "WIZ_CONFIG", "NOTIFY_SOCKET", "LISTEN_FDS"):
            env.pop(name, None)
        wizd_sock, echo_sock = base / "run" / "wizd.sock", base / "echo.sock"
        log = (base / "wizd.log").open("wb")
        wizd = subprocess.Popen(
            [sys.executable, "-m", "wizd", "--socket", str(wizd_sock), "--db",
             str(base / "data" / "wiz.db"), "--log-level", "warning", "--backend", args.backend],
            stdout=log, stderr=log, env=env, cwd=ROOT)
        echo = subprocess.Popen(
            [sys.executable, __file__, "--echo-server", str(echo_sock), "--backend", args.backend],
            stdout=subprocess.PIPE, env=env, cwd=ROOT)
        try:
            wait_for_line(echo, b"ready")
            print(f"{args.runs} runs x {args.calls} calls, one connection, one call in flight, "
                  f"backend {args.backend}", file=sys.stderr)
            results = {
                "wizd": run_series("wizd", wizd_sock, "daemon.status", args.calls, args.runs),
                "echo": run_series("echo", echo_sock, "echo", args.calls, args.runs),
            }
        finally:
            for proc in (wizd, echo):
                proc.terminate()
                proc.wait(timeout=30)
            log.close()

    wz, ec = results["wizd"], results["echo"]
    print()
    print(f"| server ({args.backend}) | median (us) | p99 (us) |")
    print("| --- | ---: | ---: |")
    print(f"| wizd daemon.status | {wz['median']:.1f} | {wz['p99']:.1f} |")
    print(f"| bare anyio echo | {ec['median']:.1f} | {ec['p99']:.1f} |")
    print(f"| wizd overhead | {wz['median'] - ec['median']:+.1f} | {wz['p99'] - ec['p99']:+.1f} |")


if __name__ == "__main__":
    main()
