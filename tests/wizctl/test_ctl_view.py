"""Messages as people read them, and notifications printed as they come:
stored messages as lines, replies streaming in a live area on a terminal."""

from __future__ import annotations

import io
import time

import pytest

from wizctl.client import Notification
from wizctl.live import LiveArea, fit, rows_needed
from wizctl.view import View, message_line


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """An 80x24 terminal (what the live area asks for its size)."""
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("LINES", "24")
    monkeypatch.setenv("TERM", "xterm")


class FakeNames:
    def user_name(self, user_id: object) -> str:
        return {"u1": "me", "u2": "alice", "u3": "bob"}.get(str(user_id), "?")

    def agent_name(self, agent_id: object) -> str:
        return {"a2": "alice"}.get(str(agent_id), "?")

    def label_for_id(self, conversation_id: object) -> str:
        return "#general"


def ms(h: int, m: int, s: int) -> int:
    return int(time.mktime((2024, 5, 1, h, m, s, 0, 0, -1)) * 1000)


CLEAR = "\r\x1b[J"


def test_message_line_has_time_name_and_content() -> None:
    msg = {"created_at": ms(9, 5, 7), "content": "hello\nworld", "kind": "text"}
    assert message_line(msg, "alice") == "09:05:07 alice: hello\n                world"


def test_error_messages_are_marked_and_red_on_a_tty() -> None:
    msg = {"created_at": ms(9, 5, 7), "content": "provider said no", "kind": "error"}
    assert message_line(msg, "alice") == "09:05:07 alice: error: provider said no"
    coloured = message_line(msg, "alice", color=True)
    assert "\x1b[31merror: provider said no\x1b[0m" in coloured


def test_message_content_cannot_drive_the_terminal() -> None:
    msg = {"created_at": ms(1, 2, 3), "content": "hi\x1b]0;pwned\x07\x1b[2J there"}
    assert message_line(msg, "x") == "01:02:03 x: hi]0;pwned there"


def test_rows_needed_and_fit() -> None:
    assert rows_needed("", 10) == 1
    assert rows_needed("x" * 10, 10) == 1
    assert rows_needed("x" * 11, 10) == 2
    assert rows_needed("日本" * 2, 10) == 1 and rows_needed("日本" * 3, 10) == 2
    assert rows_needed("a\n\nb", 10) == 3
    text = "\n".join(f"line{i}" for i in range(10))
    assert fit(text, 80, 3) == "line7\nline8\nline9"
    cut = fit("y" * 30, 10, 2)
    assert cut.startswith("…") and rows_needed(cut, 10) <= 2 and cut.endswith("y")


def test_live_area_appends_then_redraws_in_place() -> None:
    out = io.StringIO()
    area = LiveArea(out, size=lambda: (10, 24))
    area.show("abc")
    area.show("abcdef")
    assert out.getvalue() == "abcdef"
    area.show("xy")  # not a continuation: erase and draw again
    assert out.getvalue() == "abcdef" + CLEAR + "xy"
    area.show("x" * 25)  # three rows
    out.truncate(0)
    out.seek(0)
    area.clear()
    assert out.getvalue() == "\r\x1b[2A\x1b[J"
    area.clear()  # nothing shown: nothing written
    assert out.getvalue() == "\r\x1b[2A\x1b[J"


def test_live_area_shows_the_end_of_what_does_not_fit() -> None:
    out = io.StringIO()
    LiveArea(out, size=lambda: (80, 4)).show("\n".join(f"line{i}" for i in range(10)))
    assert out.getvalue() == "line7\nline8\nline9"


def delta(job: str, index: int, text: str, author: str = "u2") -> Notification:
    return Notification("message.delta", {"subscription": 1, "job_id": job, "conversation_id": "c",
                                          "author_id": author, "index": index, "delta": text})


def created(seq: int, content: str, author: str = "u2", kind: str = "text") -> Notification:
    return Notification("message.created", {"subscription": 1, "message": {
        "id": f"m{seq}", "seq": seq, "conversation_id": "c", "author_id": author,
        "content": content, "kind": kind, "created_at": ms(10, 0, seq)}})


def live_view(out: io.StringIO, **kwargs: bool) -> View:
    return View(FakeNames(), out=out, color=False, **kwargs)


def test_plain_view_prints_only_stored_messages() -> None:
    out = io.StringIO()
    view = live_view(out)
    for note in (delta("j", 0, "Hel"), delta("j", 1, "lo"), created(5, "Hello"),
                 Notification("agent.status", {"agent_id": "a2", "status": "busy"})):
        view.notification(note)
    assert out.getvalue() == "10:00:05 alice: Hello\n"


