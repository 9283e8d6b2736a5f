"""Agent replies in process: message.send -> reply processor -> outcome
handler, against a real SQLite file and a real OpenAI-compatible HTTP server
on 127.0.0.1 (tests/support/openai_server.py)."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
import trio
import trio.testing
from sqlalchemy import text
from trio.testing import MockClock

from tests.jobs.helpers import SECRET, Harness, harness
from tests.support.openai_server import RecordedRequest, Reply, echo, openai_server
from wizd.errors import Conflict
from wizd.jobs import queue
from wizd.objects import Agent
from wizd.replies import storing
from wizd.services import agents
from wizd.services.messages import insert_message


class Script:
    """The server's answers in order (then echoes), and when each request came."""

    def __init__(self, *replies: Reply, after: Callable[[RecordedRequest], Reply] = echo) -> None:
        self.replies = list(replies)
        self.after = after
        self.times: list[float] = []

    def __call__(self, request: RecordedRequest) -> Reply:
        self.times.append(anyio.current_time())
        return self.replies.pop(0) if self.replies else self.after(request)


async def one_agent(h: Harness, base_url: str, **agent: Any) -> tuple[Agent, str]:
    provider_id = await h.provider(base_url)
    ada = await h.agent("ada", provider_id=provider_id, **agent)
    return ada, await h.dm(ada["id"])


def sent_messages(request: RecordedRequest) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in request.body["messages"]]


@pytest.mark.anyio
async def test_reply_with_the_conversation_as_context(tmp_path: Path) -> None:
    async with openai_server() as srv, harness(tmp_path) as h:
        srv.enqueue(Reply(text="Hello, I am Ada."))
        ada, dm = await one_agent(h, srv.base_url, temperature=0.5, max_tokens=99)
        [job_id] = await h.send(dm, "hello there")
        done = await h.events.job(job_id, "completed")

        [request] = srv.requests
        assert request.headers["authorization"] == f"Bearer {SECRET}"
        body = request.body
        assert (body["model"], body["stream"], body["temperature"], body["max_tokens"]) == (
            "gpt-test", True, 0.5, 99)
        assert sent_messages(request) == [("system", ada["system_prompt"]),
                                          ("user", "hello there")]

        trigger, reply = await h.messages(dm)
        assert (reply["author_id"], reply["reply_to"], reply["kind"], reply["content"]) == (
            ada["user_id"], trigger["id"], "text", "Hello, I am Ada.")
        assert done["result"]["message_id"] == reply["id"]
        assert done["result"]["model"] == "gpt-test"
        assert done["result"]["finish_reason"] == "stop"
        assert set(done["result"]["usage"]) == {
            "prompt_tokens", "completion_tokens", "total_tokens"}
        assert await h.llm_messages() == {trigger["id"]: ("user", "hello there"),
                                          reply["id"]: ("assistant", "Hello, I am Ada.")}

        deltas = [e.params for e in h.events.of("message.delta")]
        assert [d["index"] for d in deltas] == list(range(len(deltas)))
        assert "".join(d["delta"] for d in deltas) == reply["content"]
        assert {(d["job_id"], d["author_id"], d["conversation_id"]) for d in deltas} == {
            (job_id, ada["user_id"], dm)}
        created = [e for e in h.events.events if e.method == "message.created"]
        assert [e.seq for e in created] == [trigger["seq"], reply["seq"]]
        # The reply is announced before its job completes; the agent is free after.
        order = [e.method for e in h.events.events
                 if e.method in ("message.created", "agent.status")
                 or (e.method == "job.updated" and e.params["job"]["status"] == "completed")]
        assert order == ["message.created", "agent.status", "message.created", "job.updated",
                         "agent.status"]
        assert [e.params["status"] for e in h.events.of("agent.status")] == ["busy", "active"]
        assert await h.agent_status(ada["id"]) == "active"

        # The next turn sees the first one, its stored llm forms included.
        [job2] = await h.send(dm, "and again?")
        await h.events.job(job2, "completed")
        assert sent_messages(srv.requests[1])[1:] == [
            ("user", "hello there"), ("assistant", "Hello, I am Ada."), ("user", "and again?")]
        assert SECRET not in await h.dump_text()


