"""The stored steps of a tool-using reply, read back as the model saw them
(``wizd.store.steps`` holds the rows; ``tool_loop`` writes them).

Pure functions: rows in, chat messages and the calls left to finish out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..llm.base import ChatMessage, ToolCall
from ..objects import JobStep
from ..store.steps import StepRow


@dataclass
class Step:
    """One stored step: the model's turn and what became of each of its calls."""

    number: int
    turn: ChatMessage  # the assistant turn with its tool calls
    results: dict[str, str] = field(default_factory=dict)  # call id -> result (done)
    started: set[str] = field(default_factory=set)  # call ids in flight when it stopped
    waiting: set[str] = field(default_factory=set)  # call ids waiting for approval
    approved: set[str] = field(default_factory=set)  # approved, not started yet
    # The tokens of the model call that asked for the step's calls.
    usage: dict[str, int] = field(default_factory=dict)

    def unfinished(self) -> list[ToolCall]:
        """The calls without a result: in flight (``started``) or never started."""
        return [c for c in self.turn.tool_calls if c.id not in self.results]

    def messages(self) -> list[ChatMessage]:
        """The turn and its results, for the model (every call must have one)."""
        return [self.turn, *(ChatMessage("tool", self.results[c.id], tool_call_id=c.id)
                             for c in self.turn.tool_calls)]


def encode_calls(calls: tuple[ToolCall, ...]) -> str:
    return json.dumps([{"id": c.id, "name": c.name, "arguments": c.arguments} for c in calls])


def decode_calls(text: str | None) -> tuple[ToolCall, ...]:
    if not text:
        return ()
    return tuple(ToolCall(c["id"], c["name"], c["arguments"]) for c in json.loads(text))


def read_steps(rows: list[StepRow]) -> list[Step]:
    """The steps in ``rows`` (one reply's, in order)."""
    steps: dict[int, Step] = {}
    for row in rows:
        if row.role == "assistant":
            usage = {k: v for k, v in (("prompt_tokens", row.prompt_tokens),
                                       ("completion_tokens", row.completion_tokens))
                     if v is not None}
            steps[row.step] = Step(row.step, ChatMessage(
                "assistant", row.content, tool_calls=decode_calls(row.tool_calls)), usage=usage)
            continue
        step = steps.get(row.step)
        if step is None or row.tool_call_id is None:
            continue  # a result without its turn: never written so
        if row.tool_state == "done":
            step.results[row.tool_call_id] = row.content
        elif row.tool_state == "waiting":
            step.waiting.add(row.tool_call_id)
        elif row.tool_state == "approved":
            step.approved.add(row.tool_call_id)
        else:
            step.started.add(row.tool_call_id)
    return [steps[n] for n in sorted(steps)]


def context_steps(rows: list[StepRow]) -> tuple[ChatMessage, ...]:
    """A finished reply's steps as context for a later turn: only whole steps
    (a turn with a result for each of its calls)."""
    messages: list[ChatMessage] = []
    for step in read_steps(rows):
        if step.unfinished():
            break
        messages.extend(step.messages())
    return tuple(messages)


def public(rows: list[StepRow]) -> list[JobStep]:
    """The steps as ``job.get`` shows them."""
    return [{"step": r.step, "role": r.role, "content": r.content,
             "tool_calls": [{"id": c.id, "name": c.name, "arguments": c.arguments}
                            for c in decode_calls(r.tool_calls)],
             "tool_call_id": r.tool_call_id, "name": r.tool_name, "state": r.tool_state,
             "created_at": r.created_at, "updated_at": r.updated_at} for r in rows]
