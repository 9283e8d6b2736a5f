"""What people and scripts read: tables and fields as a command prints them
(through ``wizctl.main``, stdout not a terminal), colour only on a terminal."""

from __future__ import annotations

import io

import pytest

from tests.wizctl.fakewizd import FakeWizd
from wizctl import text
from wizctl.main import main
from wizctl.table import table

Capsys = pytest.CaptureFixture[str]
PROVIDER = {"id": "p-123456789", "name": "local", "type": "openai", "base_url": None,
            "default_model": "m", "is_default": True, "has_api_key": False}


def agent(name: str, role: str, status: str = "active", model: str | None = None) -> dict:
    return {"id": f"a-{name}-0123", "user_id": f"u-{name}", "name": name, "role": role,
            "provider_id": "p-123456789", "model": model, "status": status}


def agent_list(fake: FakeWizd, capsys: Capsys, monkeypatch: pytest.MonkeyPatch,
               agents: list[dict]) -> list[str]:
    monkeypatch.setenv("WIZ_SOCKET", str(fake.path))
    fake.on("provider.list", {"providers": [PROVIDER]})
    fake.on("agent.list", {"agents": agents})
    assert main(["agent", "list"]) == 0
    return capsys.readouterr().out.split("\n")


def test_a_table_aligns_columns_and_marks_missing_values(
        fake: FakeWizd, capsys: Capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = agent_list(fake, capsys, monkeypatch,
                       [agent("alice", "tester", model="m1"), agent("bo", "", "inactive")])
    assert lines == [
        "NAME   STATUS    ROLE    PROVIDER  MODEL  ID",
        "alice  active    tester  local     m1     a-alice-",
        "bo     inactive          local     -      a-bo-012",
        "",
    ]


def test_a_table_aligns_wide_characters_by_display_width(
        fake: FakeWizd, capsys: Capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = agent_list(fake, capsys, monkeypatch, [agent("日本", "r"), agent("abcd", "r")])
    # the status column starts at the same screen column on both rows
    assert [text.width(line.split("active")[0]) for line in lines[1:3]] == [6, 6]


def test_table_cells_are_one_line_and_cannot_drive_the_terminal(
        fake: FakeWizd, capsys: Capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = agent_list(fake, capsys, monkeypatch, [agent("x", "a\nb\x1b[31mc\x1b]0;pwned\x07")])
    assert lines[1].split()[2:4] == ["a", "bc]0;pwned"]


def test_an_empty_list_says_so(fake: FakeWizd, capsys: Capsys,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    assert agent_list(fake, capsys, monkeypatch, []) == ["(none)", ""]


def test_colour_only_when_asked() -> None:
    assert text.paint("x", "red", False) == "x"
    assert text.paint("x", "bold red", True) == "\x1b[1;31mx\x1b[0m"
    out = table(("s",), [("failed",)], color=True, styles=lambda i, v: text.STATUS_COLORS.get(v))
    assert out == "\x1b[1mS     \x1b[0m\n\x1b[31mfailed\x1b[0m"


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_needs_a_terminal_and_no_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert text.use_color(Tty()) is True
    assert text.use_color(io.StringIO()) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert text.use_color(Tty()) is False
    assert text.is_terminal(Tty()) is True  # no colour, and still a terminal
    monkeypatch.setenv("TERM", "dumb")
    assert text.is_terminal(Tty()) is False


def test_fields_align_keys_and_indent_continuation_lines() -> None:
    assert text.fields([("id", "a1"), ("status", None), ("prompt", "one\ntwo")]) == (
        "id:     a1\nstatus: -\nprompt: one\n        two")


def test_width_counts_terminal_columns() -> None:
    assert text.width("abc") == 3
    assert text.width("日本") == 4
    assert text.width("e\u0301") == 1  # a combining mark takes no column
    assert text.width("\x1b[31mred\x1b[0m") == 3
