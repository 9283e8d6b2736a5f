"""Notification fan-out: N messages to S subscribers through a real wizd, against
a bare trio Unix-socket fan-out server (the floor) in the same run.

    .venv/bin/python bench/fanout.py [--messages 10000] [--subscribers 50] [--runs 3]

Per run and per system, three processes: the server (wizd, or the floor), one
receiver process holding the S subscriber sockets, and this driver, which
sends. The receivers are the same code for both systems and read the same-sized
JSON lines (a ``message.created`` notification with the same content size).

- wiz: the driver sends N ``message.send`` requests (64 in flight) to a channel
  that nobody answers in; every subscriber gets every ``message.created``.
- floor: the driver writes N notification lines to the floor server, which
  copies each to its S clients (one task and one memory channel per client,
  writing what has queued in one send: a careful bare server, not a naive one).

Figures: deliveries/s = N*S / (last receipt - first send) at full speed;
latency = receipt time - send time (the content carries the send time;
CLOCK_MONOTONIC is shared by the processes), at full speed (mostly queueing)
and in a paced phase (``--paced`` messages at ``--rate`` per second, the
latency a person would see); for wiz also commit-to-receipt (created_at, ms).
And wizd's CPU time (from /proc) per message.send with nobody subscribed and
per delivery beyond that, which tells the input's cost from the fan-out's.
Medians over runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

ROOT = Path(__file__).resolve().parent.parent
CONTENT_SIZE = 120  # a chat message: the content, padded to this many characters
WINDOW = 64


def content(i: int) -> str:
    text = f"{i} {time.monotonic():.6f} "
    return text + "x" * max(0, CONTENT_SIZE - len(text))


def floor_line(i: int) -> bytes:
    """A notification shaped and sized like wiz's message.created."""
    uid = "00000000-0000-0000-0000-000000000000"
    message = {"id": uid, "seq": i + 1, "conversation_id": uid, "source_type": "channel",
               "source_id": uid, "author_id": uid, "content": content(i), "kind": "text",
               "reply_to": None, "created_at": int(time.time() * 1000)}
    note = {"jsonrpc": "2.0", "method": "message.created",
            "params": {"subscription": "sub-1", "message": message}}
    return json.dumps(note, separators=(",", ":")).encode() + b"\n"


# ---------------------------------------------------------------- the floor server

async def floor_server(path: str, subscribers: int) -> None:
    """Accept ``subscribers`` clients and one producer; copy each producer line to all."""
    sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
    await sock.bind(path)
    sock.listen(256)
    listener = trio.SocketListener(sock)
    channels: list[trio.MemorySendChannel[bytes]] = []

    async def client(stream: trio.SocketStream, receive: trio.MemoryReceiveChannel[bytes]) -> None:
        async with stream, receive:
            async for line in receive:
                lines = [line]
                while True:
                    try:
                        lines.append(receive.receive_nowait())
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                await stream.send_all(b"".join(lines))

    async with trio.open_nursery() as nursery:
        while len(channels) < subscribers:
            stream = await listener.accept()
            send, receive = trio.open_memory_channel[bytes](float("inf"))
            channels.append(send)
            nursery.start_soon(client, stream, receive)
        producer = await listener.accept()
        buf = b""
        async with producer:
            while True:
                data = await producer.receive_some(1 << 16)
                if not data:
                    break
                buf += data
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    framed = line + b"\n"
                    for ch in channels:
                        ch.send_nowait(framed)
        for ch in channels:
            ch.close()
        await listener.aclose()


# ---------------------------------------------------------------- the receivers

def _field(line: bytes, key: bytes, end: bytes) -> bytes:
    start = line.index(key) + len(key)
    return line[start:line.index(end, start)]


async def receive(path: str, subscribers: int, messages: int, conversation: str | None) -> None:
    """Hold the subscriber sockets; print "ready", then one JSON line of figures."""
    latencies: list[float] = []  # send -> receipt, seconds
    commit: list[float] = []  # created_at -> receipt, ms
    last = [0.0]
    counts = [0] * subscribers
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
            now, wall = time.monotonic(), time.time()
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
                    created = int(_field(line, b'"created_at":', b"}"))
                    commit.append(wall * 1000 - created)
        last[0] = max(last[0], time.monotonic())

    streams = []
    for _ in range(subscribers):
        stream = await trio.open_unix_socket(path)
        if conversation is None:
            await stream.send_all(b"sub\n")
        else:
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
        "last": last[0], "errors": errors[:5], "deliveries": sum(counts),
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
        "commit_p99_ms": sorted(commit)[int(len(commit) * 0.99)] if commit else None,
    }), flush=True)


