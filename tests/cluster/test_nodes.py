"""Three wizd nodes on one PostgreSQL (issue 13): writers racing on every
node, a node killed mid-run, a server that goes away. Real processes, a real
PostgreSQL server (tests/support/postgres.py), a real OpenAI-protocol server
for the agents."""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.cluster.nodes import Recorder, node, nodes, recorders
from tests.support import postgres
from tests.support.daemon import RpcFailure, Wizd, wait_for
from tests.support.openai_server import RecordedRequest, Reply, echo, openai_server_in_thread


@pytest.fixture
def url() -> Iterator[str]:
    with postgres.database(migrated=False) as found:
        yield found


def stored(w: Wizd, conversations: list[str]) -> list[dict[str, Any]]:
    """Every message of ``conversations``, in seq order."""
    found: list[dict[str, Any]] = []
    for cid in conversations:
        found += w.call("message.list", conversation_id=cid, limit=1000)["messages"]
    return sorted(found, key=lambda m: m["seq"])


def check_recorded(rec: Recorder, every: list[dict[str, Any]]) -> None:
    """The recorder got every stored message once, in seq order, no gap."""
    seqs = rec.seqs()
    assert seqs == sorted(set(seqs)), "out of order or twice"
    assert seqs == [m["seq"] for m in every]


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
def test_writers_on_three_nodes_every_subscriber_sees_every_message_once_in_order(
    tmp_path: Path, url: str, backend: str
) -> None:
    with nodes(tmp_path, url, 3, backend=backend) as ws:
        agent = ws[0].call("agent.create", name="ada", role="r", backstory="b", goal="g")
        dms = [ws[0].call("dm.create", participants=[agent["id"]])["id"] for _ in range(6)]
        with recorders(ws) as recs:
            def send(w: Wizd, count: int) -> None:
                with w.connect() as conn:
                    for i in range(count):
                        conn.call("message.send", conversation_id=dms[i % len(dms)],
                                  content=f"{w.base.name} {i}")

            senders = [threading.Thread(target=send, args=(w, 40)) for w in ws]
            for t in senders:
                t.start()
            for t in senders:
                t.join()
            # Each human message and its offline reply.
            wait_for(lambda: len(stored(ws[0], dms)) == 2 * 3 * 40, timeout=60)
            every = stored(ws[1], dms)
            for rec in recs:
                wait_for(lambda rec=rec: len(rec.messages) >= len(every), timeout=30)
                check_recorded(rec, every)
        replies = [m for m in every if m["author_id"] == agent["user_id"]]
        assert sorted(m["reply_to"] for m in replies) == sorted(
            m["id"] for m in every if m["author_id"] != agent["user_id"])
        status = ws[2].call("daemon.status")
        assert status["last_seq"] == every[-1]["seq"]
        assert {n["id"] for n in status["nodes"] if n["alive"]} == {"n1", "n2", "n3"}
        shown = subprocess.run([sys.executable, "-m", "wizctl", "status"], capture_output=True,
                               text=True, timeout=60, env={**ws[2].env, "WIZ_SOCKET": str(
                                   ws[2].socket), "NO_COLOR": "1"})
        assert "nodes:    n1, n2, n3 (this one)" in shown.stdout, shown.stdout + shown.stderr


