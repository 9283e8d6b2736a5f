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

Figures: deliveries/s = N*S / (last receipt - first send); latency = receipt
time - send time (the content carries the send time, CLOCK_MONOTONIC is shared
by the processes); for wiz also commit-to-receipt (created_at, ms, against the
wall clock). Also wiz's message.send rate with no subscriber: N*S times it is
the most deliveries/s wiz could make if fan-out were free. Medians over runs.
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


async def send_messages(path: Path, conversation: str, messages: int) -> float:
    """message.send ``messages`` times, WINDOW in flight; returns the first send time."""
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

    async with stream, trio.open_nursery() as nursery:
        nursery.start_soon(responses)
        for i in range(messages):
            await window.acquire()
            await stream.send_all(json.dumps({
                "jsonrpc": "2.0", "id": i, "method": "message.send",
                "params": {"conversation_id": conversation, "content": content(i)}}).encode()
                + b"\n")
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


def run_wiz(base: Path, messages: int, subscribers: int) -> dict[str, Any]:
    proc, sock = start_wizd(base)
    try:
        project = rpc(sock, "project.create", name="bench")
        conversation = rpc(sock, "channel.create", project_id=project["id"], name="fanout")["id"]
        # The input ceiling: message.send alone, on a second channel.
        other = rpc(sock, "channel.create", project_id=project["id"], name="alone")["id"]
        start = trio.run(send_messages, sock, other, messages)
        send_rate = messages / (time.monotonic() - start)
        receivers = Receivers(sock, subscribers, messages, conversation)
        first = trio.run(send_messages, sock, conversation, messages)
        sent = time.monotonic()
        res = receivers.result()
        rss = _rss_mib(proc.pid)
    finally:
        stop(proc)
    res.update(rate=res["deliveries"] / (res["last"] - first), send_rate=send_rate,
               send_phase_rate=messages / (sent - first), rss_mib=rss)
    return res


def run_floor(base: Path, messages: int, subscribers: int) -> dict[str, Any]:
    sock = base / "floor.sock"
    proc = subprocess.Popen([sys.executable, __file__, "_floor", str(sock), str(subscribers)])
    try:
        deadline = time.monotonic() + 10
        while not sock.exists():
            assert time.monotonic() < deadline and proc.poll() is None, "floor did not start"
            time.sleep(0.01)
        receivers = Receivers(sock, subscribers, messages, None)

        async def produce() -> float:
            stream = await trio.open_unix_socket(str(sock))
            first = time.monotonic()
            async with stream:
                for i in range(messages):
                    await stream.send_all(floor_line(i))
            return first

        first = trio.run(produce)
        res = receivers.result()
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    res["rate"] = res["deliveries"] / (res["last"] - first)
    return res


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
    args = parser.parse_args()
    wiz: list[dict[str, Any]] = []
    floor: list[dict[str, Any]] = []
    for run in range(args.runs):
        base = Path(tempfile.mkdtemp(prefix="wiz-fanout-"))
        try:
            floor.append(run_floor(base, args.messages, args.subscribers))
            wiz.append(run_wiz(base, args.messages, args.subscribers))
        finally:
            shutil.rmtree(base, ignore_errors=True)
        w, f = wiz[-1], floor[-1]
        print(f"run {run + 1}: wiz {w['rate']:,.0f} deliveries/s (p99 {w['p99_ms']:.0f} ms), "
              f"floor {f['rate']:,.0f} deliveries/s (p99 {f['p99_ms']:.0f} ms), "
              f"message.send alone {w['send_rate']:,.0f}/s"
              + (f"  ERRORS {w['errors'] + f['errors']}" if w["errors"] or f["errors"] else ""),
              flush=True)

    def med(rows: list[dict[str, Any]], key: str) -> float:
        return statistics.median(r[key] for r in rows)

    ratio = med(wiz, "rate") / med(floor, "rate")
    print(f"\n{args.messages:,} messages x {args.subscribers} subscribers, "
          f"median of {args.runs} runs, {os.cpu_count()} CPUs")
    print(f"  wiz:   {med(wiz, 'rate'):>10,.0f} deliveries/s   send->receipt p50 "
          f"{med(wiz, 'p50_ms'):.0f} ms p99 {med(wiz, 'p99_ms'):.0f} ms, commit->receipt p99 "
          f"{med(wiz, 'commit_p99_ms'):.0f} ms, wizd RSS {med(wiz, 'rss_mib'):.0f} MiB")
    print(f"  floor: {med(floor, 'rate'):>10,.0f} deliveries/s   send->receipt p50 "
          f"{med(floor, 'p50_ms'):.0f} ms p99 {med(floor, 'p99_ms'):.0f} ms")
    print(f"  wiz message.send alone: {med(wiz, 'send_rate'):,.0f} msg/s "
          f"(x{args.subscribers} = {med(wiz, 'send_rate') * args.subscribers:,.0f} deliveries/s "
          f"if fan-out cost nothing); during fan-out {med(wiz, 'send_phase_rate'):,.0f} msg/s")
    print(f"  wiz / floor: {ratio:.0%} (target: at least 50%)")


if __name__ == "__main__":
    main()