def test_a_terminal_streams_deltas_then_settles_the_stored_message() -> None:
    out = Tty()
    view = live_view(out)
    view.notification(delta("j", 0, "Hel"))
    view.notification(delta("j", 1, "lo"))
    assert out.getvalue().endswith("alice: Hello")
    view.notification(created(5, "Hello"))
    assert out.getvalue().endswith(CLEAR + "10:00:05 alice: Hello\n")
    view.close()  # nothing streams any more: nothing to erase
    assert out.getvalue().endswith(CLEAR + "10:00:05 alice: Hello\n")


def test_no_color_still_streams_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    out = Tty()
    view = View(FakeNames(), out=out)
    view.notification(delta("j", 0, "Hel"))
    view.notification(created(5, "Hello"))
    assert out.getvalue().endswith("alice: Hel" + CLEAR + "10:00:05 alice: Hello\n")
    assert "\x1b[1m" not in out.getvalue()


def test_a_retried_job_starts_its_stream_again() -> None:
    out = Tty()
    view = live_view(out)
    view.notification(delta("j", 0, "first try"))
    view.notification(delta("j", 1, " more"))
    view.notification(delta("j", 1, " more"))  # a duplicate piece is ignored
    assert out.getvalue().endswith("alice: first try more")
    view.notification(delta("j", 0, "again"))  # index 0 again: the earlier pieces are void
    assert out.getvalue().endswith(CLEAR + out.getvalue().rsplit(CLEAR, 1)[1])
    assert out.getvalue().rsplit(CLEAR, 1)[1].endswith("alice: again")


def test_a_message_from_someone_else_does_not_settle_the_stream() -> None:
    out = Tty()
    view = live_view(out)
    view.notification(delta("j", 0, "thinking"))
    view.notification(created(6, "hi all", author="u1"))
    # the stored line is printed above, the live line drawn again below it
    last = out.getvalue().rsplit("\n", 1)[1]
    assert out.getvalue().endswith(CLEAR + "10:00:06 me: hi all\n" + last)
    assert last.endswith("alice: thinking")
    view.close()  # the unstored reply is erased on the way out
    assert out.getvalue().endswith(last + CLEAR)


def test_json_view_prints_every_notification_as_one_line() -> None:
    out = io.StringIO()
    view = View(FakeNames(), out=out, json=True)
    view.notification(delta("j", 0, "x"))
    view.message({"seq": 1, "content": "old"})
    lines = out.getvalue().splitlines()
    assert lines[0].startswith('{"method":"message.delta"')
    assert lines[1] == '{"method":"message.created","params":{"message":{"seq":1,"content":"old"}}}'


def test_events_view_names_agents_and_jobs() -> None:
    out = io.StringIO()
    view = View(FakeNames(), out=out, color=False, everything=True, where=True)
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
    view = View(FakeNames(), out=out, bare=True)
    view.notification(created(1, "just this"))
    assert out.getvalue() == "just this\n"


TOOL_STARTED = Notification("tool.started", {
    "job_id": "j1", "conversation_id": "c1", "call_id": "a", "name": "fs.read_file",
    "arguments": {"path": "notes.txt"}, "step": 1})
TOOL_FINISHED = Notification("tool.finished", {
    "job_id": "j1", "conversation_id": "c1", "call_id": "a", "name": "fs.read_file",
    "duration_ms": 12, "outcome": "ok", "result": "line one\nline two"})


def test_tool_calls_are_one_dim_line_each() -> None:
    out = io.StringIO()
    view = View(FakeNames(), out=out, live=False, color=True)
    view.notification(TOOL_STARTED)
    view.notification(TOOL_FINISHED)
    view.notification(Notification("tool.finished", {**TOOL_FINISHED.params,
                                                     "outcome": "refused", "result": "no"}))
    assert out.getvalue().splitlines() == [
        '\x1b[2m  → fs.read_file {"path":"notes.txt"}\x1b[0m',
        "\x1b[2m  ← fs.read_file 12 ms: line one line two\x1b[0m",
        "\x1b[2m  ← fs.read_file 12 ms [refused]: no\x1b[0m"]


def test_a_bare_view_puts_tool_calls_beside_the_answer(
        capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    view = View(FakeNames(), out=out, live=False, bare=True)
    view.notification(TOOL_STARTED)
    assert out.getvalue() == ""
    assert capsys.readouterr().err == '  → fs.read_file {"path":"notes.txt"}\n'
