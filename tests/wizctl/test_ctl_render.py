"""Rendering: tables, message lines, colour, and the live streaming area."""

from __future__ import annotations

import io
import time

import pytest

from wizctl import render
from wizctl.client import Notification


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class FakeNames:
    def user_name(self, user_id: object) -> str:
        return {"u1": "me", "u2": "alice", "u3": "bob"}.get(str(user_id), "?")

    def agent_name(self, agent_id: object) -> str:
        return {"a2": "alice"}.get(str(agent_id), "?")

    def label_for_id(self, conversation_id: object) -> str:
        return "#general"


def ms(h: int, m: int, s: int) -> int:
    return int(time.mktime((2024, 5, 1, h, m, s, 0, 0, -1)) * 1000)


def test_table_aligns_columns_and_marks_missing_values() -> None:
    out = render.table(("name", "status"), [("alice", "active"), ("bo", None)])
    assert out.splitlines() == ["NAME   STATUS", "alice  active", "bo     -"]


def test_table_aligns_wide_characters_by_display_width() -> None:
    out = render.table(("n", "x"), [("日本", "1"), ("abcd", "2")])
    lines = out.splitlines()
    assert render.width("日本") == 4
    # the second column starts at the same screen column on both rows
    assert render.width(lines[1].split("1")[0]) == render.width(lines[2].split("2")[0]) == 6


def test_table_of_nothing_says_so() -> None:
    assert render.table(("a",), []) == "(none)"


def test_table_cells_are_one_line_and_stripped_of_escapes() -> None:
    out = render.table(("x",), [("a\nb\x1b[31mc",)])
    assert out.splitlines()[1] == "a bc"


def test_colour_only_when_asked() -> None:
    assert render.paint("x", "red", False) == "x"
    assert render.paint("x", "bold red", True) == "\x1b[1;31mx\x1b[0m"
    out = render.table(("s",), [("failed",)], color=True,
                       styles=lambda i, v: render.STATUS_COLORS.get(v))
    assert "\x1b[31mfailed" in out


def test_use_color_needs_a_tty_and_no_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert render.use_color(Tty()) is True
    assert render.use_color(io.StringIO()) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert render.use_color(Tty()) is False
    assert render.View(FakeNames(), out=Tty()).live is True  # no colour, still streaming
    monkeypatch.setenv("TERM", "dumb")
    assert render.is_terminal(Tty()) is False


def test_message_line_has_time_name_and_content() -> None:
    msg = {"created_at": ms(9, 5, 7), "content": "hello\nworld", "kind": "text"}
    line = render.message_line(msg, "alice")
    assert line == "09:05:07 alice: hello\n                world"


def test_error_messages_are_marked_and_red_on_a_tty() -> None:
    msg = {"created_at": ms(9, 5, 7), "content": "provider said no", "kind": "error"}
    assert render.message_line(msg, "alice") == "09:05:07 alice: error: provider said no"
    coloured = render.message_line(msg, "alice", color=True)
    assert "\x1b[31merror: provider said no\x1b[0m" in coloured


def test_message_content_cannot_drive_the_terminal() -> None:
    msg = {"created_at": ms(1, 2, 3), "content": "hi\x1b]0;pwned\x07\x1b[2J there"}
    assert render.message_line(msg, "x") == "01:02:03 x: hi]0;pwned there"


def test_fields_align_keys() -> None:
    assert render.fields([("id", "a1"), ("status", None)]) == "id:     a1\nstatus: -"


def test_rows_needed_and_fit() -> None:
    assert render.rows_needed("", 10) == 1
    assert render.rows_needed("x" * 10, 10) == 1
    assert render.rows_needed("x" * 11, 10) == 2
    assert render.rows_needed("a\n\nb", 10) == 3
    text = "\n".join(f"line{i}" for i in range(10))
    assert render.fit(text, 80, 3) == "line7\nline8\nline9"
    cut = render.fit("y" * 30, 10, 2)
    assert cut.startswith("…") and render.rows_needed(cut, 10) <= 2 and cut.endswith("y")


def test_live_area_appends_then_redraws_in_place() -> None:
    out = io.StringIO()
    area = render.LiveArea(out, size=lambda: (10, 24))
    area.show("abc")
    area.show("abcdef")
    assert out.getvalue() == "abcdef"
    area.show("xy")  # not a continuation: erase and draw again
    assert out.getvalue() == "abcdef\r\x1b[Jxy"
    area.show("x" * 25)  # three rows
    out.truncate(0)
    out.seek(0)
    area.clear()
    assert out.getvalue() == "\r\x1b[2A\x1b[J"
    area.clear()  # nothing shown: nothing written
    assert out.getvalue() == "\r\x1b[2A\x1b[J"


