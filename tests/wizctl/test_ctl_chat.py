"""``wizctl chat``: where its input history lives. The chat itself, through a
pseudo-terminal and with piped input, is tested against a real wizd in
tests/e2e/test_wizctl_chat.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from wizctl import chat


def test_history_file_follows_xdg_state_home(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", "/state")
    assert chat.history_file() == Path("/state/wiz/chat_history")
    monkeypatch.delenv("XDG_STATE_HOME")
    assert chat.history_file() == Path.home() / ".local/state/wiz/chat_history"
