"""The processor of reply jobs: one agent's reply to one message.

It loads what the reply needs when the attempt starts (``inputs``: the agent,
its provider with the secret resolved now, the conversation up to the
trigger), streams the completion, publishing each piece as ``message.delta``,
and hands the result to the outcome handler (``outcome``), which stores it. The context is capped
at ``config.max_context_bytes`` and the reply at ``config.max_reply_bytes``
(a provider stops reading there: the deltas never pass it either). Only the provider call
runs under ``config.job_timeout``: a slow database is not the model's fault.
An agent with tools runs the tool loop instead (``tool_loop``): each of its
model calls has that limit, each tool call its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio
from sqlalchemy import Connection

from ..errors import ProviderTimeout
from ..jobs.queue import JobContext
from ..llm import providers
from ..llm.base import Completion
from .inputs import ReplyInputs, Skip, load_inputs
from .job import data_of
from .tool_loop import AwaitingApproval, run_tool_loop

# Progress is a database write that every other job's completion queues
# behind, so it is written only for a stream that is still going after
# PROGRESS_AFTER seconds, once: a short reply goes from 0 to 100 in one step
# (its deltas already show it streaming), a long one shows that it is alive.
PROGRESS_AFTER = 2.0
STREAMING_PROGRESS = 50


@dataclass(frozen=True)
class ReplyResult:
    """What the processor hands to the outcome handler: the reply to store."""

    inputs: ReplyInputs
    completion: Completion


async def process(ctx: JobContext) -> ReplyResult | Skip | AwaitingApproval:
    """Generate the reply (or Skip: nothing to answer any more). Raises
    ProviderError subclasses (ProviderTimeout when the provider takes longer
    than ``config.job_timeout``), NotFound if the conversation or provider is gone."""
    rt = ctx.rt
    data = data_of(ctx.job)

    def load(conn: Connection) -> ReplyInputs | Skip:
        return load_inputs(
            conn, data, default_context=rt.config.context_messages,
            max_context_bytes=rt.config.max_context_bytes,
            max_reply_bytes=rt.config.max_reply_bytes)

    inputs = await rt.db.read(load)
    if isinstance(inputs, Skip):
        return inputs

    index = 0
    started = anyio.current_time()
    progress_written = False

    async def on_delta(piece: str) -> None:
        nonlocal index, progress_written
        params: dict[str, object] = {
            "job_id": ctx.job["id"], "conversation_id": inputs.conversation["id"],
            "author_id": inputs.agent_user_id, "index": index, "delta": piece,
        }
        rt.publish("message.delta", params, conversation_id=inputs.conversation["id"])
        index += 1
        if not progress_written and anyio.current_time() - started >= PROGRESS_AFTER:
            progress_written = True
            await ctx.progress(STREAMING_PROGRESS)

    if inputs.tools or inputs.steps:
        answer = await run_tool_loop(ctx, inputs, on_delta)
        return answer if isinstance(answer, AwaitingApproval) else ReplyResult(inputs, answer)
    timeout = rt.config.job_timeout
    with anyio.move_on_after(timeout) as limit:
        completion = await providers.complete(inputs.provider, inputs.request, on_delta,
                                              rt.llm_clients)
    if limit.cancelled_caught:
        raise ProviderTimeout(f"no complete answer within {timeout:g} s",
                              provider=inputs.provider.name)
    return ReplyResult(inputs, completion)
