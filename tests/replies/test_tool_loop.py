"""The tool loop of reply jobs in process: a real SQLite file, the scripted
OpenAI-compatible server (tests/support/openai_server.py) calling tools, and
the real test MCP server (tests/support/mcp_server.py, a subprocess).

Trio's MockClock going at the rate of real time, without autojump (which
would jump over the MCP server's real work into timeouts); a test that
wants a timeout jumps the clock once the call is under way
(``wait_all_tasks_blocked``).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import sniffio
import sqlalchemy
import trio
import trio.testing
from sqlalchemy import Connection, text

from tests.jobs.helpers import Harness, harness
from tests.mcp.helpers import server_command
from tests.support.openai_server import Call, OpenAIServer, RecordedRequest, Reply, openai_server
from wizd.errors import Conflict
from wizd.jobs import queue
from wizd.objects import Agent
from wizd.replies import approvals
from wizd.replies.tool_loop import TOOL_TIMEOUT, UNKNOWN, UNKNOWN_AFTER
from wizd.services import mcp
from wizd.services.mcp import McpServerCreate
from wizd.store import steps as step_store

pytestmark = pytest.mark.trio


@asynccontextmanager
async def setup(tmp_path: Path, *, tools: list[str] | None = None, max_steps: int | None = None,
                **server: Any) -> AsyncIterator[tuple[Harness, OpenAIServer, Agent, str]]:
    """A harness with wizd's MCP manager running, the test server registered
    as ``t``, and agent ada (allowed ``tools``, default every tool of t) in a DM."""
    if sniffio.current_async_library() == "trio":
        clock = trio.lowlevel.current_clock()
        assert isinstance(clock, trio.testing.MockClock)
        clock.rate = 1.0
    async with openai_server() as srv, harness(tmp_path) as h:
        await h.tg.start(h.rt.mcp.run)
        await mcp.add(h.rt, McpServerCreate(name="t", command=server_command(tmp_path),
                                            **server))
        provider_id = await h.provider(srv.base_url)
        extra: dict[str, Any] = {"tools": ["t.*"] if tools is None else tools}
        if max_steps is not None:
            extra["max_steps"] = max_steps
        ada = await h.agent("ada", provider_id=provider_id, **extra)
        yield h, srv, ada, await h.dm(ada["id"])


def roles(request: RecordedRequest) -> list[str]:
    return [m["role"] for m in request.body["messages"]]


def counted(tmp_path: Path) -> int:
    counter = tmp_path / "counter"
    return len(counter.read_text().splitlines()) if counter.exists() else 0


@pytest.mark.parametrize("plain", [False, True], ids=["sse", "json"])
async def test_one_tool_call_then_an_answer(tmp_path: Path, mock_clock: Any, plain: bool
                                            ) -> None:
    async with setup(tmp_path) as (h, srv, ada, dm):
        srv.enqueue(Reply(tool_calls=[Call("t__echo", {"text": "hello"}, id="c1")], plain=plain),
                    Reply(text="The tool said hello.", plain=plain))
        [job_id] = await h.send(dm, "use echo")
        done = await h.events.job(job_id, "completed")

        first, second = srv.requests
        offered = {t["function"]["name"]: t["function"] for t in first.body["tools"]}
        assert set(offered) == {"t__echo", "t__count", "t__hang", "t__crash", "t__big",
                                "t__secret"}
        assert offered["t__echo"]["parameters"]["required"] == ["text"]
        assert roles(second) == ["system", "user", "assistant", "tool"]
        turn, result = second.body["messages"][2:]
        assert turn["tool_calls"] == [{"id": "c1", "type": "function", "function": {
            "name": "t__echo", "arguments": '{"text": "hello"}'}}]
        assert result == {"role": "tool", "content": "hello", "tool_call_id": "c1"}

        reply = (await h.messages(dm))[-1]
        assert reply["content"] == "The tool said hello."
        assert done["result"]["message_id"] == reply["id"]
        # The reply's usage is the whole turn's: both model calls.
        prompts = [sum(len(str(m.get("content", "")).split()) for m in r.body["messages"])
                   for r in (first, second)]
        assert done["result"]["usage"]["prompt_tokens"] == sum(prompts)
        started, = [e.params for e in h.events.of("tool.started")]
        finished, = [e.params for e in h.events.of("tool.finished")]
        assert (started["name"], started["arguments"], started["job_id"]) == (
            "t.echo", {"text": "hello"}, job_id)
        assert (finished["name"], finished["outcome"], finished["result"]) == (
            "t.echo", "ok", "hello")

        rows = await h.rt.db.read(step_store.of_job, job_id)
        assert [(r.step, r.position, r.role, r.tool_state) for r in rows] == [
            (1, 0, "assistant", None), (1, 1, "tool", "done")]

        # The next turn remembers the call and its result.
        srv.enqueue(Reply(text="again"))
        [job2] = await h.send(dm, "and now?")
        await h.events.job(job2, "completed")
        assert roles(srv.requests[2]) == ["system", "user", "assistant", "tool", "assistant",
                                          "user"]


async def test_parallel_calls_run_and_answer_in_order(tmp_path: Path, mock_clock: Any) -> None:
    async with setup(tmp_path) as (h, srv, ada, dm):
        srv.enqueue(Reply(tool_calls=[Call("t__count", id="a"),
                                      Call("t__echo", {"text": "two"}, id="b")]),
                    Reply(text="done"))
        [job_id] = await h.send(dm, "both")
        await h.events.job(job_id, "completed")
        results = [(m["tool_call_id"], m["content"]) for m in srv.requests[1].body["messages"]
                   if m["role"] == "tool"]
        assert results == [("a", "1"), ("b", "two")]
        assert counted(tmp_path) == 1


async def test_a_call_id_repeated_in_a_later_step_gets_an_id_of_its_own(
        tmp_path: Path, mock_clock: Any) -> None:
    """Calls are stored and found by id: a model (or a server sending no ids)
    that repeats an earlier step's id must not make the later call overwrite
    the earlier one's row, nor lose its own."""
    async with setup(tmp_path) as (h, srv, ada, dm):
        srv.enqueue(Reply(tool_calls=[Call("t__echo", {"text": "one"}, id="x")]),
                    Reply(tool_calls=[Call("t__echo", {"text": "two"}, id="x")]),
                    Reply(text="done"))
        [job_id] = await h.send(dm, "twice")
        await h.events.job(job_id, "completed")
        rows = [(r.step, r.position, r.tool_state, r.content)
                for r in await h.rt.db.read(step_store.of_job, job_id) if r.role == "tool"]
        assert rows == [(1, 1, "done", "one"), (2, 1, "done", "two")]
        last = srv.requests[-1].body["messages"]
        ids = [m["tool_call_id"] for m in last if m["role"] == "tool"]
        assert len(set(ids)) == 2 and ids[0] == "x"


