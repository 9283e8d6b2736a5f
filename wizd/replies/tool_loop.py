"""The tool loop of a reply: ask the model, run the tools it calls, give it
their results, until it answers in text or reaches the agent's step limit.

Durable step by step (the rows: ``wizd.store.steps``):

1. the model's turn that asks for tools is stored (one transaction) before
   any of its calls runs;
2. each call is marked started (its own small write) right before it runs,
   and its result stored when it ends (a write of its own too: a parallel
   call that finished is not lost with one still running);
3. only when every call of a step has a result is the model asked again.

A job that stops anywhere (kill -9, SIGTERM, a timeout) starts its next
attempt from what is stored: calls with a result are not run again; a call
never started runs; a call in flight (started, no result) runs again only if
its tool is marked idempotent, and otherwise gets, as its result, a note
that its outcome is unknown, so that the model can decide.

A call of a tool its server marks ``confirm`` waits for the user: its row is
stored as waiting, the other calls of the step run, and the loop returns
``AwaitingApproval``; the outcome handler parks the job (status waiting, due
never) and publishes ``tool.approval_requested``. ``job.approve`` or
``job.deny`` (``approvals``) decides and makes the job due; its next attempt
resumes here, running the approved calls and giving the denied ones their
refusal as result.

A call the agent may not make (not in its allow-list, or a tool no server
has) is refused and the model told so; a tool that fails, takes longer than
``TOOL_TIMEOUT`` or whose server dies gives the model the error as its
result. Results longer than ``MAX_RESULT_BYTES`` are cut (the model is told).

Subscribers of the conversation see ``tool.started`` and ``tool.finished``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
from sqlalchemy import Connection

from ..errors import McpServerError, ProviderTimeout, WizError
from ..jobs.outcome import JobLost
from ..jobs.queue import JobContext
from ..llm import providers
from ..llm.base import (
    ChatMessage,
    ChatRequest,
    Completion,
    OnDelta,
    ToolCall,
    cut_utf8,
    display_name,
    storable,
    utf8_size,
)
from ..services.runtime import new_id
from ..store import jobs as job_store
from ..store import steps as store
from .inputs import ReplyInputs
from .steps import Step, encode_calls
from .toolset import Tool, Toolset
from .toolset import load as load_toolset

log = logging.getLogger(__name__)

TOOL_TIMEOUT = 60.0  # seconds a tool call may take
MAX_RESULT_BYTES = 16 * 1024  # of a tool's result, as the model sees it
PREVIEW_CHARS = 200  # of a result, in tool.finished

UNKNOWN_AFTER = ("the outcome of this call is unknown (it may or may not have taken effect; "
                 "the tool is not marked idempotent, so it was not run again)")
UNKNOWN = ("the outcome of this call is unknown: wizd stopped while it ran, so it may or may "
           "not have taken effect; it was not run again (the tool is not marked idempotent)")


@dataclass(frozen=True)
class PendingCall:
    """A call waiting for the user's approval."""

    call_id: str
    name: str  # server.tool
    arguments: dict[str, Any]


@dataclass(frozen=True)
class AwaitingApproval:
    """The loop stopped until the user decides about ``calls``."""

    inputs: ReplyInputs
    calls: tuple[PendingCall, ...]

    def reason(self, job_id: str) -> str:
        names = ", ".join(c.name for c in self.calls)
        short = job_id[:8]
        return f"waiting for approval: {names} (wizctl approve {short}, or deny {short})"