# ---------------------------------------------------------------- the driver

class Receivers:
    def __init__(self, path: Path, subscribers: int, messages: int,
                 conversation: str | None) -> None:
        cmd = [sys.executable, __file__, "_receive", str(path), str(subscribers), str(messages)]
        if conversation:
            cmd.append(conversation)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        ready = self.proc.stdout.readline().strip()
        assert ready == "ready", ready

    def result(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        out = json.loads(self.proc.stdout.readline())
        self.proc.wait(timeout=60)
        return out  # type: ignore[no-any-return]


def rpc(path: Path, method: str, **params: Any) -> Any:
    import socket

    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(path))
        s.sendall(json.dumps({"jsonrpc": "2.0", "id": 1, "method": method,
                              "params": params}).encode() + b"\n")
        line = s.makefile("rb").readline()
    reply = json.loads(line)
    if "error" in reply:
        raise RuntimeError(reply["error"])
    return reply["result"]


async def send_messages(path: Path, conversation: str, messages: int,
                        rate: float | None = None) -> float:
    """message.send ``messages`` times, WINDOW in flight (or paced at ``rate`` per
    second); returns the first send time."""
    stream = await trio.open_unix_socket(str(path))
    window = trio.Semaphore(WINDOW)
    first = time.monotonic()

    async def responses() -> None:
        buf = b""
        got = 0
        while got < messages:
            data = await stream.receive_some(1 << 16)
            assert data, "wizd closed the connection"
            buf += data
            *lines, buf = buf.split(b"\n")
            for line in lines:
                assert b'"error"' not in line, line
                got += 1
                window.release()

    start_at = trio.current_time()
    async with stream, trio.open_nursery() as nursery:
        nursery.start_soon(responses)
        for i in range(messages):
            await window.acquire()
            if rate:
                await trio.sleep_until(start_at + i / rate)
            await stream.send_all(json.dumps({
                "jsonrpc": "2.0", "id": i, "method": "message.send",
                "params": {"conversation_id": conversation, "content": content(i)}}).encode()
                + b"\n")
    return first


async def produce(path: Path, messages: int, rate: float | None = None) -> float:
    """The floor's input: ``messages`` notification lines (paced at ``rate``)."""
    stream = await trio.open_unix_socket(str(path))
    first = time.monotonic()
    start_at = trio.current_time()
    async with stream:
        for i in range(messages):
            if rate:
                await trio.sleep_until(start_at + i / rate)
            await stream.send_all(floor_line(i))
    return first


