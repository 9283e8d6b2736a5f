"""Chaos for tool-using replies: many turns, each calling a tool with a side
effect, while wizd is killed with SIGKILL at random moments; then count what
durability promises never happens.

    .venv/bin/python bench/tool_chaos.py [--turns 200] [--kills 100] [--dms 10]
        [--seed 1] [--backend trio|asyncio]

A real ``wizd`` (restarted after each kill), the test MCP server
(tests/support/mcp_server.py) as its subprocess, and the scripted
OpenAI-compatible server (tests/support/openai_server.py) as the model: to a
user message it answers with two parallel calls, ``count`` (not idempotent:
it appends the turn's label to a file, then takes 300 ms) and ``echo``
(marked idempotent); to the tool results, with a text answer streamed in
pieces 50 ms apart. ``--turns`` messages are sent, spread over ``--dms``
conversations, and wizd is killed every 1 to 4 s (random, ``--seed``; a
restarted wizd imports the MCP and OpenAI libraries before its first step)
until every reply job has finished and at least ``--kills`` kills happened
(or the turns ran out of work to kill: then it says so).

After each kill, before the restart, the database says where it landed:
inside a tool call (a call marked started, not done), between a tool's end
and the model's next answer (a step whose calls are all done, no reply yet),
or elsewhere. At the end, from the counter file and the database:

- duplicated side effects: a turn whose ``count`` ran more than once
  (target 0);
- lost turns: a message with no reply from its agent (target 0);
- duplicated replies: a message with more than one (target 0);
- calls whose outcome was unknown (in flight at a kill, not run again: the
  model was told), for information.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.mcp.helpers import server_command  # noqa: E402
from tests.support.daemon import Wizd  # noqa: E402
from tests.support.openai_server import (  # noqa: E402
    Call,
    RecordedRequest,
    Reply,
    openai_server_in_thread,
)


def model(request: RecordedRequest) -> Reply:
    """Two parallel calls for a user message; a text answer after the results."""
    messages = (request.body or {}).get("messages") or []
    last = messages[-1] if messages else {}
    if last.get("role") == "user":
        label = str(last.get("content"))
        return Reply(tool_calls=[Call("t__count", {"label": label, "sleep": 0.3}),
                                 Call("t__echo", {"text": label})])
    user = next(m for m in reversed(messages) if m.get("role") == "user")
    return Reply(text=f"done with {user['content']} after my tools", chunk_delay=0.05)


def where_killed(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        if conn.execute("SELECT 1 FROM llm_messages WHERE tool_state = 'started'").fetchone():
            return "inside a tool call"
        between = conn.execute(
            "SELECT 1 FROM jobs AS j JOIN llm_messages AS s ON s.job_id = j.id"
            " WHERE j.status = 'active' AND s.role = 'tool' GROUP BY j.id"
            " HAVING sum(s.tool_state != 'done') = 0 AND count(*) = 2").fetchone()
        return "between a tool's end and the next model call" if between else "elsewhere"


def unfinished(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM jobs WHERE status NOT IN"
                                " ('completed', 'failed')").fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--dms", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--backend", default="trio")
    args = parser.parse_args()
    rng = random.Random(args.seed)

    with tempfile.TemporaryDirectory(prefix="wiz-chaos-") as tmp, \
            openai_server_in_thread(default=model) as srv:
        base = Path(tmp)
        w = Wizd(base / "wizd", env={"WIZ_BACKEND": args.backend, "WIZ_BACKOFF_BASE": "0.01",
                                     "WIZ_BACKOFF_CAP": "0.05"}).start()
        try:
            w.call("mcp.add", name="t", command=server_command(base), idempotent=["echo"])
            provider = w.call("provider.create", name="m", type="openai",
                              default_model="gpt-test", base_url=srv.base_url, api_key="sk-x")
            agents: list[dict[str, Any]] = []
            dms: list[str] = []
            for i in range(args.dms):
                agent = w.call("agent.create", name=f"a{i}", role="r", backstory="b", goal="g",
                               provider_id=provider["id"], tools=["t.*"])
                agents.append(agent)
                dms.append(w.call("dm.create", participants=[agent["id"]])["id"])
            w.call("queue.pause")
            sent: dict[str, tuple[str, dict[str, Any]]] = {}  # label -> (dm, agent)
            for turn in range(args.turns):
                label = f"turn-{turn}"
                dm = dms[turn % len(dms)]
                w.call("message.send", conversation_id=dm, content=label)
                sent[label] = (dm, agents[turn % len(dms)])
            w.call("queue.resume")

            started = time.monotonic()
            places: Counter[str] = Counter()
            while unfinished(w.db) and sum(places.values()) < args.kills:
                time.sleep(rng.uniform(1.0, 4.0))
                w.kill()
                places[where_killed(w.db)] += 1
                w.start()
            kills = sum(places.values())
            while unfinished(w.db):
                time.sleep(0.1)
            elapsed = time.monotonic() - started

            counts = Counter((base / "counter").read_text().splitlines())
            replies: Counter[str] = Counter()
            lost = 0
            for label, (dm, agent) in sent.items():
                messages = w.call("message.list", conversation_id=dm, limit=200)["messages"]
                trigger = next(m for m in messages if m["content"] == label)
                mine = [m for m in messages if m["reply_to"] == trigger["id"]
                        and m["author_id"] == agent["user_id"] and m["kind"] == "text"]
                replies[label] = len(mine)
                lost += not mine
            with sqlite3.connect(w.db) as conn:
                unknown = conn.execute("SELECT count(*) FROM llm_messages WHERE role = 'tool'"
                                       " AND content LIKE 'the outcome of this call is unknown%'"
                                       ).fetchone()[0]
        finally:
            w.close()

    print(f"{args.turns} turns, {kills} kills in {elapsed:.1f} s ({args.backend})")
    for place, n in places.most_common():
        print(f"  killed {place}: {n}")
    print(f"duplicated side effects (count ran twice for a turn): "
          f"{sum(1 for n in counts.values() if n > 1)}")
    print(f"side effects lost (count never ran; its call's outcome unknown): "
          f"{sum(1 for label in sent if counts[label] == 0)}")
    print(f"lost turns (no reply): {lost}")
    print(f"duplicated replies: {sum(1 for n in replies.values() if n > 1)}")
    print(f"calls whose outcome was unknown (model told): {unknown}")
    if kills < args.kills:
        print(f"note: the work ran out after {kills} kills; give more --turns for more")


if __name__ == "__main__":
    main()
