"""Cost as history grows: every method and the start-up, on a small and a big database.

    .venv/bin/python bench/history_scale.py [--runs 3] [--calls 200] [--backend trio]
        [--small 10000,5000,10] [--big 1000000,500000,1000]

Builds two databases (messages, completed jobs, conversations): by default
10,000 messages in 10 conversations with 5,000 completed jobs, and 1,000,000
messages in 1,000 conversations with 500,000 completed jobs. Each is made by
a real wizd (schema, local user, built-in provider, one agent), then filled
with direct SQL bulk inserts (the full-text index follows through its
triggers), not through the RPC. Retention is off
(``WIZ_KEEP_FINISHED_JOBS=0``, ``WIZ_KEEP_FINISHED_DAYS=0``) so the history
stays whole while it is measured.

Then, per database and per run, a real wizd is started on it and timed:

- start-up: from spawning ``wizd`` to its first ``daemon.status`` answer;
- each method, one connection, one call at a time (the median of ``--calls``):
  ``daemon.status``, ``message.list`` (the newest 50 of a conversation with a
  long history, and 50 ``after_seq`` half-way through it), ``job.list``
  (without status, with ``status: completed``, and the page after the first),
  ``agent.list``;
- send -> reply: ``message.send`` to a DM with the agent (offline provider)
  to the reply's ``message.created`` on the same subscribed connection.

Last, retention on the big database: wizd keeping the newest 10,000 finished
jobs, how long pruning the rest takes (small batches, a round every second),
and ``message.send``'s round trip meanwhile (the writer is never held long).

Prints the medians of the runs for both databases and the ratio big/small
(target: within 2x for each).
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.daemon import Conn, Wizd  # noqa: E402

WARMUP = 20
SENDS = 30
ENV = {"WIZ_KEEP_FINISHED_JOBS": "0", "WIZ_KEEP_FINISHED_DAYS": "0"}


def build(base: Path, messages: int, jobs: int, conversations: int, backend: str) -> dict[str, Any]:
    """A database with this history; what the measurements need to know of it."""
    w = Wizd(base, extra_args=["--log-level", "warning", "--backend", backend], env=ENV)
    w.start(fork=False)  # as users run it: python -m wizd
    try:
        agent = w.call("agent.create", name="ada", role="Researcher", backstory="b", goal="g")
        me = w.call("user.me")["id"]
        dm = w.call("dm.create", participants=[agent["id"]])["id"]
    finally:
        w.stop()
    start = time.perf_counter()
    db = sqlite3.connect(w.db, isolation_level=None)
    db.execute("PRAGMA synchronous=OFF")
    now = int(time.time() * 1000)
    t0 = now - messages - 60_000
    db.execute("BEGIN")
    db.execute("CREATE TEMP TABLE conv (n INTEGER PRIMARY KEY, id TEXT)")
    db.executemany("INSERT INTO conv VALUES (?, ?)",
                   [(n, f"bench-c{n:05d}") for n in range(conversations)])
    db.execute("INSERT INTO dm_conversations (id, name, created_at, updated_at)"
               " SELECT id, NULL, :t, :t FROM conv", {"t": t0})
    db.execute("INSERT INTO dm_participants (conversation_id, user_id, created_at)"
               " SELECT id, :me, :t FROM conv UNION ALL SELECT id, :agent, :t FROM conv",
               {"me": me, "agent": agent["user_id"], "t": t0})
    db.execute(
        "WITH RECURSIVE i(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM i WHERE k < :count)"
        " INSERT INTO messages (id, source_type, source_id, author_id, content, kind,"
        "  created_at, updated_at)"
        " SELECT 'bench-m' || k, 'dm', (SELECT id FROM conv WHERE conv.n = i.k % :convs),"
        "  CASE k % 2 WHEN 0 THEN :me ELSE :agent END,"
        "  'message number ' || k || ' about the history of a long conversation', 'text',"
        "  :t + k, :t + k FROM i",
        {"count": messages, "convs": conversations, "me": me, "agent": agent["user_id"],
         "t": t0})
    db.execute(
        "WITH RECURSIVE i(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM i WHERE k < :count)"
        " INSERT INTO jobs (id, name, data, opts, priority, status, progress, attempts,"
        "  max_attempts, result, created_at, updated_at, processed_on, finished_on, run_at,"
        "  group_key)"
        " SELECT 'bench-j' || k, 'response_generator',"
        "  json_object('conversation_id', c.id, 'agent_id', :agent_id,"
        "              'message_id', 'bench-m' || (2 * k)),"
        "  '{}', 0, 'completed', 100, 1, 3, json_object('message_id', 'bench-m' || (2 * k + 1)),"
        "  :t + 2 * k, :t + 2 * k + 1, :t + 2 * k, :t + 2 * k + 1, :t + 2 * k,"
        "  c.id || ':' || :agent_id"
        " FROM i JOIN conv AS c ON c.n = (2 * i.k) % :convs",
        {"count": jobs, "convs": conversations, "agent_id": agent["id"], "t": t0})
    # The full-text index, as wizd's indexer would have left it.
    db.execute("INSERT INTO messages_fts (rowid, content) SELECT seq, content FROM messages"
               " WHERE seq > (SELECT seq FROM search_indexed)")
    db.execute("UPDATE search_indexed SET seq = (SELECT max(seq) FROM messages)")
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    # A conversation with a long history, and a seq half-way through it.
    target = f"bench-c{conversations // 2:05d}"
    seqs = [r[0] for r in db.execute(
        "SELECT seq FROM messages WHERE source_id = ? ORDER BY seq", (target,))]
    db.close()
    print(f"  built {messages:,} messages / {jobs:,} jobs / {conversations:,} conversations"
          f" in {time.perf_counter() - start:.1f} s ({w.db.stat().st_size / 2**20:.0f} MiB)",
          file=sys.stderr, flush=True)
    return {"wizd": w, "agent": agent, "dm": dm, "conversation": target,
            "after_seq": seqs[len(seqs) // 2]}


def start_up(w: Wizd) -> float:
    """Milliseconds from spawning wizd to its first daemon.status answer."""
    begin = time.perf_counter()
    w.start(wait=False)
    while True:
        try:
            with Conn(w.socket, timeout=5) as c:
                c.call("daemon.status")
            return (time.perf_counter() - begin) * 1000
        except (OSError, EOFError):
            assert w.proc is not None and w.proc.poll() is None, w.log_text()
            time.sleep(0.002)


def timed(conn: Conn, method: str, params: dict[str, Any], calls: int) -> float:
    """The median milliseconds of one call, one at a time."""
    samples = []
    for i in range(WARMUP + calls):
        begin = time.perf_counter()
        conn.call(method, **params)
        if i >= WARMUP:
            samples.append((time.perf_counter() - begin) * 1000)
    return statistics.median(samples)


def send_reply(conn: Conn, dm: str, agent_user: str) -> float:
    """The median milliseconds from message.send to the reply's message.created."""
    conn.call("events.subscribe", conversation_id=dm)
    samples = []
    for i in range(5 + SENDS):
        begin = time.perf_counter()
        conn.send({"jsonrpc": "2.0", "id": f"s{i}", "method": "message.send",
                   "params": {"conversation_id": dm, "content": f"hello {i}"}})
        while True:
            msg = conn.read()
            if "error" in msg:
                raise RuntimeError(msg["error"])
            if (msg.get("method") == "message.created"
                    and msg["params"]["message"]["author_id"] == agent_user):
                break
        if i >= 5:
            samples.append((time.perf_counter() - begin) * 1000)
    return statistics.median(samples)