def delta(job: str, index: int, text: str, author: str = "u2") -> Notification:
    return Notification("message.delta", {"subscription": 1, "job_id": job, "conversation_id": "c",
                                          "author_id": author, "index": index, "delta": text})


def created(seq: int, content: str, author: str = "u2", kind: str = "text") -> Notification:
    return Notification("message.created", {"subscription": 1, "message": {
        "id": f"m{seq}", "seq": seq, "conversation_id": "c", "author_id": author,
        "content": content, "kind": kind, "created_at": ms(10, 0, seq)}})


def test_plain_view_prints_only_stored_messages() -> None:
    out = io.StringIO()
    view = render.View(FakeNames(), out=out, live=False, color=False)
    for note in (delta("j", 0, "Hel"), delta("j", 1, "lo"), created(5, "Hello"),
                 Notification("agent.status", {"agent_id": "a2", "status": "busy"})):
        view.notification(note)
    assert out.getvalue() == "10:00:05 alice: Hello\n"


def test_live_view_streams_deltas_then_settles_the_stored_message() -> None:
    out = Tty()
    view = render.View(FakeNames(), out=out, live=True, color=False)
    view.area._size = lambda: (80, 24)  # type: ignore[union-attr]
    view.notification(delta("j", 0, "Hel"))
    view.notification(delta("j", 1, "lo"))
    assert out.getvalue().endswith("alice: Hello")
    view.notification(created(5, "Hello"))
    assert out.getvalue().endswith("\r\x1b[J10:00:05 alice: Hello\n")
    assert view.streams == {}


def test_live_view_restarts_a_stream_when_the_job_is_retried() -> None:
    view = render.View(FakeNames(), out=Tty(), live=True, color=False)
    view.notification(delta("j", 0, "first try"))
    view.notification(delta("j", 1, " more"))
    view.notification(delta("j", 1, " more"))  # a duplicate piece is ignored
    assert view.streams["j"].text == "first try more"
    view.notification(delta("j", 0, "again"))
    assert view.streams["j"].text == "again"


def test_a_message_from_someone_else_does_not_settle_the_stream() -> None:
    out = Tty()
    view = render.View(FakeNames(), out=out, live=True, color=False)
    view.area._size = lambda: (80, 24)  # type: ignore[union-attr]
    view.notification(delta("j", 0, "thinking"))
    view.notification(created(6, "hi all", author="u1"))
    assert "j" in view.streams
    # the stored line is printed above, the live line drawn again below it
    assert out.getvalue().endswith("10:00:06 me: hi all\n" + out.getvalue().rsplit("\n", 1)[1])
    assert out.getvalue().rsplit("\n", 1)[1].endswith("alice: thinking")


def test_json_view_prints_every_notification_as_one_line() -> None:
    out = io.StringIO()
    view = render.View(FakeNames(), out=out, json=True)
    view.notification(delta("j", 0, "x"))
    view.message({"seq": 1, "content": "old"})
    lines = out.getvalue().splitlines()
    assert lines[0].startswith('{"method":"message.delta"')
    assert lines[1] == '{"method":"message.created","params":{"message":{"seq":1,"content":"old"}}}'


def test_events_view_names_agents_and_jobs() -> None:
    out = io.StringIO()
    view = render.View(FakeNames(), out=out, live=False, color=False, everything=True, where=True)
    view.notification(Notification("agent.status", {"agent_id": "a2", "status": "busy"}))
    view.notification(Notification("job.updated", {"job": {
        "id": "0123456789", "name": "response_generator", "status": "failed", "attempts": 3,
        "max_attempts": 3, "failure_reason": "HTTP 500"}}))
    view.notification(created(7, "yo"))
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("agent alice is busy")
    assert lines[1].endswith("job 01234567 response_generator failed (attempt 3/3): HTTP 500")
    assert lines[2] == "10:00:07 #general alice: yo"


def test_bare_view_prints_content_only() -> None:
    out = io.StringIO()
    view = render.View(FakeNames(), out=out, live=False, bare=True)
    view.notification(created(1, "just this"))
    assert out.getvalue() == "just this\n"