def running_on(url: str, node_id: str) -> int:
    """How many jobs node ``node_id`` runs (read from the database itself)."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM jobs WHERE status = 'active'"
                           " AND locked_by = %s", (node_id,)).fetchone()
    return int(row[0]) if row else 0


def _slow(request: RecordedRequest) -> Reply:
    answer = echo(request)
    answer.delay = 1.0
    return answer


def test_a_node_killed_mid_run_loses_nothing_and_replies_once(tmp_path: Path, url: str) -> None:
    """300 conversations on three nodes, an agent answering in 1 s; one node
    is killed while it runs jobs: the others take them back once its lease
    lapses, and every message gets exactly one reply, seen once, in order, by
    the subscribers of the nodes left."""
    with openai_server_in_thread(default=_slow) as srv, \
            nodes(tmp_path, url, 3, "--lease", "2", "--concurrency", "50") as ws:
        ws[0].call("provider.create", name="slow", type="openai", default_model="gpt-test",
                   base_url=srv.base_url, api_key="sk-test")
        agent = ws[0].call("agent.create", name="ada", role="r", backstory="b", goal="g",
                           provider_id="slow")
        with ws[0].connect() as conn:
            dms = [conn.call("dm.create", participants=[agent["id"]])["id"]
                   for _ in range(300)]
        with recorders(ws) as recs:
            def send(w: Wizd, mine: list[str]) -> None:
                with w.connect() as conn:
                    for cid in mine:
                        conn.call("message.send", conversation_id=cid, content=f"to {cid}")

            senders = [threading.Thread(target=send, args=(w, dms[i::3]))
                       for i, w in enumerate(ws)]
            for t in senders:
                t.start()
            # Once the third node has sent its share, kill it in the middle of
            # the replies it runs (a node claims what it queued itself first).
            senders[2].join()
            wait_for(lambda: running_on(url, "n3") >= 1, timeout=30)
            ws[2].kill()
            for t in senders[:2]:
                t.join()
            left, survivors = ws[:2], recs[:2]
            wait_for(lambda: len(stored(left[0], dms)) >= 600, timeout=90)
            every = stored(left[1], dms)
            for rec in survivors:
                wait_for(lambda rec=rec: len(rec.messages) >= len(every), timeout=30)
                check_recorded(rec, every)
        humans = [m for m in every if m["author_id"] != agent["user_id"]]
        replies = [m for m in every if m["author_id"] == agent["user_id"]]
        assert len(humans) == 300 and len(replies) == 300
        assert sorted(m["reply_to"] for m in replies) == sorted(m["id"] for m in humans)
        assert all(m["content"].startswith("echo: to ") for m in replies), "an error reply"
        # The killed node's jobs ran again elsewhere (those it had asked the
        # model already were asked again).
        assert len(srv.requests) >= 300
        for w in left:
            log = w.log_text()
            assert "Traceback" not in log
        assert any("took back" in w.log_text() for w in left)
        status = left[0].call("daemon.status")
        assert status["queue"]["completed"] == 300 and status["queue"]["active"] == 0
        assert {n["id"]: n["alive"] for n in status["nodes"]} == {
            "n1": True, "n2": True, "n3": False}


def test_nodes_cut_off_from_postgresql_reconnect_by_themselves(tmp_path: Path) -> None:
    """The server stops for 10 s: calls meanwhile fail with a clear error and
    store nothing; once it is back both nodes serve again by themselves, and
    a subscriber on one node sees every message, also those the other stored.
    A reply running through the outage (every lease lapsed meanwhile) is
    left to its node: not taken back, asked of the model once."""
    def slow_answer(request: RecordedRequest) -> Reply:
        answer = echo(request)
        answer.delay = 14.0
        return answer

    with tempfile.TemporaryDirectory(prefix="wiz-pg-own-", ignore_cleanup_errors=True) as folder, \
            postgres.private_server(Path(folder)) as server, \
            openai_server_in_thread(default=slow_answer) as srv:
        url = server.create(migrated=False)
        with nodes(tmp_path, url, 2, "--lease", "2") as ws:
            agent = ws[0].call("agent.create", name="ada", role="r", backstory="b", goal="g")
            dm = ws[0].call("dm.create", participants=[agent["id"]])["id"]
            ws[0].call("provider.create", name="slow", type="openai", default_model="gpt-test",
                       base_url=srv.base_url, api_key="sk-test")
            slow = ws[0].call("agent.create", name="bo", role="r", backstory="b", goal="g",
                              provider_id="slow")
            slow_dm = ws[0].call("dm.create", participants=[slow["id"]])["id"]
            with recorders([ws[1]]) as (rec,):
                ws[0].call("message.send", conversation_id=dm, content="before")
                wait_for(lambda: len(stored(ws[1], [dm])) == 2)
                ws[0].call("message.send", conversation_id=slow_dm, content="through it")
                srv.wait_for_requests(1)
                server.stop(keep=True)
                # The outage the issue names: every call fails, clearly, on both nodes.
                end = time.monotonic() + 10
                refused = 0
                while time.monotonic() < end:
                    for w in ws:
                        with pytest.raises(RpcFailure) as info:
                            w.call("message.send", conversation_id=dm, content="lost")
                        assert "storage unavailable" in str(info.value.message)
                        refused += 1
                    time.sleep(0.5)
                server.start_again()

                def sends_again(w: Wizd) -> bool:
                    try:
                        w.call("message.send", conversation_id=dm, content=f"after {w.base.name}")
                    except RpcFailure:
                        return False
                    return True

                for w in ws:
                    wait_for(lambda w=w: sends_again(w), timeout=30)
                wait_for(lambda: len(stored(ws[0], [dm])) == 6, timeout=30)
                every = stored(ws[0], [dm])
                replied = wait_for(lambda: stored(ws[1], [slow_dm])[1:], timeout=30)
                assert replied[0]["content"] == "echo: through it"
                every = stored(ws[0], [dm, slow_dm])
                wait_for(lambda: len(rec.messages) >= len(every), timeout=30)
                check_recorded(rec, every)
        assert len(srv.requests) == 1
        assert not any("took back" in w.log_text() for w in ws)
        assert refused >= 2
        assert [m["content"] for m in every if m["author_id"] not in (
            agent["user_id"], slow["user_id"])] == ["before", "through it", "after n1", "after n2"]


def test_a_cancel_and_a_pause_reach_every_node(tmp_path: Path, url: str) -> None:
    """job.cancel on one node cancels the job another node runs; queue.pause
    on one node stops every node from starting jobs, queue.resume starts
    them again."""
    with openai_server_in_thread(default=Reply(hang=True)) as srv:
        first = node(tmp_path, url, "n1").start()
        second = node(tmp_path, url, "n2")
        try:
            first.call("provider.create", name="hangs", type="openai",
                       default_model="gpt-test", base_url=srv.base_url, api_key="sk-test")
            agent = first.call("agent.create", name="ada", role="r", backstory="b", goal="g",
                               provider_id="hangs")
            dm = first.call("dm.create", participants=[agent["id"]])["id"]
            job_id = first.call("message.send", conversation_id=dm, content="hi")["jobs"][0]
            srv.wait_for_requests(1)  # n1 runs it: n2 is not started yet
            second.start()
            cancelled = second.call("job.cancel", id=job_id)
            assert (cancelled["status"], cancelled["failure_reason"]) == ("failed", "cancelled")
            srv.wait_idle()  # n1 hung up on the model
            texts = [m["content"] for m in stored(second, [dm])]
            assert texts[0] == "hi" and "did not reply" in texts[1]

            srv.enqueue(Reply(text="after the pause"))
            first.call("queue.pause")
            queued = second.call("message.send", conversation_id=dm, content="again")["jobs"][0]
            assert second.call("job.get", id=queued)["status"] == "paused"
            second.call("queue.resume")
            wait_for(lambda: first.call("job.get", id=queued)["status"] == "completed")
            assert stored(first, [dm])[-1]["content"] == "after the pause"
            assert len(srv.requests) == 2
        finally:
            first.close()
            second.close()


def test_an_event_longer_than_a_notification_reaches_the_other_node_whole(
    tmp_path: Path, url: str
) -> None:
    """A model that sends its whole answer in one piece: the message.delta
    (over 100 KB of JSON, far past PostgreSQL's 8,000-byte notification) that
    the node running the job publishes reaches the other node's subscriber
    whole, before the reply's message.created, like its own subscriber's."""
    answer = "ü " * 10_000
    with openai_server_in_thread(default=Reply(text=answer, chunks=[answer])) as srv, \
            nodes(tmp_path, url, 2, "--lease", "2") as ws:
        # Each node relays its events once it has seen the other alive.
        wait_for(lambda: all(sum(n["alive"] for n in w.call("daemon.status")["nodes"]) == 2
                             for w in ws))
        ws[0].call("provider.create", name="big", type="openai", default_model="gpt-test",
                   base_url=srv.base_url, api_key="sk-test")
        agent = ws[0].call("agent.create", name="ada", role="r", backstory="b", goal="g",
                           provider_id="big")
        dm = ws[0].call("dm.create", participants=[agent["id"]])["id"]
        conns = [w.connect() for w in ws]
        try:
            for conn in conns:
                conn.call("events.subscribe", conversation_id=dm)
            ws[1].call("message.send", conversation_id=dm, content="say a lot")
            for conn in conns:
                deltas, _ = conn.streamed_reply(agent["user_id"])
                assert "".join(deltas) == answer
        finally:
            for conn in conns:
                conn.close()


def test_nodes_starting_together_on_a_new_database_make_one_of_each(
    tmp_path: Path, url: str
) -> None:
    """The first start creates the schema, the local user and the built-in
    provider once, however many nodes start at the same moment."""
    ws = [node(tmp_path, url, f"n{i}") for i in range(3)]
    try:
        for w in ws:
            w.start(wait=False)
        for w in ws:
            w.wait_ready()
        assert len({w.call("user.me")["id"] for w in ws}) == 1
        providers = ws[0].call("provider.list")["providers"]
        assert [p["name"] for p in providers] == ["offline"]
    finally:
        for w in ws:
            w.close()