def one_run(info: dict[str, Any], calls: int) -> dict[str, float]:
    w: Wizd = info["wizd"]
    figures = {"start-up": start_up(w)}
    try:
        with w.connect() as conn:
            cid = info["conversation"]
            first = conn.call("job.list")
            probes: list[tuple[str, str, dict[str, Any]]] = [
                ("daemon.status", "daemon.status", {}),
                ("message.list", "message.list", {"conversation_id": cid}),
                ("message.list after_seq", "message.list",
                 {"conversation_id": cid, "after_seq": info["after_seq"]}),
                ("job.list", "job.list", {}),
                ("job.list status", "job.list", {"status": "completed"}),
                ("job.list before", "job.list", {"before": first["next"]}),
                ("agent.list", "agent.list", {}),
                ("message.send", "message.send", {"conversation_id": cid, "content": "hi"}),
            ]
            for name, method, params in probes:
                figures[name] = timed(conn, method, params, calls)
        with w.connect() as conn:
            figures["send -> reply"] = send_reply(conn, info["dm"], info["agent"]["user_id"])
    finally:
        w.stop()
    return figures


def pruning(info: dict[str, Any]) -> dict[str, float]:
    """Retention on the big database (keep the newest 10,000, a round every
    second): how long it takes, and message.send's round trip meanwhile."""
    w: Wizd = info["wizd"]
    w.env.update(WIZ_KEEP_FINISHED_JOBS="10000", WIZ_PRUNE_INTERVAL="1")
    start_up(w)
    try:
        with w.connect() as conn:
            before = conn.call("daemon.status")["queue"]["completed"]
            begin = time.perf_counter()
            samples: list[float] = []
            while conn.call("daemon.status")["queue"]["completed"] > 10_000 + len(samples):
                for _ in range(20):
                    t = time.perf_counter()
                    conn.call("message.send", conversation_id=info["conversation"],
                              content="during pruning")
                    samples.append((time.perf_counter() - t) * 1000)
            took = time.perf_counter() - begin
    finally:
        w.stop()
        for name in ("WIZ_KEEP_FINISHED_JOBS", "WIZ_PRUNE_INTERVAL"):
            w.env.pop(name)
    ordered = sorted(samples)
    return {"pruned": before - 10_000, "seconds": took, "sends": len(samples),
            "send median": ordered[len(ordered) // 2],
            "send p99": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]}


