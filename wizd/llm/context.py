"""What an agent sees: its system prompt and the conversation, as chat messages.

Pure functions, no I/O: the job processor loads the history and the agent, then
calls ``build_context``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .base import ChatMessage, cut_utf8, utf8_size

__all__ = ["ContextMessage", "build_context", "system_prompt"]


@dataclass(frozen=True)
class ContextMessage:
    """One stored message, with its stored LLM form (``llm_messages`` row) when it has one."""

    author_id: str
    author_name: str
    content: str
    kind: str  # "text" | "error"
    llm_role: str | None = None
    llm_content: str | None = None
    # The tool steps the agent took before this reply of its own (assistant
    # turns with their calls, tool results), shown to it before the reply.
    steps: tuple[ChatMessage, ...] = ()


def system_prompt(name: str, role: str, backstory: str, goal: str) -> str:
    """The system prompt of an agent, derived from its profile.

    The first two lines (``You are NAME.`` / ``Your role: ROLE.``) are also what
    the offline provider reads to introduce the agent; empty fields are left out.
    """
    lines = [f"You are {_sentence(name)}"]
    if role.strip():
        lines.append(f"Your role: {_sentence(role)}")
    if backstory.strip():
        lines.append(f"Your backstory: {_sentence(backstory)}")
    if goal.strip():
        lines.append(f"Your goal: {_sentence(goal)}")
    lines.append(
        "You are chatting with people, and maybe other agents, in a conversation."
        " Stay in character and answer concisely."
    )
    return "\n".join(lines)


def build_context(
    *,
    agent_user_id: str,
    system_prompt: str,
    history: Sequence[ContextMessage],
    limit: int,
    max_bytes: int | None = None,
) -> tuple[ChatMessage, ...]:
    """The messages to send for the agent's reply.

    ``history`` is the conversation up to and including the trigger, oldest
    first. The result is the system prompt, then the last ``limit`` messages
    that are not errors (errors are never shown to an LLM): the agent's own as
    ``assistant``, everyone else's as ``user``. When more than two people
    (agents included) wrote in the history, ``user`` messages are prefixed with
    ``"Name: "`` so the model can tell them apart. A message's stored LLM form
    (``llm_role``/``llm_content``) is used as is, in place of the derived one.
    An agent's reply comes after the tool steps that led to it (``steps``):
    a reply and its steps are kept or dropped together, except that the
    steps alone go when only the reply fits.

    With ``max_bytes``, the contents together take at most that many UTF-8
    bytes: the system prompt at most half of them (cut if longer), then the
    newest messages that fit in the rest. The first one that does not fit
    ends the window (the model sees no gap); the newest message, when it
    alone is too long, is cut to fit. Cuts keep the start of a text.
    """
    shown = [m for m in history if m.kind != "error"]
    many_voices = len({m.author_id for m in shown}) > 2
    window = shown[-limit:] if limit > 0 else []
    messages: list[list[ChatMessage]] = []  # a message, after its steps
    for message in window:
        role = "assistant" if message.author_id == agent_user_id else "user"
        content = message.content
        if role == "user" and many_voices:
            content = f"{message.author_name}: {content}"
        if message.llm_content is not None:
            content = message.llm_content
        steps = message.steps if role == "assistant" else ()
        messages.append([*steps, ChatMessage(message.llm_role or role, content)])
    system = ChatMessage("system", system_prompt)
    if max_bytes is not None:
        system = ChatMessage("system", cut_utf8(system_prompt, max_bytes // 2))
        messages = _newest_within(messages, max_bytes - utf8_size(system.content))
    return (system, *(m for group in messages for m in group))


def _size(messages: list[ChatMessage]) -> int:
    return sum(utf8_size(m.content) + sum(utf8_size(c.arguments) for c in m.tool_calls)
               for m in messages)


def _newest_within(groups: list[list[ChatMessage]], budget: int) -> list[list[ChatMessage]]:
    """The newest of ``groups`` (a message after its tool steps) whose contents
    fit in ``budget`` UTF-8 bytes, in order; a group's steps left out when only
    its message fits; the newest message cut to fit when it alone does not."""
    kept: list[list[ChatMessage]] = []
    for group in reversed(groups):
        size = _size(group)
        if size > budget and len(group) > 1:
            group = group[-1:]  # the reply without the steps that led to it
            size = _size(group)
        if size > budget:
            if kept:
                break
            [message] = group
            group = [ChatMessage(message.role, cut_utf8(message.content, budget))]
            size = _size(group)
        kept.append(group)
        budget -= size
        if budget <= 0:
            break
    kept.reverse()
    return kept


def _sentence(text: str) -> str:
    """``text`` on one line, ending with exactly one full stop (unless it ends in ! or ?)."""
    text = " ".join(text.split()).rstrip(".")
    return text if text.endswith(("!", "?")) else text + "."
