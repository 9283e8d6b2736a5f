"""Names are one-line labels: control characters are refused, and never reach the log raw.

One daemon for the module: each bad name is refused on its own, so nothing a
test does changes what another sees (only names that refuse are tried there).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.rpc.shared import shared_wizd
from tests.support.daemon import Wizd

BAD_NAMES = ["nul\u0000name", "two\nlines", "esc\u001b[31mred", "tab\tbed", "del\u007f",
             "c1\u0085next", "rtl\u202egnp.exe", "sep\u2028arator"]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wizd]:
    with shared_wizd(tmp_path_factory.mktemp("names")) as w:
        yield w


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_a_control_character_in_a_name_is_refused(daemon: Wizd, bad: str) -> None:
    with daemon.connect() as c:
        for method, params in (("agent.create", {"role": "r", "backstory": "b", "goal": "g"}),
                               ("provider.create", {"type": "offline", "default_model": "m"}),
                               ("project.create", {})):
            resp = c.request(method, name=bad, **params)
            assert resp["error"]["code"] == -32602, (method, resp)
            assert resp["error"]["data"]["field"] == "name"
            assert "control characters" in resp["error"]["message"]
        # Nothing was stored under a name with a control character.
        names = [o["name"] for kind in ("agent", "provider", "project")
                 for o in c.call(f"{kind}.list")[f"{kind}s"]]
        assert not set(names) & set(BAD_NAMES), names
    assert "\u0000" not in daemon.log_text() and "\u001b" not in daemon.log_text()


def test_printable_unicode_names_still_work(daemon: Wizd) -> None:
    agent = daemon.call("agent.create", name="Zoë 🤖‍💻 李", role="r", backstory="b", goal="g")
    assert agent["name"] == "Zoë 🤖‍💻 李"
