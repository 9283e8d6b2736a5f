"""Tokens per reply: what the provider counted is stored with the reply's
llm_message (with the model that answered) and summed per agent and model;
through message.send -> reply processor -> outcome handler, against a
real SQLite file and the real scripted HTTP server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, select

from tests.jobs.helpers import Harness, harness
from tests.support.openai_server import Reply, openai_server
from wizd.services import usage
from wizd.store.schema import llm_messages

from .test_reply_jobs import one_agent


async def tokens(h: Harness, message_id: str) -> tuple[Any, Any, Any]:
    def q(conn: Connection) -> tuple[Any, Any, Any]:
        row = conn.execute(select(llm_messages).where(
            llm_messages.c.message_id == message_id)).one()
        return row.model, row.prompt_tokens, row.completion_tokens
    return await h.rt.db.read(q)


@pytest.mark.anyio
async def test_streamed_and_plain_replies_store_their_tokens(tmp_path: Path) -> None:
    async with openai_server() as srv, harness(tmp_path) as h:
        srv.enqueue(Reply(text="one two three", model="gpt-test-0613"),
                    Reply(text="four five", plain=True))
        ada, dm = await one_agent(h, srv.base_url)
        for text in ("hello", "again"):
            [job_id] = await h.send(dm, text)
            await h.events.job(job_id, "completed")
        assert srv.requests[0].body["stream_options"] == {"include_usage": True}

        trigger, first, _again, second = await h.messages(dm)
        # The scripted server counts words of every message sent, and the pieces sent.
        system = len(srv.requests[0].body["messages"][0]["content"].split())
        assert await tokens(h, first["id"]) == ("gpt-test-0613", system + 1, 3)
        assert await tokens(h, second["id"]) == ("gpt-test", system + 1 + 3 + 1, 2)
        assert await tokens(h, trigger["id"]) == (None, None, None)  # a user turn

        summary = await usage.summary(h.rt)
        assert summary["usage"] == [
            {"agent_id": ada["id"], "agent_name": "ada", "model": "gpt-test",
             "replies": 1, "unreported": 0, "prompt_tokens": system + 5, "completion_tokens": 2},
            {"agent_id": ada["id"], "agent_name": "ada", "model": "gpt-test-0613",
             "replies": 1, "unreported": 0, "prompt_tokens": system + 1, "completion_tokens": 3},
        ]
        per = await usage.of_messages(h.rt, [first["id"], trigger["id"], "unknown"])
        assert per["usage"] == {first["id"]: {"model": "gpt-test-0613",
                                              "prompt_tokens": system + 1,
                                              "completion_tokens": 3}}


@pytest.mark.anyio
async def test_a_reply_without_usage_is_counted_as_unreported(tmp_path: Path) -> None:
    body = {"id": "x", "object": "chat.completion", "model": "gpt-test",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"},
                         "finish_reason": "stop"}]}
    async with openai_server() as srv, harness(tmp_path) as h:
        srv.enqueue(Reply(body=body))
        ada, dm = await one_agent(h, srv.base_url)
        [job_id] = await h.send(dm, "hello")
        await h.events.job(job_id, "completed")
        _, reply = await h.messages(dm)
        assert await tokens(h, reply["id"]) == ("gpt-test", None, None)
        [row] = (await usage.summary(h.rt, agent="ada"))["usage"]
        assert (row["replies"], row["unreported"], row["prompt_tokens"]) == (1, 1, 0)
        assert (await usage.summary(h.rt, since=reply["created_at"] + 1))["usage"] == []


@pytest.mark.anyio
async def test_token_counts_that_are_not_storable_counts_are_left_out(tmp_path: Path) -> None:
    # A hostile or broken server: a count past SQLite's 64 bits, a boolean, a
    # negative number. The reply is stored; those counts are "unreported".
    answer = {"id": "x", "object": "chat.completion", "model": "gpt-test",
              "choices": [{"index": 0, "finish_reason": "stop",
                           "message": {"role": "assistant", "content": "fine"}}],
              "usage": {"prompt_tokens": 10**30, "completion_tokens": True,
                        "total_tokens": -1}}
    async with openai_server() as srv, harness(tmp_path, max_attempts=1) as h:
        srv.enqueue(Reply(body=answer))
        _ada, dm = await one_agent(h, srv.base_url)
        [job_id] = await h.send(dm, "hello")
        assert (await h.events.job(job_id, "completed", "failed"))["status"] == "completed"
        _trigger, reply = await h.messages(dm)
        assert reply["content"] == "fine"
        assert await tokens(h, reply["id"]) == ("gpt-test", None, None)
