"""``wizctl usage`` and ``wizctl log --usage`` against a real wizd (the offline
provider counts words as tokens)."""

from __future__ import annotations

import json

from tests.e2e.test_wizctl import agent_and_dm, ok, wizctl
from tests.support.daemon import Wizd


def test_usage_after_a_reply(wizd: Wizd) -> None:
    agent_and_dm(wizd)
    reply = ok(wizctl(wizd, "send", "ada", "count these words", "--wait")).strip()
    words = len(reply.split())

    [row] = json.loads(ok(wizctl(wizd, "usage", "--agent", "ada", "--json")))["usage"]
    assert (row["agent_name"], row["model"], row["replies"]) == ("ada", "offline-demo", 1)
    assert row["completion_tokens"] == words
    table = ok(wizctl(wizd, "usage", "--since", "1h")).splitlines()
    assert table[1].split()[:3] == ["ada", "offline-demo", "1"]

    log = ok(wizctl(wizd, "log", "ada", "--usage")).splitlines()
    assert log[-1] == (f"  [offline-demo: {row['prompt_tokens']} prompt + {words} "
                       "completion tokens]")
    assert ok(wizctl(wizd, "usage", "--since", "2099-01-01")) == "no replies with usage yet\n"