async def test_nul_from_a_tool_or_the_model_is_stored_as_a_replacement_character(
        tmp_path: Path, mock_clock: Any) -> None:
    """A tool's result and a model's text may hold NUL, which PostgreSQL's text
    refuses: stored (and shown to the model) as U+FFFD, on both engines."""
    async with setup(tmp_path) as (h, srv, ada, dm):
        srv.enqueue(Reply(tool_calls=[Call("t__echo", {"text": "a\x00b"}, id="n")]),
                    Reply(text="c\x00d"))
        [job_id] = await h.send(dm, "nul")
        await h.events.job(job_id, "completed")
        [row] = [r for r in await h.rt.db.read(step_store.of_job, job_id) if r.role == "tool"]
        assert row.content == "a\ufffdb"
        assert (await h.messages(dm))[-1]["content"] == "c\ufffdd"


async def test_the_step_limit_ends_the_reply_with_a_clear_message(
        tmp_path: Path, mock_clock: Any) -> None:
    async with setup(tmp_path, max_steps=2) as (h, srv, ada, dm):
        srv.enqueue(*[Reply(tool_calls=[Call("t__count")]) for _ in range(3)])
        [job_id] = await h.send(dm, "count forever")
        done = await h.events.job(job_id, "completed")
        assert len(srv.requests) == 2 and counted(tmp_path) == 2
        reply = (await h.messages(dm))[-1]
        assert reply["content"].startswith("I stopped after 2 tool steps")
        assert done["result"]["finish_reason"] == "step_limit"


