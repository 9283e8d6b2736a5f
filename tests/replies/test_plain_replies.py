"""A server that answers a streaming request with one JSON body, through
message.send -> reply processor -> outcome handler, against a real
SQLite file and the real scripted HTTP server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.jobs.helpers import harness
from tests.support.openai_server import Reply, openai_server
from wizd.services import providers
from wizd.services.providers import ProviderUpdate

from .test_reply_jobs import one_agent


@pytest.mark.anyio
async def test_a_json_answer_is_a_reply_at_the_first_attempt(tmp_path: Path) -> None:
    async with openai_server() as srv, harness(tmp_path) as h:
        srv.enqueue(Reply(text="Hello, I never stream.", plain=True))
        ada, dm = await one_agent(h, srv.base_url)
        [job_id] = await h.send(dm, "hello")
        done = await h.events.job(job_id, "completed")

        assert done["attempts"] == 1
        _trigger, reply = await h.messages(dm)
        assert reply["content"] == "Hello, I never stream." and reply["kind"] == "text"
        deltas = [e.params["delta"] for e in h.events.of("message.delta")]
        assert deltas == ["Hello, I never stream."]
        assert srv.requests[0].stream is True


@pytest.mark.anyio
async def test_a_provider_set_not_to_stream_asks_for_one_answer(tmp_path: Path) -> None:
    async with openai_server() as srv, harness(tmp_path) as h:
        srv.enqueue(Reply(text="One piece."))
        ada, dm = await one_agent(h, srv.base_url)
        await providers.update_provider(h.rt, ada["provider_id"], ProviderUpdate(stream=False))
        [job_id] = await h.send(dm, "hello")
        await h.events.job(job_id, "completed")

        assert srv.requests[0].stream is False
        assert (await h.messages(dm))[-1]["content"] == "One piece."
