"""Scale out: 1 wizd node finishing 500 conversations against N nodes on one
PostgreSQL finishing N x 500, against a model answering in 1 s.

    .venv/bin/python bench/scale_out.py [--conversations 500] [--nodes 3]
        [--concurrency 50] [--delay 1.0] [--runs 3] [--settings default|tests]
        [--subscribers every|one] [--backend trio|asyncio]

A private PostgreSQL server (``pg_queue.PgServer``: PostgreSQL's default
durability, or the test suite's with ``--settings tests``) and a scripted
OpenAI-compatible HTTP server on 127.0.0.1 (``tests/support/openai_server``,
on a thread of this process) that answers every request after ``delay``
seconds. Each run has two cases, each on a new database:

- 1 node: one ``wizd --db postgresql://... --socket ... --concurrency 50``
  (``python -m wizd``, as users run it), ``conversations`` DMs;
- N nodes: N such processes, each on its own socket, on one database,
  N x ``conversations`` DMs.

One agent (an ``openai`` provider pointed at the scripted server). Each
node's connection creates its share of the DMs and subscribes to every event
(``events.subscribe``; with ``--subscribers one``, only the first node's
does, and it waits for every DM's reply: the client's work per conversation
is then the same in both cases, where with a subscriber per node each
reply is delivered N times). Warm-up: ``concurrency`` messages per node,
through that node, until their replies: more than any node can run at
once, so every node runs some (a node's first reply imports the openai SDK,
about a second of CPU: not what this measures). Then the clock starts and
one message is sent in each DM, through the node that created it
(pipelined by a thread per node while another reads, as
``concurrency_500.py`` does), until every node's subscriber has seen the
agent's reply (``message.created``) in each of the DMs sent through it.

Ideal: N nodes take as long as one (each works 500 conversations at 50 at a
time; the floor is ``ceil(500 / 50) * delay``, 10 s). Target (issue 13): N
nodes within 15% of that, i.e. time(N) <= 1.15 x time(1), same run.

Each case also reports the most requests the model server saw at once, the
replies each subscriber saw among the measured DMs (every reply of the
cluster, as events cross nodes), any DM whose reply a subscriber saw twice,
and, read back with ``message.list`` after the clock stopped, any DM without
exactly one stored agent reply; and the CPU time the wizd nodes, the
PostgreSQL server, this process and the whole machine used while the clock
ran (on a machine with fewer cores than the work needs, N nodes cannot keep
up with one: the CPU line says when that is the case).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pg_queue import SETTINGS, PgServer, pg_server  # noqa: E402

from tests.support.daemon import Conn, Wizd  # noqa: E402
from tests.support.openai_server import (  # noqa: E402
    RecordedRequest,
    Reply,
    ThreadedOpenAIServer,
    echo,
    openai_server_in_thread,
)

TARGET = 1.15
# The longest a case may take before the bench gives up on it (seconds).
DEADLINE = 120.0


TICK = os.sysconf("SC_CLK_TCK")


def cpu_of(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used, 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def postgres_pids(pg: PgServer) -> list[int]:
    """The server's postmaster and its children (a backend per connection)."""
    main = int((pg.data / "postmaster.pid").read_text().split()[0])
    pids = [main]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == main:
                pids.append(int(stat.parent.name))
        except (OSError, ValueError):
            continue
    return pids


