"""The tool loop on asyncio (wizd runs on either backend): parallel calls and
an approval, as tests/replies/test_tool_loop.py runs them on trio."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.replies.test_tool_loop import setup
from tests.support.openai_server import Call, Reply
from wizd.replies import approvals

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_parallel_calls_and_an_approval_on_asyncio(tmp_path: Path) -> None:
    """The loop is backend-neutral: wizd runs it on asyncio too."""
    async with setup(tmp_path, confirm=["count"]) as (h, srv, ada, dm):
        srv.enqueue(Reply(tool_calls=[Call("t__count", id="a"),
                                      Call("t__echo", {"text": "two"}, id="b")]),
                    Reply(text="done"))
        [job_id] = await h.send(dm, "both")
        await h.events.wait_for(lambda e: e.method == "tool.approval_requested")
        await approvals.decide(h.rt, job_id, approve=True)
        await h.events.job(job_id, "completed")
        results = [(m["tool_call_id"], m["content"]) for m in srv.requests[1].body["messages"]
                   if m["role"] == "tool"]
        assert results == [("a", "1"), ("b", "two")]