@pytest.mark.parametrize("idempotent", [False, True])
async def test_a_tool_that_hangs_times_out_and_the_model_is_told(
        tmp_path: Path, mock_clock: trio.testing.MockClock, idempotent: bool) -> None:
    """A timed-out call may have acted: for a tool not marked idempotent the
    model is told its outcome is unknown (not a plain error it would retry)."""
    marks = {"idempotent": ["hang"]} if idempotent else {}
    async with setup(tmp_path, **marks) as (h, srv, ada, dm):
        srv.enqueue(Reply(tool_calls=[Call("t__hang")]), Reply(text="it hung"))
        [job_id] = await h.send(dm, "hang")
        await h.events.wait_for(lambda e: e.method == "tool.started")
        await trio.testing.wait_all_tasks_blocked()  # the call waits for its answer
        mock_clock.jump(TOOL_TIMEOUT)
        await h.events.job(job_id, "completed")
        [result] = [m for m in srv.requests[1].body["messages"] if m["role"] == "tool"]
        problem = f"MCP server t: no answer within {TOOL_TIMEOUT:g} s calling hang"
        if idempotent:
            assert result["content"] == f"error: {problem}"
        else:
            assert result["content"] == f"{UNKNOWN_AFTER}: {problem}"
        assert h.events.of("tool.finished")[0].params["outcome"] == (
            "error" if idempotent else "unknown")


async def test_a_server_that_crashes_is_restarted_and_the_model_is_told(
        tmp_path: Path, mock_clock: Any) -> None:
    async with setup(tmp_path) as (h, srv, ada, dm):
        srv.enqueue(Reply(tool_calls=[Call("t__crash")]),
                    Reply(tool_calls=[Call("t__echo", {"text": "back"})]), Reply(text="ok"))
        [job_id] = await h.send(dm, "crash")
        await h.events.job(job_id, "completed")
        crash = [m for m in srv.requests[1].body["messages"] if m["role"] == "tool"][0]
        assert crash["content"].startswith(f"{UNKNOWN_AFTER}: MCP server t: the server closed "
                                           "the connection while calling crash")
        echo = [m for m in srv.requests[2].body["messages"] if m["role"] == "tool"][-1]
        assert echo["content"] == "back"


async def test_a_tool_not_allowed_is_refused_and_the_model_is_told(
        tmp_path: Path, mock_clock: Any) -> None:
    async with setup(tmp_path, tools=["t.echo"]) as (h, srv, ada, dm):
        srv.enqueue(Reply(tool_calls=[Call("t__count"), Call("x__y", "not json")]),
                    Reply(text="refused"))
        [job_id] = await h.send(dm, "count")
        await h.events.job(job_id, "completed")
        assert [t["function"]["name"] for t in srv.requests[0].body["tools"]] == ["t__echo"]
        results = [m["content"] for m in srv.requests[1].body["messages"] if m["role"] == "tool"]
        assert results == ["refused: t.count is not a tool agent ada may call",
                           "refused: x.y is not a tool agent ada may call"]
        assert counted(tmp_path) == 0
        listed = await mcp.tools(h.rt, agent="ada")
        assert [t["name"] for t in listed["tools"]] == ["t.echo"]


async def test_results_are_capped(tmp_path: Path, mock_clock: Any) -> None:
    async with setup(tmp_path) as (h, srv, ada, dm):
        srv.enqueue(Reply(tool_calls=[Call("t__big")]), Reply(text="big"))
        [job_id] = await h.send(dm, "big")
        await h.events.job(job_id, "completed")
        [result] = [m for m in srv.requests[1].body["messages"] if m["role"] == "tool"]
        assert len(result["content"]) < 17_000
        assert result["content"].endswith("more bytes not shown]")
        assert len(h.events.of("tool.finished")[0].params["result"]) <= 201