@pytest.mark.anyio
async def test_the_offline_provider_answers_without_a_network(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        ada = await h.agent("ada")  # the built-in default provider: offline
        dm = await h.dm(ada["id"])
        [job_id] = await h.send(dm, "hi")
        done = await h.events.job(job_id, "completed")
        reply = (await h.messages(dm))[-1]
        assert reply["content"].startswith("[offline demo] I'm ada (Researcher).")
        assert done["result"]["message_id"] == reply["id"]


@pytest.mark.trio
async def test_500_500_then_success(tmp_path: Path, autojump_clock: MockClock) -> None:
    script = Script(Reply(status=500), Reply(status=500), Reply(text="third time lucky"))
    async with openai_server(default=script) as srv, harness(tmp_path) as h:
        ada, dm = await one_agent(h, srv.base_url)
        t0 = trio.current_time()
        [job_id] = await h.send(dm, "hello")
        done = await h.events.job(job_id, "completed")
        # Backoff base 1 s, full jitter pinned at its top: 1 s, then 2 s.
        assert [t - t0 for t in script.times] == pytest.approx([0, 1, 3], abs=1e-3)
        assert done["attempts"] == 3
        replies_ = [m for m in await h.messages(dm) if m["author_id"] == ada["user_id"]]
        assert [m["content"] for m in replies_] == ["third time lucky"]
        # Busy all along: retries do not flap the agent's status.
        assert [e.params["status"] for e in h.events.of("agent.status")] == ["busy", "active"]


@pytest.mark.trio
async def test_429_waits_as_long_as_retry_after_says(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    script = Script(Reply(status=429, headers={"Retry-After": "7"}), Reply(text="ok now"))
    async with openai_server(default=script) as srv, harness(tmp_path) as h:
        _, dm = await one_agent(h, srv.base_url)
        t0 = trio.current_time()
        [job_id] = await h.send(dm, "hello")
        delayed = await h.events.job(job_id, "delayed")
        assert delayed["run_at"] - delayed["processed_on"] == 7000
        await h.events.job(job_id, "completed")
        assert [t - t0 for t in script.times] == pytest.approx([0, 7], abs=1e-3)


@pytest.mark.anyio
async def test_401_fails_at_once_with_an_error_message(tmp_path: Path) -> None:
    async with openai_server() as srv, harness(tmp_path) as h:
        srv.enqueue(Reply(status=401, error=f"Incorrect API key provided: {SECRET}"))
        ada, dm = await one_agent(h, srv.base_url)
        [job_id] = await h.send(dm, "hello")
        failed = await h.events.job(job_id, "failed")
        assert failed["attempts"] == 1 and len(srv.requests) == 1
        assert "HTTP 401" in failed["failure_reason"]
        assert "Incorrect API key" in failed["failure_reason"]
        error = (await h.messages(dm))[-1]
        assert (error["author_id"], error["kind"], error["content"]) == (
            ada["user_id"], "error",
            "Agent ada could not reply: the provider rejected the API key (HTTP 401).")
        assert await h.agent_status(ada["id"]) == "active"
        assert [e.params["status"] for e in h.events.of("agent.status")] == ["busy", "active"]
        # Not in the job, the messages, or anywhere the daemon wrote.
        assert SECRET not in await h.dump_text()
        # An error message is never context: the next request shows only the people.
        srv.enqueue(Reply(text="better"))
        [job2] = await h.send(dm, "try again")
        await h.events.job(job2, "completed")
        assert sent_messages(srv.requests[1])[1:] == [("user", "hello"), ("user", "try again")]


@pytest.mark.trio
async def test_a_hanging_server_times_out_and_the_job_is_retried(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    script = Script(Reply(hang=True), Reply(text="awake"))
    async with openai_server(default=script) as srv, harness(tmp_path, job_timeout=30) as h:
        ada, dm = await one_agent(h, srv.base_url)
        t0 = trio.current_time()
        [job_id] = await h.send(dm, "hello")
        delayed = await h.events.job(job_id, "delayed")
        assert delayed["failure_reason"] == "provider test: no complete answer within 30 s"
        done = await h.events.job(job_id, "completed")
        assert [t - t0 for t in script.times] == pytest.approx([0, 31], abs=1e-3)
        assert done["attempts"] == 2
        assert (await h.messages(dm))[-1]["content"] == "awake"
        await srv.wait_idle()  # the hung request was abandoned, not left open


@pytest.mark.trio
async def test_malformed_sse_fails_clearly_and_job_retry_runs_it_again(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    script = Script(Reply(malformed=True), Reply(malformed=True))
    async with openai_server(default=script) as srv, harness(tmp_path, max_attempts=2) as h:
        ada, dm = await one_agent(h, srv.base_url)
        [job_id] = await h.send(dm, "hello")
        failed = await h.events.job(job_id, "failed")
        assert failed["attempts"] == 2
        trigger, error = await h.messages(dm)
        assert (error["kind"], error["content"], error["reply_to"]) == (
            "error", "Agent ada could not reply: the provider's answer could not be understood.",
            trigger["id"])
        assert await h.agent_status(ada["id"]) == "active"
        retried = await queue.retry(h.rt, job_id)
        assert (retried["status"], retried["attempts"]) == ("waiting", 0)
        await h.events.job(job_id, "completed")
        # The error message points at the trigger too, and does not stop the real reply.
        assert [(m["kind"], m["reply_to"]) for m in await h.messages(dm)] == [
            ("text", None), ("error", trigger["id"]), ("text", trigger["id"])]
        reply = (await h.messages(dm))[-1]
        assert reply["content"] == "echo: hello"
        assert len(srv.requests) == 3
        assert [e.params["status"] for e in h.events.of("agent.status")] == [
            "busy", "active", "busy", "active"]


def slow_echo(request: RecordedRequest) -> Reply:
    """Echo, after a second of (virtual) thinking."""
    reply = echo(request)
    reply.delay = 1.0
    return reply


@pytest.mark.trio
async def test_fifty_conversations_at_once_within_the_concurrency_limit(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    async with openai_server(default=slow_echo) as srv, harness(tmp_path, concurrency=4) as h:
        ada, _ = await one_agent(h, srv.base_url)
        dms = [await h.dm(ada["id"]) for _ in range(50)]
        t0 = trio.current_time()
        jobs = {}
        for i, dm in enumerate(dms):
            [jobs[dm]] = await h.send(dm, f"question {i}")
        for job_id in jobs.values():
            await h.events.job(job_id, "completed")
        elapsed = trio.current_time() - t0
        assert srv.max_concurrent == 4
        assert elapsed == pytest.approx(math.ceil(50 / 4), abs=1e-3)
        for i, dm in enumerate(dms):
            trigger, reply = await h.messages(dm)
            assert reply["reply_to"] == trigger["id"]
            assert reply["content"] == f"echo: question {i}"
        # One agent serving fifty conversations: busy once, free once all are done.
        assert [e.params["status"] for e in h.events.of("agent.status")] == ["busy", "active"]


@pytest.mark.trio
async def test_replies_in_one_conversation_come_in_order(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    async with openai_server(default=slow_echo) as srv, harness(tmp_path, concurrency=8) as h:
        ada, dm = await one_agent(h, srv.base_url)
        for word in ("one", "two", "three"):
            await h.send(dm, word)
        await h.events.wait_for(lambda e: e.method == "message.created"
                                and e.params["message"]["content"] == "echo: three")
        assert srv.max_concurrent == 1
        msgs = await h.messages(dm)
        triggers = {m["id"]: m["content"] for m in msgs if m["author_id"] != ada["user_id"]}
        answers = [(triggers[m["reply_to"] or ""], m["content"]) for m in msgs
                   if m["author_id"] == ada["user_id"]]
        assert answers == [("one", "echo: one"), ("two", "echo: two"), ("three", "echo: three")]
        # Each context ends at its own trigger: the later messages were not there yet.
        assert [sent_messages(r)[-1] for r in srv.requests] == [
            ("user", "one"), ("user", "two"), ("user", "three")]
        assert sent_messages(srv.requests[2])[1:] == [("user", "one"), ("user", "two"),
                                                     ("user", "three")]


@pytest.mark.anyio
async def test_a_second_run_never_replies_twice(tmp_path: Path) -> None:
    async with openai_server() as srv, harness(tmp_path, scheduler=False) as h:
        ada, dm = await one_agent(h, srv.base_url)
        scheduler = await h.start_scheduler()
        [job_id] = await h.send(dm, "hello")
        await h.events.job(job_id, "completed")
        await h.stop_scheduler(scheduler)
        # As if the job had been left unfinished although its reply was stored
        # (the completion is one transaction, so only a bug could do this).
        await h.rt.db.write(lambda c: c.execute(
            text("UPDATE jobs SET status = 'active' WHERE id = :id"), {"id": job_id}))
        await h.start_scheduler()
        done = await h.events.wait_for(
            lambda e: e.method == "job.updated" and e.params["job"]["id"] == job_id
            and e.params["job"]["status"] == "completed"
            and e.params["job"]["result"].get("duplicate"))
        assert len(srv.requests) == 2
        msgs = await h.messages(dm)
        assert [m["author_id"] for m in msgs] == [h.rt.local_user_id, ada["user_id"]]
        assert done.params["job"]["result"]["message_id"] == msgs[1]["id"]


@pytest.mark.anyio
async def test_the_unique_index_backs_the_check_and_the_transaction_survives(
    tmp_path: Path,
) -> None:
    async with harness(tmp_path, scheduler=False) as h:
        ada = await h.agent("ada")
        dm = await h.dm(ada["id"])
        await queue.set_paused(h.rt, True)
        await h.send(dm, "hello")
        trigger = (await h.messages(dm))[0]
        conversation = {"id": dm, "type": "dm"}

        def twice(conn: Any) -> tuple[Any, Any, str]:
            first = storing.store_reply(conn, conversation=conversation,
                                        agent_user_id=ada["user_id"], trigger_id=trigger["id"],
                                        content="one", trigger_llm=None, now_ms=1)
            second = storing.store_reply(conn, conversation=conversation,
                                         agent_user_id=ada["user_id"], trigger_id=trigger["id"],
                                         content="two", trigger_llm=None, now_ms=2)
            try:
                insert_message(conn, conversation=conversation, author_id=ada["user_id"],
                               content="three", reply_to=trigger["id"], now_ms=3)
            except Conflict:
                outcome = "refused"
            else:
                outcome = "stored"
            return first, second, outcome

        first, second, outcome = await h.rt.db.write(twice)
        assert first is not None and second is None and outcome == "refused"
        # The rest of the transaction committed.
        assert [m["content"] for m in await h.messages(dm)] == ["hello", "one"]


@pytest.mark.anyio
async def test_a_job_for_a_deactivated_agent_is_skipped(tmp_path: Path) -> None:
    async with harness(tmp_path) as h:
        ada = await h.agent("ada")
        dm = await h.dm(ada["id"])
        await queue.set_paused(h.rt, True)
        [job_id] = await h.send(dm, "hello")
        await agents.deactivate(h.rt, ada["id"])
        await queue.set_paused(h.rt, False)
        done = await h.events.job(job_id, "completed")
        assert done["result"] == {"skipped": "the agent is inactive"}
        assert len(await h.messages(dm)) == 1
        assert await h.agent_status(ada["id"]) == "inactive"


@pytest.mark.anyio
async def test_cancel_a_waiting_and_a_running_reply(tmp_path: Path) -> None:
    async with openai_server() as srv, harness(tmp_path) as h:
        srv.enqueue(Reply(hang=True))
        ada, dm = await one_agent(h, srv.base_url)
        [running] = await h.send(dm, "first")
        [waiting] = await h.send(dm, "second")  # same conversation: waits its turn
        await srv.wait_for_requests(1)
        assert (await h.job(waiting))["status"] == "waiting"
        cancelled = await queue.cancel(h.rt, waiting)
        assert (cancelled["status"], cancelled["failure_reason"]) == ("failed", "cancelled")
        cancelled = await queue.cancel(h.rt, running)
        assert (cancelled["status"], cancelled["failure_reason"]) == ("failed", "cancelled")
        await srv.wait_idle()  # the provider call was abandoned
        errors = [m["content"] for m in await h.messages(dm) if m["kind"] == "error"]
        assert errors == ["Agent ada did not reply: the reply was cancelled."] * 2
        assert await h.agent_status(ada["id"]) == "active"
        assert len(srv.requests) == 1


def signed_echo(request: RecordedRequest) -> Reply:
    """``<agent>: heard <last user turn>``, the agent's name taken from its prompt."""
    system = request.body["messages"][0]["content"]
    name = system.split("\n")[0].removeprefix("You are ").rstrip(".")
    return Reply(text=f"{name} heard {request.body['messages'][-1]['content']}")


@pytest.mark.anyio
async def test_two_agents_see_each_other_as_named_users(tmp_path: Path) -> None:
    async with openai_server(default=signed_echo) as srv, harness(tmp_path) as h:
        provider_id = await h.provider(srv.base_url)
        ada = await h.agent("ada", provider_id=provider_id)
        bob = await h.agent("bob", provider_id=provider_id)
        dm = await h.dm(ada["id"], bob["id"])
        for content in ("hi all", "again"):
            jobs = await h.send(dm, content)
            assert len(jobs) == 2
            for job_id in jobs:
                await h.events.job(job_id, "completed")
        msgs = await h.messages(dm)
        assert len(msgs) == 6
        ada_first = next(m["content"] for m in msgs if m["author_id"] == ada["user_id"])
        bob_first = next(m["content"] for m in msgs if m["author_id"] == bob["user_id"])
        bob_request = next(r for r in srv.requests[2:]
                           if r.body["messages"][0]["content"].startswith("You are bob"))
        turns = sent_messages(bob_request)[1:]
        # Ada's reply reaches Bob as a named user turn, his own as his (assistant).
        assert len(turns) == 4
        assert turns[0] == ("user", "hi all")
        assert set(turns[1:3]) == {("user", f"ada: {ada_first}"), ("assistant", bob_first)}
        assert turns[3][0] == "user" and turns[3][1].endswith(": again")
