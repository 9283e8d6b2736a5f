"""``wizctl search`` (and ``--since``) against a real wizd."""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.test_wizctl import agent_and_dm, ok, wizctl
from tests.support.daemon import Wizd
from wizctl.since import parse_since


def test_search_finds_old_messages_and_their_conversation(wizd: Wizd) -> None:
    _, dm = agent_and_dm(wizd)
    wizd.call("agent.deactivate", id="ada")  # no replies: the hits stay put
    wizd.call("message.send", conversation_id=dm, content="the launch window opens at dawn")
    wizd.call("message.send", conversation_id=dm, content="lunch at noon")

    out = ok(wizctl(wizd, "search", "launch", "--agent", "ada", "--since", "1h"))
    lines = out.splitlines()
    assert len(lines) == 2 and "@ada" in lines[0]
    assert lines[1].strip() == "the [launch] window opens at dawn"

    found = json.loads(ok(wizctl(wizd, "search", 'window "dawn', "--json")))
    assert [h["message"]["content"] for h in found["results"]] == [
        "the launch window opens at dawn"]
    assert ok(wizctl(wizd, "search", "launch", "--since", "2099-01-01")) == "no message found\n"


def test_a_malformed_raw_query_is_a_usage_error(wizd: Wizd) -> None:
    proc = wizctl(wizd, "search", '"launch', "--raw")
    assert proc.returncode == 2, proc.stderr
    assert "FTS5" in proc.stderr
    proc = wizctl(wizd, "search", "x", "--since", "yesterday-ish")
    assert proc.returncode == 2 and "--since" in proc.stderr


@pytest.mark.parametrize(("text", "seconds"), [
    ("30m", 1800), ("2h", 7200), ("2d", 2 * 86400), ("1w", 7 * 86400), ("90s", 90)])
def test_since_ages(text: str, seconds: int) -> None:
    now = 2_000_000_000.0
    assert parse_since(text, now=now) == int((now - seconds) * 1000)


def test_since_dates_are_local() -> None:
    assert parse_since("2026-11-30") == int(time.mktime((2026, 11, 30, 0, 0, 0, 0, 0, -1)) * 1000)
    with pytest.raises(ValueError, match="neither an age"):
        parse_since("soon")