@pytest.mark.parametrize("idempotent", [False, True])
async def test_a_stopped_job_resumes_without_running_finished_calls_again(
        tmp_path: Path, mock_clock: trio.testing.MockClock, idempotent: bool) -> None:
    """Stopped as a SIGTERM stops it (the scheduler cancelled) while a second
    call hangs, after a first one finished: on resume the first is not run
    again; the one in flight is run again only if marked idempotent."""
    marks = {"idempotent": ["hang"]} if idempotent else {}
    async with setup(tmp_path, **marks) as (h, srv, ada, dm):
        srv.enqueue(Reply(tool_calls=[Call("t__count", id="a")]),
                    Reply(tool_calls=[Call("t__hang", id="b")]))
        [job_id] = await h.send(dm, "count, then hang")
        await h.events.wait_for(lambda e: e.method == "tool.started"
                                and e.params["name"] == "t.hang")
        await trio.testing.wait_all_tasks_blocked()
        await h.stop_scheduler(h.rt.scheduler)
        assert counted(tmp_path) == 1

        srv.enqueue(Reply(text="resumed"))
        await h.start_scheduler()
        if idempotent:  # run again: it hangs again, until its timeout
            await h.events.wait_for(lambda e: e.method == "tool.started"
                                    and e.params["call_id"] == "b" and e is not None
                                    and len(h.events.of("tool.started")) == 3)
            await trio.testing.wait_all_tasks_blocked()
            mock_clock.jump(TOOL_TIMEOUT)
        await h.events.wait_for(lambda e: e.method == "job.updated"
                                and e.params["job"]["status"] == "completed")
        assert counted(tmp_path) == 1
        last = srv.requests[-1].body["messages"]
        assert [(m["role"], m.get("tool_call_id")) for m in last[2:]] == [
            ("assistant", None), ("tool", "a"), ("assistant", None), ("tool", "b")]
        expected = (f"error: MCP server t: no answer within {TOOL_TIMEOUT:g} s calling hang"
                    if idempotent else UNKNOWN)
        assert last[-1]["content"] == expected
        replies = [m for m in await h.messages(dm) if m["author_id"] == ada["user_id"]]
        assert [m["content"] for m in replies] == ["resumed"]


async def test_mcp_secrets_stay_out_of_results_rows_and_logs(
        tmp_path: Path, mock_clock: Any, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "tool-secret-0123456789"
    monkeypatch.setenv("WIZ_TOOLS_TEST_SECRET", secret)
    caplog.set_level(logging.DEBUG)
    async with setup(tmp_path, env={"WIZ_TEST_SECRET": "WIZ_TOOLS_TEST_SECRET"}) as (
            h, srv, ada, dm):
        srv.enqueue(Reply(tool_calls=[Call("t__secret")]), Reply(text="done"))
        [job_id] = await h.send(dm, "secret?")
        await h.events.job(job_id, "completed")
        [result] = [m for m in srv.requests[1].body["messages"] if m["role"] == "tool"]
        assert result["content"] == f"set, {len(secret)} characters"

        def everything(conn: Connection) -> str:
            # Every table, on either engine.
            tables = sqlalchemy.inspect(conn).get_table_names()
            return "\n".join(repr(row) for t in tables
                             for row in conn.exec_driver_sql(f'SELECT * FROM "{t}"'))

        stored = await h.rt.db.read(everything)
        events = json.dumps([e.params for e in h.events.events], default=str)
        requests = "\n".join(r.raw.decode() for r in srv.requests)
        for text in (stored, events, requests, caplog.text):
            assert secret not in text
    assert os.environ["WIZ_TOOLS_TEST_SECRET"] == secret


async def test_the_offline_provider_calls_a_tool_on_slash_tool(
        tmp_path: Path, mock_clock: Any) -> None:
    async with setup(tmp_path) as (h, srv, _, _dm):
        bob = await h.agent("bob", tools=["t.echo"])  # the built-in offline provider
        dm = await h.dm(bob["id"])
        [job_id] = await h.send(dm, '/tool t.echo text="hi there"')
        await h.events.job(job_id, "completed")
        reply = (await h.messages(dm))[-1]
        assert reply["content"] == "[offline demo] t.echo answered:\nhi there"
        [job2] = await h.send(dm, "/tool t.count")
        await h.events.job(job2, "completed")
        reply = (await h.messages(dm))[-1]
        assert reply["content"] == ("[offline demo] t.count answered:\nrefused: t.count is "
                                    "not a tool agent bob may call")
        assert not srv.requests


async def test_the_demo_server_that_ships_reads_files_inside_its_folder_only(
        tmp_path: Path, mock_clock: Any) -> None:
    """The README's demo: the offline provider, ``/tool``, wizd.mcp.demo_server."""
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "todo.txt").write_text("buy milk\n")
    async with setup(tmp_path) as (h, srv, _, _dm):
        await mcp.add(h.rt, McpServerCreate(
            name="files", command=[sys.executable, "-m", "wizd.mcp.demo_server", str(folder)],
            idempotent=["*"]))
        bob = await h.agent("bob", tools=["files.*"])
        dm = await h.dm(bob["id"])
        for ask in ("/tool files.list_dir", "/tool files.read_file path=todo.txt",
                    "/tool files.read_file path=../counter"):
            [job_id] = await h.send(dm, ask)
            await h.events.job(job_id, "completed")
        answers = [m["content"] for m in await h.messages(dm) if m["author_id"] == bob["user_id"]]
        assert answers[:2] == ["[offline demo] files.list_dir answered:\ntodo.txt",
                               "[offline demo] files.read_file answered:\nbuy milk\n"]
        assert "is outside the folder this server shows" in answers[2]


