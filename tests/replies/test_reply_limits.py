"""Replies and contexts within their size caps, and streams broken off before
their finish, through message.send -> reply processor -> outcome handler,
against a real SQLite file and the real scripted HTTP server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio
from trio.testing import MockClock

from tests.jobs.helpers import harness
from tests.support.openai_server import Reply, openai_server

from .test_reply_jobs import Script, one_agent, sent_messages

CAP = 2048


@pytest.mark.anyio
async def test_a_huge_reply_is_stored_cut_at_the_cap_and_marked(tmp_path: Path) -> None:
    # The incident: 20 MB streamed against max_tokens 100.
    async with openai_server() as srv, harness(tmp_path, max_reply_bytes=CAP) as h:
        srv.enqueue(Reply(chunks=["x" * 999 + " "], repeat=20_000))
        ada, dm = await one_agent(h, srv.base_url, max_tokens=100)
        [job_id] = await h.send(dm, "hello")
        done = await h.events.job(job_id, "completed")
        await srv.wait_idle()
        assert srv.hangups == 1  # the rest of the body was never read

        trigger, reply = await h.messages(dm)
        assert reply["content"] == ("x" * 999 + " ") * 2 + "x" * (CAP - 2000)
        assert (reply["truncated"], trigger["truncated"]) == (True, False)
        assert done["attempts"] == 1  # a cut reply is a reply: no retry
        assert done["result"]["truncated"] is True
        assert done["result"]["message_id"] == reply["id"]
        created = [e.params["message"] for e in h.events.of("message.created")]
        assert [m["truncated"] for m in created] == [False, True]
        assert created[1]["content"] == reply["content"]
        deltas = "".join(e.params["delta"] for e in h.events.of("message.delta"))
        assert deltas == reply["content"]
        llm = await h.llm_messages()
        assert llm[reply["id"]] == ("assistant", reply["content"])

        # What was cut is what the model sees next time.
        srv.enqueue(Reply(text="short"))
        [job2] = await h.send(dm, "again")
        done2 = await h.events.job(job2, "completed")
        assert sent_messages(srv.requests[1])[1:] == [
            ("user", "hello"), ("assistant", reply["content"]), ("user", "again")]
        assert done2["result"]["truncated"] is False
        assert (await h.messages(dm))[-1]["truncated"] is False


@pytest.mark.anyio
async def test_the_context_stays_within_its_cap_however_long_the_history(
    tmp_path: Path,
) -> None:
    limit = 4096
    async with openai_server() as srv, harness(tmp_path, max_context_bytes=limit) as h:
        ada, dm = await one_agent(h, srv.base_url)
        for i in range(6):  # each turn ~3 KB, echoed back: ~36 KB of history
            [job_id] = await h.send(dm, f"turn {i} " + "w" * 3000)
            await h.events.job(job_id, "completed")

        last = srv.requests[-1]
        sent = sent_messages(last)
        assert sum(len(content.encode()) for _, content in sent) <= limit
        assert sent[0] == ("system", ada["system_prompt"])
        assert sent[-1][1].startswith("turn 5 ")  # the newest is always there
        assert len(sent) < 2 * 6  # older turns were left out
        # The body is the text plus its JSON framing, nowhere near the history.
        framing = len(json.dumps({**last.body, "messages": [
            {"role": role, "content": ""} for role, _ in sent]}))
        assert len(last.raw) <= limit + framing


@pytest.mark.trio
async def test_a_stream_cut_off_before_its_finish_is_retried_not_stored(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    script = Script(Reply(chunks=["half", " an"], finish_reason=None, done=False),
                    Reply(text="the whole answer"))
    async with openai_server(default=script) as srv, harness(tmp_path) as h:
        ada, dm = await one_agent(h, srv.base_url)
        t0 = trio.current_time()
        [job_id] = await h.send(dm, "hello")
        delayed = await h.events.job(job_id, "delayed", "completed")
        assert delayed["status"] == "delayed"
        assert "the stream ended before the reply was finished" in delayed["failure_reason"]
        assert [m["content"] for m in await h.messages(dm)] == ["hello"]  # nothing stored

        done = await h.events.job(job_id, "completed")
        assert [t - t0 for t in script.times] == pytest.approx([0, 1], abs=1e-3)  # backoff 1 s
        assert done["attempts"] == 2
        trigger, reply = await h.messages(dm)
        assert (reply["content"], reply["reply_to"], reply["truncated"]) == (
            "the whole answer", trigger["id"], False)
        assert len(srv.requests) == 2
        assert [e.params["status"] for e in h.events.of("agent.status")] == ["busy", "active"]