def sizes(text: str) -> tuple[int, int, int]:
    messages, jobs, conversations = (int(part) for part in text.split(","))
    return messages, jobs, conversations


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--backend", default="trio", choices=("trio", "asyncio"))
    parser.add_argument("--small", type=sizes, default=(10_000, 5_000, 10))
    parser.add_argument("--big", type=sizes, default=(1_000_000, 500_000, 1_000))
    parser.add_argument("--prune-only", action="store_true",
                        help="build the big database and time retention only")
    args = parser.parse_args()

    if args.prune_only:
        with tempfile.TemporaryDirectory(prefix="wiz-history-") as tmp:
            messages, jobs, conversations = args.big
            prune = pruning(build(Path(tmp) / "big", messages, jobs, conversations, args.backend))
        print_pruning(prune)
        return
    with tempfile.TemporaryDirectory(prefix="wiz-history-") as tmp:
        dbs = {name: build(Path(tmp) / name, shape[0], shape[1], shape[2], args.backend)
               for name, shape in (("small", args.small), ("big", args.big))}
        results: dict[str, list[dict[str, float]]] = {"small": [], "big": []}
        for run in range(args.runs):
            for name, info in dbs.items():  # alternated, so that load hits both alike
                results[name].append(one_run(info, args.calls))
                print(f"  run {run + 1} {name}: " + ", ".join(
                    f"{k} {v:.2f}" for k, v in results[name][-1].items()),
                    file=sys.stderr, flush=True)
        prune = pruning(dbs["big"])

    med = {name: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
           for name, runs in results.items()}
    (m1, j1, c1), (m2, j2, c2) = args.small, args.big
    print(f"\nwizd on {args.backend}, medians of {args.runs} runs (ms);"
          f" small: {m1:,} messages / {j1:,} jobs / {c1:,} conversations,"
          f" big: {m2:,} / {j2:,} / {c2:,}")
    print("| figure | small | big | big/small | within 2x |")
    print("| --- | ---: | ---: | ---: | --- |")
    for key in med["small"]:
        small, big = med["small"][key], med["big"][key]
        ratio = big / small
        print(f"| {key} | {small:.2f} | {big:.2f} | {ratio:.2f}x |"
              f" {'met' if ratio <= 2 else 'not met'} |")
    print_pruning(prune)


def print_pruning(prune: dict[str, float]) -> None:
    print(f"\nretention on the big database: ~{prune['pruned']:,.0f} finished jobs pruned"
          f" (to the newest 10,000) in {prune['seconds']:.1f} s (the first round starts 1 s"
          f" after start-up); {prune['sends']:,.0f} message.send meanwhile:"
          f" median {prune['send median']:.2f} ms,"
          f" p99 {prune['send p99']:.2f} ms")


if __name__ == "__main__":
    main()
