"""This turn's tool results within the context budget (pure: no I/O)."""

from __future__ import annotations

from wizd.llm.base import ChatMessage, ToolCall
from wizd.replies.tool_loop import _within


def turn(n: int) -> list[ChatMessage]:
    return [ChatMessage("assistant", "", tool_calls=(ToolCall(f"c{n}", "t__big", "{}"),)),
            ChatMessage("tool", "x" * 1000, tool_call_id=f"c{n}")]


def test_the_oldest_results_of_the_turn_give_way_first() -> None:
    history = [ChatMessage("system", "s"), ChatMessage("user", "u")]
    messages = [*history, *turn(1), *turn(2), *turn(3)]
    assert _within(messages, 2, 10_000) == messages
    fitted = _within(messages, 2, 2_100)
    assert [m.content[:7] for m in fitted if m.role == "tool"] == ["[result", "x" * 7, "x" * 7]
    assert fitted[3].tool_call_id == "c1"
    # The last step's results stay, even past the budget.
    tight = _within(messages, 2, 10)
    assert [m.content[:7] for m in tight if m.role == "tool"] == ["[result", "[result", "x" * 7]