@pytest.mark.parametrize("approve", [True, False], ids=["approved", "denied"])
async def test_a_confirm_tool_waits_for_the_users_decision(
        tmp_path: Path, mock_clock: Any, approve: bool) -> None:
    async with setup(tmp_path, confirm=["count"]) as (h, srv, ada, dm):
        srv.enqueue(Reply(tool_calls=[Call("t__count", id="a"),
                                      Call("t__echo", {"text": "meanwhile"}, id="b")]),
                    Reply(text="decided"))
        [job_id] = await h.send(dm, "count, please")
        asked = await h.events.wait_for(lambda e: e.method == "tool.approval_requested")
        assert (asked.params["job_id"], asked.params["name"], asked.params["arguments"]) == (
            job_id, "t.count", {})
        parked = await h.job(job_id)
        assert parked["status"] == "waiting"
        assert parked["failure_reason"] == (f"waiting for approval: t.count (wizctl approve "
                                            f"{job_id[:8]}, or deny {job_id[:8]})")
        assert counted(tmp_path) == 0 and len(srv.requests) == 1

        await approvals.decide(h.rt, job_id, approve=approve, reason="not now")
        await h.events.job(job_id, "completed")
        results = [m["content"] for m in srv.requests[1].body["messages"] if m["role"] == "tool"]
        if approve:
            assert results == ["1", "meanwhile"] and counted(tmp_path) == 1
        else:
            assert results == ["the user denied this call; it was not run: not now",
                               "meanwhile"]
            assert counted(tmp_path) == 0
        with pytest.raises(Conflict):
            await approvals.decide(h.rt, job_id, approve=True)


async def test_a_parked_job_can_be_decided_while_the_queue_is_paused(
        tmp_path: Path, mock_clock: Any) -> None:
    """queue.pause moves a parked job with the waiting ones: approving it then
    is still an approval (it runs once the queue resumes)."""
    async with setup(tmp_path, confirm=["count"]) as (h, srv, ada, dm):
        srv.enqueue(Reply(tool_calls=[Call("t__count", id="a")]), Reply(text="decided"))
        [job_id] = await h.send(dm, "count, please")
        await h.events.wait_for(lambda e: e.method == "tool.approval_requested")
        await queue.set_paused(h.rt, True)
        await approvals.decide(h.rt, job_id, approve=True)
        await queue.set_paused(h.rt, False)
        await h.events.job(job_id, "completed")
        assert counted(tmp_path) == 1



async def test_a_step_resumed_while_its_server_fails_waits_for_the_server(
        tmp_path: Path, mock_clock: trio.testing.MockClock) -> None:
    """A job stopped with an idempotent call in flight resumes while its server
    cannot start: the attempt fails and is retried later (the server may come
    back), and the call is neither refused nor given an unknown outcome."""
    async with setup(tmp_path, idempotent=["hang"]) as (h, srv, ada, dm):
        srv.enqueue(Reply(tool_calls=[Call("t__hang", id="b")]))
        [job_id] = await h.send(dm, "hang")
        await h.events.wait_for(lambda e: e.method == "tool.started")
        await trio.testing.wait_all_tasks_blocked()
        await h.stop_scheduler(h.rt.scheduler)
        broken = json.dumps([sys.executable, "-c", "raise SystemExit(3)"])

        def break_server(conn: Connection) -> None:
            conn.execute(text("UPDATE mcp_servers SET command = :c WHERE name = 't'"),
                         {"c": broken})

        await h.rt.db.write(break_server)
        await h.start_scheduler()
        update = await h.events.wait_for(lambda e: e.method == "job.updated"
                                         and e.params["job"]["status"] == "delayed")
        assert "MCP server t" in update.params["job"]["failure_reason"]
        [row] = [r for r in await h.rt.db.read(step_store.of_job, job_id) if r.role == "tool"]
        assert (row.tool_call_id, row.tool_state) == ("b", "started")
