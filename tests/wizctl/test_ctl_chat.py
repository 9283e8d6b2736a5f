"""``wizctl chat``: where its input history lives, and what a line asks for.
The chat itself, through a pseudo-terminal (and tmux) and with piped input, is
tested against a real wizd in tests/e2e/test_wizctl_chat.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from wizctl import chat


def test_history_file_follows_xdg_state_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", "/state")
    assert chat.history_file() == Path("/state/wiz/chat_history")
    monkeypatch.delenv("XDG_STATE_HOME")
    assert chat.history_file() == Path.home() / ".local/state/wiz/chat_history"


@pytest.mark.parametrize(("line", "expected"), [
    ("", None),
    ("   ", None),
    ("hello", chat.Command("send", "hello")),
    ("  /not at the start", chat.Command("send", "  /not at the start")),
    ("//etc/passwd?", chat.Command("send", "/etc/passwd?")),
    ("/quit", chat.Command("quit")),
    ("/q", chat.Command("quit")),
    ("/help", chat.Command("help")),
    ("/agent bob", chat.Command("agent", "bob")),
    ("/agent   two words ", chat.Command("agent", "two words")),
    ("/history", chat.Command("history")),
    ("/history 3", chat.Command("history", count=3)),
    ("/history 99999", chat.Command("history", count=1000)),
])
def test_input_lines_are_messages_or_commands(line: str, expected: object) -> None:
    assert chat.parse(line) == expected


@pytest.mark.parametrize(("line", "problem"), [
    ("/agent", "/agent needs a name"),
    ("/history x", "/history takes a number"),
    ("/history 0", "/history takes a number"),
    ("/frobnicate", "unknown command /frobnicate"),
])
def test_bad_commands_say_what_is_wrong(line: str, problem: str) -> None:
    cmd = chat.parse(line)
    assert cmd is not None and cmd.name == "bad" and cmd.arg.startswith(problem)