@dataclass
class _Loop:
    ctx: JobContext
    inputs: ReplyInputs
    toolset: Toolset
    on_delta: OnDelta

    @property
    def job_id(self) -> str:
        return self.ctx.job["id"]

    def publish(self, method: str, params: dict[str, object]) -> None:
        cid = self.inputs.conversation["id"]
        self.ctx.rt.publish(method, {"job_id": self.job_id, "conversation_id": cid,
                                     "agent_id": self.inputs.agent_id, **params},
                            conversation_id=cid)

    async def write(self, fn: Callable[[Connection], object]) -> None:
        """A step's write, only while this node holds the job: a run whose
        job another node took back (wizd.cluster) stops at its next write
        rather than interleave its steps with the new run's."""
        job_id = self.job_id

        def tx(conn: Connection) -> None:
            if not job_store.held(conn, job_id):
                raise JobLost(job_id)
            fn(conn)

        await self.ctx.rt.db.write(tx)

    # -- one model call ---------------------------------------------------------------

    async def ask(self, messages: list[ChatMessage]) -> Completion:
        messages = _within(messages, len(self.inputs.request.messages),
                           self.ctx.rt.config.max_context_bytes)
        request = ChatRequest(
            model=self.inputs.request.model, messages=tuple(messages),
            temperature=self.inputs.request.temperature,
            max_tokens=self.inputs.request.max_tokens,
            max_reply_bytes=self.inputs.request.max_reply_bytes, tools=self.toolset.specs())
        rt = self.ctx.rt
        timeout = rt.config.job_timeout
        with anyio.move_on_after(timeout) as limit:
            completion = await providers.complete(self.inputs.provider, request, self.on_delta,
                                                  rt.llm_clients)
        if limit.cancelled_caught:
            raise ProviderTimeout(f"no complete answer within {timeout:g} s",
                                  provider=self.inputs.provider.name)
        return completion

    async def store_turn(self, number: int, completion: Completion, taken: set[str]) -> Step:
        """Store the model's turn ``number`` that asks for tools; ``taken``: the
        call ids of the reply's earlier steps (a call's row is found by its id)."""
        inputs, now = self.inputs, self.ctx.rt.clock.now_ms()
        usage = completion.usage or {}
        calls = _unique_ids(completion.tool_calls, number, taken)

        def tx(conn: Connection) -> None:
            store.add_assistant(
                conn, id=new_id(), job_id=self.job_id, reply_to=inputs.trigger_id,
                author_id=inputs.agent_user_id, step=number, content=storable(completion.content),
                tool_calls=encode_calls(calls), model=completion.model,
                prompt_tokens=usage.get("prompt_tokens"),
                completion_tokens=usage.get("completion_tokens"), now_ms=now)

        await self.write(tx)
        return Step(number, ChatMessage("assistant", completion.content, tool_calls=calls),
                    usage=dict(usage))

    # -- running a step's calls -------------------------------------------------------

    async def finish_step(self, step: Step) -> list[PendingCall]:
        """Give every call of ``step`` without a result one (in ``step.results``),
        running those that may run, in parallel; returns the calls that wait
        for approval instead."""
        positions = {c.id: i + 1 for i, c in enumerate(step.turn.tool_calls)}
        waiting: list[PendingCall] = []

        async def one(call: ToolCall) -> None:
            tool = self.toolset.tools.get(call.name)
            in_flight = call.id in step.started
            arguments, problem = _arguments(call.arguments)
            if tool is not None and arguments is not None and (
                    call.id in step.waiting or (tool.confirm and not in_flight
                                                and call.id not in step.approved)):
                if call.id not in step.waiting:
                    await self.mark(step.number, positions[call.id], call, tool, "waiting")
                waiting.append(PendingCall(call.id, tool.name, arguments))
                return
            if in_flight and not (tool is not None and tool.idempotent):
                self.publish("tool.finished", _finished(call, tool, 0, UNKNOWN, "unknown"))
                await self.store_result(step, positions[call.id], call, UNKNOWN)
            else:
                await self.run(step, positions[call.id], call, tool, marked=in_flight)

        async with anyio.create_task_group() as tg:
            for call in step.unfinished():
                tg.start_soon(one, call)
        order = [c.id for c in step.turn.tool_calls]
        return sorted(waiting, key=lambda c: order.index(c.call_id))

    async def run(self, step: Step, position: int, call: ToolCall, tool: Tool | None, *,
                  marked: bool) -> None:
        """Run one call (marked started first, unless it is already) and store its result."""
        arguments, problem = _arguments(call.arguments)
        if tool is None:
            problem = (f"refused: {display_name(call.name)} is not a tool agent "
                       f"{self.inputs.agent_name} may call")
        if problem is not None or arguments is None or tool is None:
            problem = problem or "refused"
            self.publish("tool.finished", _finished(call, tool, 0, problem, "refused"))
            await self.store_result(step, position, call, problem)
            return
        if not marked:
            await self.mark(step.number, position, call, tool, "started")
        self.publish("tool.started", {"call_id": call.id, "name": tool.name,
                                      "arguments": arguments, "step": step.number})
        started = anyio.current_time()
        result, outcome = await self.call(tool, arguments)
        duration_ms = round((anyio.current_time() - started) * 1000)
        self.publish("tool.finished", _finished(call, tool, duration_ms, result, outcome))
        await self.store_result(step, position, call, result)

    async def call(self, tool: Tool, arguments: dict[str, Any]) -> tuple[str, str]:
        """The call's result as the model sees it, and how it ended."""
        try:
            answer = await self.ctx.rt.mcp.call_tool(tool.server, tool.tool, arguments,
                                                     time_limit=TOOL_TIMEOUT)
        except McpServerError as exc:
            if exc.sent and not tool.idempotent:
                # It may have acted: the model must not take it for undone and
                # call it again, as it would after a plain error.
                return _cut(f"{UNKNOWN_AFTER}: {exc.message}"), "unknown"
            return _cut(f"error: {exc.message}"), "error"
        except WizError as exc:
            return _cut(f"error: {exc.message}"), "error"
        text = _text_of(answer)
        if getattr(answer, "is_error", False) or getattr(answer, "isError", False):
            return f"error: {text}", "error"
        return text, "ok"

    async def mark(self, number: int, position: int, call: ToolCall, tool: Tool,
                   state: str) -> None:
        """Store the call's row as ``state`` (started, waiting), made or moved."""
        inputs, now = self.inputs, self.ctx.rt.clock.now_ms()

        def tx(conn: Connection) -> None:
            if store.set_state(conn, job_id=self.job_id, reply_to=inputs.trigger_id,
                               author_id=inputs.agent_user_id, tool_call_id=call.id,
                               state=state, now_ms=now):
                return  # approved before: its row is there
            store.add_tool(conn, id=new_id(), job_id=self.job_id, reply_to=inputs.trigger_id,
                           author_id=inputs.agent_user_id, step=number, position=position,
                           tool_call_id=call.id, tool_name=tool.name, state=state,
                           content="", now_ms=now)

        await self.write(tx)

    async def store_result(self, step: Step, position: int, call: ToolCall,
                           result: str) -> None:
        number = step.number
        inputs, now = self.inputs, self.ctx.rt.clock.now_ms()
        tool = self.toolset.tools.get(call.name)
        name = tool.name if tool is not None else display_name(call.name)
        result = storable(result)

        def tx(conn: Connection) -> None:
            if not store.finish_tool(conn, job_id=self.job_id, reply_to=inputs.trigger_id,
                                     author_id=inputs.agent_user_id, tool_call_id=call.id,
                                     content=result, now_ms=now):
                store.add_tool(conn, id=new_id(), job_id=self.job_id,
                               reply_to=inputs.trigger_id, author_id=inputs.agent_user_id,
                               step=number, position=position, tool_call_id=call.id,
                               tool_name=name, state="done", content=result, now_ms=now)

        # Shielded: a result is the one thing a cancelled step must not lose.
        with anyio.CancelScope(shield=True):
            await self.write(tx)
        step.results[call.id] = result