def machine_busy() -> tuple[float, float]:
    """Seconds of CPU busy and in all, over every core, since boot (/proc/stat)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]
    return (sum(ticks) - idle) / TICK, sum(ticks) / TICK


@dataclass
class Cpu:
    """CPU seconds spent during the measured phase, by whom."""

    wizd: float
    postgres: float
    bench: float  # this process: the subscribers, senders and the model server
    machine: float  # every process on the machine
    cores: float  # wall time x cores: what the machine had

    @staticmethod
    def sample(nodes: list[Node], pg: PgServer) -> tuple[float, ...]:
        wizd = sum(cpu_of(node.wizd.proc.pid) for node in nodes if node.wizd.proc)
        return (wizd, sum(cpu_of(pid) for pid in postgres_pids(pg)), time.process_time(),
                *machine_busy())

    @staticmethod
    def between(before: tuple[float, ...], after: tuple[float, ...]) -> Cpu:
        return Cpu(*(b - a for a, b in zip(before, after, strict=True)))


class Subscriber(threading.Thread):
    """Reads one node's subscribed connection: the agent's replies by DM, and
    any error answer to the pipelined sends."""

    def __init__(self, conn: Conn, agent_user: str) -> None:
        super().__init__(daemon=True)
        self.conn = conn
        self.agent_user = agent_user
        self.lock = threading.Lock()
        self.replies: dict[str, int] = {}  # DM -> replies seen
        self.waiting: set[str] = set()
        self.done = threading.Event()
        self.done_at = 0.0
        self.errors: list[str] = []

    def expect(self, dms: list[str]) -> threading.Event:
        """An event set once each of ``dms`` has a reply (counted from now on)."""
        with self.lock:
            self.waiting = {dm for dm in dms if dm not in self.replies}
            self.done = threading.Event()
            if not self.waiting:
                self.done.set()
            return self.done

    def run(self) -> None:
        try:
            while True:
                msg: dict[str, Any] = self.conn.read()
                if "error" in msg or msg.get("method") == "events.lagged":
                    self.errors.append(json.dumps(msg))
                    self.done.set()
                    continue
                if (msg.get("method") != "message.created"
                        or msg["params"]["message"]["author_id"] != self.agent_user):
                    continue
                dm = msg["params"]["message"]["conversation_id"]
                with self.lock:
                    self.replies[dm] = self.replies.get(dm, 0) + 1
                    if dm in self.waiting:
                        self.waiting.discard(dm)
                        if not self.waiting:
                            self.done_at = time.perf_counter()
                            self.done.set()
        except (OSError, EOFError, ValueError):
            return  # the connection closed at the end of the case


@dataclass
class Node:
    wizd: Wizd
    conn: Conn | None = None
    subscriber: Subscriber | None = None
    dms: list[str] = field(default_factory=list)
    warm: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    elapsed: float
    peak: int
    seen: list[int]  # replies each subscriber saw in all (measured DMs)
    duplicates: int  # the most DMs with a second reply seen by one subscriber
    total: int
    stored: dict[int, int]  # DMs by the number of agent replies stored in them
    cpu: Cpu


def send_all(conn: Conn, dms: list[str], tag: str) -> None:
    for i, dm in enumerate(dms):
        conn.send({"jsonrpc": "2.0", "id": f"{tag}-{i}", "method": "message.send",
                   "params": {"conversation_id": dm, "content": f"question {tag} {i}"}})


def wait_all(nodes: list[Node], events: list[threading.Event]) -> None:
    deadline = time.monotonic() + DEADLINE
    for node, event in zip(nodes, events, strict=True):
        assert node.subscriber is not None
        if not event.wait(max(0.0, deadline - time.monotonic())):
            raise RuntimeError(f"no reply within {DEADLINE:g} s in "
                               f"{len(node.subscriber.waiting)} conversations")
        if node.subscriber.errors:
            raise RuntimeError(node.subscriber.errors[0])


def one_case(base: Path, pg: PgServer, url: str, count: int, server: ThreadedOpenAIServer,
             args: argparse.Namespace) -> Outcome:
    """``count`` nodes on the database at ``url``, ``args.conversations`` DMs each."""
    extra = ["--db", url, "--log-level", "warning", "--backend", args.backend,
             "--concurrency", str(args.concurrency)]
    nodes = [Node(Wizd(base / f"node-{i}", extra_args=extra)) for i in range(count)]
    try:
        for node in nodes:  # one after another: the first migrates the database
            node.wizd.start(fork=False)  # as users run it: python -m wizd
        provider = nodes[0].wizd.call("provider.create", name="slow", type="openai",
                                      default_model="gpt-test", base_url=server.base_url)
        agent = nodes[0].wizd.call("agent.create", name="ada", role="r", backstory="b",
                                   goal="g", provider_id=provider["id"])
        # Subscribed nodes; the others' connections only send (their answers
        # are read all the same).
        subscribed = nodes if args.subscribers == "every" else nodes[:1]
        for node in nodes:
            conn = node.conn = node.wizd.connect()
            node.dms = [conn.call("dm.create", participants=[agent["id"]])["id"]
                        for _ in range(args.conversations)]
            node.warm = [conn.call("dm.create", participants=[agent["id"]])["id"]
                         for _ in range(args.concurrency)]
            if node in subscribed:
                conn.call("events.subscribe")
            conn.sock.settimeout(None)  # idle while the others are set up
            node.subscriber = Subscriber(conn, agent["user_id"])
            node.subscriber.start()

        def phase(pick: str, tag: str) -> float:
            events = []
            every = [dm for node in nodes for dm in getattr(node, pick)]
            for node in nodes:
                assert node.subscriber is not None
                if args.subscribers == "every":
                    events.append(node.subscriber.expect(getattr(node, pick)))
                else:  # the one subscriber waits for every DM
                    events.append(node.subscriber.expect(every if node is nodes[0] else []))
            start = time.perf_counter()
            senders = []
            for i, node in enumerate(nodes):
                assert node.conn is not None
                senders.append(threading.Thread(
                    target=send_all, args=(node.conn, getattr(node, pick), f"{tag}{i}")))
            for sender in senders:
                sender.start()
            wait_all(nodes, events)
            end = max(node.subscriber.done_at for node in nodes if node.subscriber)
            for sender in senders:
                sender.join()
            return end - start

        phase("warm", "w")
        server.server.max_concurrent = 0
        before = Cpu.sample(nodes, pg)
        elapsed = phase("dms", "m")
        cpu = Cpu.between(before, Cpu.sample(nodes, pg))
        peak = server.max_concurrent
        measured = {dm for node in nodes for dm in node.dms}
        # Other nodes' replies reach a subscriber a little after its own: give
        # them a few seconds after the clock stopped.
        deadline = time.monotonic() + 10
        for node in subscribed:
            assert node.subscriber is not None
            node.subscriber.expect(sorted(measured)).wait(max(0, deadline - time.monotonic()))
        seen, duplicates = [], 0
        for node in subscribed:
            assert node.subscriber is not None
            with node.subscriber.lock:
                replies = {dm: n for dm, n in node.subscriber.replies.items() if dm in measured}
            seen.append(len(replies))
            duplicates = max(duplicates, sum(1 for n in replies.values() if n > 1))
        # What the database holds: one agent reply in each DM.
        stored: dict[int, int] = {}
        with nodes[0].wizd.connect() as conn:
            for dm in sorted(measured):
                messages = conn.call("message.list", conversation_id=dm, limit=10)["messages"]
                n = sum(1 for m in messages if m["author_id"] == agent["user_id"])
                stored[n] = stored.get(n, 0) + 1
        return Outcome(elapsed, peak, seen, duplicates, len(measured), stored, cpu)
    finally:
        for node in nodes:
            if node.conn is not None:
                # The subscriber's read holds the file: end it before closing.
                with contextlib.suppress(OSError):
                    node.conn.sock.shutdown(socket.SHUT_RDWR)
                if node.subscriber is not None:
                    node.subscriber.join(timeout=10)
                node.conn.close()
        for node in nodes:
            if node.wizd.proc is not None:
                node.wizd.stop()
            node.wizd.close()


def describe(label: str, outcome: Outcome) -> str:
    seen = "/".join(str(n) for n in outcome.seen)
    text = (f"{label}: {outcome.elapsed:6.2f} s for {outcome.total} conversations, at most "
            f"{outcome.peak} requests at once, replies seen per subscriber {seen}")
    if outcome.duplicates:
        text += f", {outcome.duplicates} conversations with a second reply"
    cpu = outcome.cpu
    text += (f"\n    CPU s: wizd {cpu.wizd:.1f}, postgres {cpu.postgres:.1f}, bench "
             f"(subscribers, model server) {cpu.bench:.1f}, whole machine {cpu.machine:.1f} "
             f"of {cpu.cores:.1f} ({cpu.machine / cpu.cores:.0%} busy)")
    if set(outcome.stored) != {1}:
        text += f"; PROBLEM: DMs by agent replies stored {dict(sorted(outcome.stored.items()))}"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=500, help="per node")
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=50, help="per node")
    parser.add_argument("--delay", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--settings", default="default", choices=sorted(SETTINGS))
    parser.add_argument("--subscribers", default="every", choices=["every", "one"],
                        help="a subscriber on every node (each waits for the DMs sent "
                        "through its node), or on the first node only (it waits for all)")
    parser.add_argument("--backend", default="trio", choices=["trio", "asyncio"])
    args = parser.parse_args()

    def slow(request: RecordedRequest) -> Reply:
        reply = echo(request)
        reply.delay = args.delay
        return reply

    floor = math.ceil(args.conversations / args.concurrency) * args.delay
    one: list[float] = []
    many: list[float] = []
    pg: PgServer
    with (tempfile.TemporaryDirectory() as tmp, pg_server(args.settings) as pg,
          openai_server_in_thread(default=slow) as server):
        for run in range(args.runs):
            for count, times in ((1, one), (args.nodes, many)):
                url = pg.create()
                try:
                    outcome = one_case(Path(tmp) / f"run-{run}-{count}", pg, url, count,
                                       server, args)
                finally:
                    pg.drop(url)
                times.append(outcome.elapsed)
                print(describe(f"run {run + 1}, {count} node(s)", outcome), flush=True)
            print(f"run {run + 1}: {args.nodes} nodes / 1 node = {many[-1] / one[-1]:.2f}",
                  flush=True)
    ratio = statistics.median(many) / statistics.median(one)
    print(f"\n{args.conversations} conversations per node, model answering in "
          f"{args.delay:g} s, concurrency {args.concurrency} per node, wizd on "
          f"{args.backend}, PostgreSQL {args.settings} settings, subscribers on "
          f"{'every node' if args.subscribers == 'every' else 'the first node'}; median of "
          f"{args.runs} runs "
          f"(floor {floor:.1f} s)")
    print(f"{'nodes':>6}{'conversations':>15}{'median s':>10}{'min':>8}{'max':>8}")
    for count, times in ((1, one), (args.nodes, many)):
        print(f"{count:>6}{count * args.conversations:>15}{statistics.median(times):>10.2f}"
              f"{min(times):>8.2f}{max(times):>8.2f}")
    print(f"{args.nodes} nodes / 1 node: {ratio:.2f} (ideal 1.00; target <= {TARGET:.2f}: "
          f"{'met' if ratio <= TARGET else 'not met'})")


if __name__ == "__main__":
    main()