def start_wizd(base: Path) -> tuple[subprocess.Popen[bytes], Path]:
    sock = base / "wizd.sock"
    env = dict(os.environ, XDG_CONFIG_HOME=str(base / "config"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "wizd", "--socket", str(sock), "--db", str(base / "wiz.db"),
         "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=(base / "wizd.log").open("ab"))
    deadline = time.monotonic() + 20
    while True:
        try:
            rpc(sock, "daemon.status")
            return proc, sock
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError((base / "wizd.log").read_text()) from None
            time.sleep(0.05)


def stop(proc: subprocess.Popen[Any]) -> None:
    proc.terminate()
    proc.wait(timeout=30)


def run_wiz(base: Path, messages: int, subscribers: int, paced: int, rate: float) -> dict[str, Any]:
    """Full speed, then paced; figures of both, and wizd's CPU cost per delivery."""
    proc, sock = start_wizd(base)
    try:
        project = rpc(sock, "project.create", name="bench")

        def channel(name: str) -> str:
            return str(rpc(sock, "channel.create", project_id=project["id"], name=name)["id"])

        # message.send with nobody subscribed: the input's own cost.
        alone = min(messages, 2000)
        cpu0 = _cpu_s(proc.pid)
        start = trio.run(send_messages, sock, channel("alone"), alone)
        send_rate = alone / (time.monotonic() - start)
        send_cpu = (_cpu_s(proc.pid) - cpu0) / alone
        full = channel("fanout")
        receivers = Receivers(sock, subscribers, messages, full)
        cpu0 = _cpu_s(proc.pid)
        first = trio.run(send_messages, sock, full, messages)
        res = receivers.result()
        fanout_cpu = _cpu_s(proc.pid) - cpu0 - send_cpu * messages
        rss = _rss_mib(proc.pid)
        slow = channel("paced")
        receivers = Receivers(sock, subscribers, paced, slow)
        trio.run(send_messages, sock, slow, paced, rate)
        calm = receivers.result()
    finally:
        stop(proc)
    res.update(rate=res["deliveries"] / (res["last"] - first), send_rate=send_rate,
               send_cpu_ms=1000 * send_cpu, fanout_cpu_us=1e6 * fanout_cpu / res["deliveries"],
               rss_mib=rss, paced_p50_ms=calm["p50_ms"], paced_p99_ms=calm["p99_ms"],
               errors=res["errors"] + calm["errors"])
    return res


def run_floor(base: Path, messages: int, subscribers: int, paced: int,
              rate: float) -> dict[str, Any]:
    def once(count: int, pace: float | None) -> dict[str, Any]:
        sock = base / "floor.sock"
        sock.unlink(missing_ok=True)
        proc = subprocess.Popen([sys.executable, __file__, "_floor", str(sock), str(subscribers)])
        try:
            deadline = time.monotonic() + 10
            while not sock.exists():
                assert time.monotonic() < deadline and proc.poll() is None, "no floor server"
                time.sleep(0.01)
            receivers = Receivers(sock, subscribers, count, None)
            first = trio.run(produce, sock, count, pace)
            res = receivers.result()
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        res["rate"] = res["deliveries"] / (res["last"] - first)
        return res

    res = once(messages, None)
    calm = once(paced, rate)
    res.update(paced_p50_ms=calm["p50_ms"], paced_p99_ms=calm["p99_ms"],
               errors=res["errors"] + calm["errors"])
    return res


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
    if len(sys.argv) > 1 and sys.argv[1] == "_floor":
        trio.run(floor_server, sys.argv[2], int(sys.argv[3]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "_receive":
        conversation = sys.argv[5] if len(sys.argv) > 5 else None
        trio.run(receive, sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), conversation)
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--subscribers", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--paced", type=int, default=500,
                        help="messages of the paced (latency) phase")
    parser.add_argument("--rate", type=float, default=100.0,
                        help="messages per second in the paced phase")
    args = parser.parse_args()
    wiz: list[dict[str, Any]] = []
    floor: list[dict[str, Any]] = []
    for run in range(args.runs):
        base = Path(tempfile.mkdtemp(prefix="wiz-fanout-"))
        try:
            floor.append(run_floor(base, args.messages, args.subscribers, args.paced, args.rate))
            wiz.append(run_wiz(base, args.messages, args.subscribers, args.paced, args.rate))
        finally:
            shutil.rmtree(base, ignore_errors=True)
        w, f = wiz[-1], floor[-1]
        print(f"run {run + 1}: wiz {w['rate']:,.0f} deliveries/s, floor {f['rate']:,.0f}; "
              f"message.send alone {w['send_rate']:,.0f}/s; wizd CPU "
              f"{w['send_cpu_ms']:.2f} ms per message.send + {w['fanout_cpu_us']:.1f} us "
              "per delivery" + (f"  ERRORS {w['errors'] + f['errors']}"
                                if w["errors"] or f["errors"] else ""), flush=True)

    def med(rows: list[dict[str, Any]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    n, s = args.messages, args.subscribers
    print(f"\n{n:,} messages x {s} subscribers; medians of {args.runs} runs "
          f"on {os.cpu_count()} CPUs")
    for name, rows in (("wiz", wiz), ("floor", floor)):
        print(f"  {name:5} {med(rows, 'rate'):>9,.0f} deliveries/s; send->receipt at full "
              f"speed p50 {med(rows, 'p50_ms'):.0f} ms p99 {med(rows, 'p99_ms'):.0f} ms; "
              f"paced at {args.rate:.0f} msg/s p50 {med(rows, 'paced_p50_ms'):.1f} ms "
              f"p99 {med(rows, 'paced_p99_ms'):.1f} ms")
    print(f"  wiz commit->receipt p99 at full speed: {med(wiz, 'commit_p99_ms'):.0f} ms "
          f"(created_at, taken before the write is queued); wizd RSS {med(wiz, 'rss_mib'):.0f} MiB")
    send_rate, per_send = med(wiz, "send_rate"), med(wiz, "send_cpu_ms")
    per_delivery = med(wiz, "fanout_cpu_us")
    print(f"  wizd CPU: {per_send:.2f} ms per message.send, {per_delivery:.1f} us per delivery;"
          f" message.send alone {send_rate:,.0f} msg/s, so at most "
          f"{1000 / (per_send + s * per_delivery / 1000) * s:,.0f} deliveries/s on one core"
          f" (and {1e6 / per_delivery:,.0f}/s if storing were free)")
    print(f"  wiz / floor: {med(wiz, 'rate') / med(floor, 'rate'):.0%} (target: at least 50%)")


if __name__ == "__main__":
    main()