async def run_tool_loop(ctx: JobContext, inputs: ReplyInputs, on_delta: OnDelta
                        ) -> Completion | AwaitingApproval:
    """The reply's final answer, after as many tool steps as the model takes
    (at most ``inputs.max_steps``; then a completion that says it stopped),
    or the calls that wait for the user's approval."""
    toolset = await load_toolset(ctx.rt, inputs.tools)
    loop = _Loop(ctx, inputs, toolset, on_delta)
    messages = list(inputs.request.messages)
    steps = list(inputs.steps)
    for step in steps:  # resuming: finish what a stopped attempt left
        if step.unfinished():
            _servers_answer(step, toolset)
            waiting = await loop.finish_step(step)
            if waiting:
                return AwaitingApproval(inputs, tuple(waiting))
        messages.extend(step.messages())
    while True:
        if len(steps) >= inputs.max_steps:
            return Completion(
                content=(f"I stopped after {len(steps)} tool steps, the most agent "
                         f"{inputs.agent_name} may take for one reply, without a final answer."),
                model=inputs.request.model, finish_reason="step_limit",
                usage=_total(steps, None))
        completion = await loop.ask(messages)
        if not completion.tool_calls:
            return dataclasses.replace(completion, usage=_total(steps, completion.usage))
        taken = {c.id for earlier in steps for c in earlier.turn.tool_calls}
        step = await loop.store_turn(len(steps) + 1, completion, taken)
        waiting = await loop.finish_step(step)
        if waiting:
            return AwaitingApproval(inputs, tuple(waiting))
        steps.append(step)
        messages.extend(step.messages())


