"""Operator logs: one line per event, journald priorities, no secrets."""

from __future__ import annotations

import io
import logging
import os
import sys
from pathlib import Path

import pytest

from wizd import logs


def record(level: int, msg: str, exc_info: object = None) -> logging.LogRecord:
    return logging.LogRecord("wizd.test", level, __file__, 1, msg, (),
                             exc_info)  # type: ignore[arg-type]


def test_journal_lines_carry_the_syslog_priority() -> None:
    fmt = logs.LineFormatter("%(name)s: %(message)s", journal=True)
    assert fmt.format(record(logging.INFO, "ready")) == "<6>wizd.test: ready"
    assert fmt.format(record(logging.WARNING, "w")).startswith("<4>")
    assert fmt.format(record(logging.ERROR, "e")).startswith("<3>")
    assert fmt.format(record(logging.DEBUG, "d")).startswith("<7>")


def test_a_traceback_stays_on_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        line = logs.LineFormatter("%(message)s").format(
            record(logging.ERROR, "failed", sys.exc_info()))
    assert "\n" not in line
    assert line.startswith("failed | Traceback") and line.endswith("ValueError: boom")


def test_things_that_look_like_keys_are_masked() -> None:
    fmt = logs.LineFormatter("%(message)s")
    line = fmt.format(record(logging.INFO, "key sk-proj-abcdefgh12345678 and "
                                           "Authorization: Bearer tok3n.value, done"))
    assert line == "key *** and Authorization: Bearer ***, done"


def test_journal_mode_only_when_stderr_is_the_journal_stream(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with open(tmp_path / "stderr", "w") as stream:
        monkeypatch.setattr(sys, "stderr", stream)
        st = os.fstat(stream.fileno())
        assert logs.stderr_is_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"})
        assert not logs.stderr_is_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino + 1}"})
        assert not logs.stderr_is_journal({"JOURNAL_STREAM": "junk"})
        assert not logs.stderr_is_journal({})
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # no file descriptor at all
    assert not logs.stderr_is_journal({"JOURNAL_STREAM": "1:2"})


def test_control_characters_are_escaped_not_written_raw() -> None:
    fmt = logs.LineFormatter("%(name)s: %(message)s", journal=True)
    line = fmt.format(record(logging.INFO, "agent nul\x00name\r<3>forged\x1b[2K created\u202e"))
    assert line == "<6>wizd.test: agent nul\\x00name\\x0d<3>forged\\x1b[2K created\\u202e"
    assert line.isprintable()
