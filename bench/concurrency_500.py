"""500 conversations at once against a slow model: the scheduler's concurrency.

    .venv/bin/python bench/concurrency_500.py [--conversations 500] [--concurrency 50]
        [--delay 1.0] [--runs 3] [--backend trio|asyncio]

A real ``wizd`` (``WIZ_CONCURRENCY``) and a scripted OpenAI-compatible server on
127.0.0.1 that answers every request after ``delay`` seconds. One agent, one DM
per conversation; after one warm-up reply, one message is sent in each
(pipelined on one connection, sent by a thread while the main thread reads,
as a client must: wizd stops reading from a connection with 64 calls in
flight until their answers can be written), and the clock runs until the 500th reply's
``message.created`` arrives.

The floor is ``ceil(conversations / concurrency) * delay`` (10 s for the
defaults); the target is under 11 s.

Each run prints its time and the most
requests the server saw at once; the table shows the median of the runs.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.daemon import Wizd  # noqa: E402
from tests.support.openai_server import (  # noqa: E402
    RecordedRequest,
    Reply,
    ThreadedOpenAIServer,
    echo,
    openai_server_in_thread,
)


def one_run(
    base: Path, server: ThreadedOpenAIServer, args: argparse.Namespace
) -> tuple[float, int]:
    env = {"WIZ_CONCURRENCY": str(args.concurrency)}
    w = Wizd(base, extra_args=["--log-level", "warning", "--backend", args.backend], env=env)
    w.start(fork=False)  # as users run it: python -m wizd
    try:
        provider = w.call("provider.create", name="slow", type="openai", default_model="gpt-test",
                          base_url=server.base_url)
        agent = w.call("agent.create", name="ada", role="r", backstory="b", goal="g",
                       provider_id=provider["id"])
        with w.connect() as conn:
            dms = [conn.call("dm.create", participants=[agent["id"]])["id"]
                   for _ in range(args.conversations)]
            conn.call("events.subscribe")
            # Warm up: the first reply imports the provider (the openai SDK, about
            # a second); that one-off is not what this measures.
            warm = conn.call("dm.create", participants=[agent["id"]])["id"]
            conn.call("message.send", conversation_id=warm, content="warm up")
            while True:
                note = conn.notification("message.created")
                if note["params"]["message"]["author_id"] == agent["user_id"]:
                    break
            start = time.perf_counter()

            def send_all() -> None:
                for i, dm in enumerate(dms):
                    conn.send({"jsonrpc": "2.0", "id": f"send-{i}", "method": "message.send",
                               "params": {"conversation_id": dm, "content": f"question {i}"}})

            sender = threading.Thread(target=send_all)
            sender.start()
            replies = 0
            while replies < args.conversations:
                msg: dict[str, Any] = conn.read()
                if "error" in msg:
                    raise RuntimeError(json.dumps(msg))
                if (msg.get("method") == "message.created"
                        and msg["params"]["message"]["author_id"] == agent["user_id"]):
                    replies += 1
            elapsed = time.perf_counter() - start
            sender.join()
        jobs = w.call("job.list", limit=args.conversations + 1)["jobs"]
        retried = sum(1 for job in jobs if job["attempts"] > 1)
        if retried:
            reasons = {line.split(": ", 1)[-1] for line in w.log_text().splitlines()
                       if "retrying in" in line}
            print(f"  note: {retried} jobs needed more than one attempt: "
                  f"{'; '.join(sorted(reasons)[:3])}", flush=True)
        return elapsed, server.max_concurrent
    finally:
        w.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--delay", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backend", default="trio", choices=["trio", "asyncio"])
    args = parser.parse_args()

    def slow(request: RecordedRequest) -> Reply:
        reply = echo(request)
        reply.delay = args.delay
        return reply

    floor = math.ceil(args.conversations / args.concurrency) * args.delay
    times = []
    with tempfile.TemporaryDirectory() as tmp, openai_server_in_thread(default=slow) as server:
        for run in range(args.runs):
            server.server.max_concurrent = 0
            elapsed, peak = one_run(Path(tmp) / f"run-{run}", server, args)
            times.append(elapsed)
            print(f"run {run + 1}: {elapsed:6.2f} s, at most {peak} requests at once", flush=True)
    print(f"\n{args.conversations} conversations, model answering in {args.delay:g} s, "
          f"concurrency {args.concurrency}, wizd on {args.backend}")
    print(f"floor {floor:.1f} s; median of {args.runs} runs: {statistics.median(times):.2f} s "
          f"(min {min(times):.2f}, max {max(times):.2f})")


if __name__ == "__main__":
    main()
