"""Names are one-line labels: control characters are refused, and never reach the log raw."""

from __future__ import annotations

import pytest

from tests.support.daemon import Wizd

BAD_NAMES = ["nul\u0000name", "two\nlines", "esc\u001b[31mred", "tab\tbed", "del\u007f",
             "c1\u0085next", "rtl\u202egnp.exe", "sep\u2028arator"]


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_a_control_character_in_a_name_is_refused(wizd: Wizd, bad: str) -> None:
    with wizd.connect() as c:
        for method, params in (("agent.create", {"role": "r", "backstory": "b", "goal": "g"}),
                               ("provider.create", {"type": "offline", "default_model": "m"}),
                               ("project.create", {})):
            resp = c.request(method, name=bad, **params)
            assert resp["error"]["code"] == -32602, (method, resp)
            assert resp["error"]["data"]["field"] == "name"
            assert "control characters" in resp["error"]["message"]
        assert c.call("agent.list")["agents"] == []
    assert "\u0000" not in wizd.log_text() and "\u001b" not in wizd.log_text()


def test_printable_unicode_names_still_work(wizd: Wizd) -> None:
    agent = wizd.call("agent.create", name="Zoë 🤖‍💻 李", role="r", backstory="b", goal="g")
    assert agent["name"] == "Zoë 🤖‍💻 李"