def _servers_answer(step: Step, toolset: Toolset) -> None:
    """Raise McpServerError (retried later, as the job's attempt) if a server
    that one of ``step``'s unfinished calls needs did not list its tools: without
    them a call the agent may make would look refused, and one in flight could
    not be told idempotent."""
    for call in step.unfinished():
        server = display_name(call.name).partition(".")[0]
        if server in toolset.failures:
            raise McpServerError(server, "a stopped step needs it, and it did not answer "
                                         f"({toolset.failures[server]})")


def _within(messages: list[ChatMessage], history: int, budget: int) -> list[ChatMessage]:
    """``messages`` (the context's first ``history``, then this turn's steps)
    within ``budget`` UTF-8 bytes, as far as this turn's results allow: the
    oldest results are replaced by a note first, never the last step's (the
    calls stay paired with results, as the model requires)."""
    size = sum(utf8_size(m.content) for m in messages)
    if size <= budget:
        return messages
    last_turn = max((i for i, m in enumerate(messages) if m.tool_calls), default=len(messages))
    fitted = list(messages)
    for i in range(history, last_turn):
        message = fitted[i]
        if message.role != "tool" or size <= budget:
            continue
        note = f"[result left out to fit the context: {utf8_size(message.content)} bytes]"
        size -= utf8_size(message.content) - utf8_size(note)
        fitted[i] = ChatMessage("tool", note, tool_call_id=message.tool_call_id)
    return fitted


def _total(steps: list[Step], last: dict[str, int] | None) -> dict[str, int] | None:
    """The tokens of every model call of the reply: each step's and the last
    one's (the usage a reply reports is the whole turn's); None if none was told."""
    parts = [s.usage for s in steps if s.usage] + ([last] if last else [])
    if not parts:
        return None
    total: dict[str, int] = {}
    for part in parts:
        for key, value in part.items():
            total[key] = total.get(key, 0) + value
    return total


def _unique_ids(calls: tuple[ToolCall, ...], number: int, taken: set[str]
                ) -> tuple[ToolCall, ...]:
    """The calls with ids unique within the reply: a server may send none, or
    repeat one, within a step or from an earlier step (``taken``)."""
    seen = set(taken)
    unique = []
    for index, call in enumerate(calls):
        call_id = call.id
        if not call_id or call_id in seen:
            call_id = f"wiz_{number}_{index}"
        seen.add(call_id)
        unique.append(ToolCall(call_id, call.name, call.arguments))
    return tuple(unique)


def _arguments(text: str) -> tuple[dict[str, Any] | None, str | None]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return None, "refused: the arguments are not valid JSON"
    if not isinstance(value, dict):
        return None, "refused: the arguments are not a JSON object"
    return value, None


def _text_of(answer: object) -> str:
    """A tool's result as text for the model, cut at ``MAX_RESULT_BYTES``."""
    parts = []
    for item in getattr(answer, "content", []) or []:
        text = getattr(item, "text", None)
        parts.append(text if isinstance(text, str) else f"[{getattr(item, 'type', 'content')}]")
    return _cut("\n".join(parts))


def _cut(text: str) -> str:
    """``text`` cut at ``MAX_RESULT_BYTES`` (the model is told how much is left out)."""
    size = utf8_size(text)
    if size > MAX_RESULT_BYTES:
        kept = cut_utf8(text, MAX_RESULT_BYTES)
        text = f"{kept}\n[result cut: {size - utf8_size(kept)} more bytes not shown]"
    return text


def _finished(call: ToolCall, tool: Tool | None, duration_ms: int, result: str,
              outcome: str) -> dict[str, object]:
    name = tool.name if tool is not None else display_name(call.name)
    preview = result if len(result) <= PREVIEW_CHARS else result[:PREVIEW_CHARS] + "…"
    return {"call_id": call.id, "name": name, "duration_ms": duration_ms, "outcome": outcome,
            "result": preview}

