"""A real ``wizd --db postgresql://...`` process on a real PostgreSQL server
(tests/support/postgres.py): migrated from nothing at start, an agent
answers with the offline provider, a subscriber sees the message and the
reply, in seq order; a second node on the same database serves the same
data, a wizd running as a node that runs already is refused; a restart finds
everything and upgrades nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import postgres
from tests.support.daemon import Wizd


@pytest.fixture
def url() -> Iterator[str]:
    with postgres.database(migrated=False) as found:
        yield found


@pytest.mark.parametrize("backend", ["trio", "asyncio"])
def test_a_reply_on_postgresql_reaches_a_subscriber(
    tmp_path: Path, url: str, backend: str
) -> None:
    w = Wizd(tmp_path / "wizd", extra_args=["--db", url], env={"WIZ_BACKEND": backend})
    try:
        w.start()
        agent = w.call("agent.create", name="ada", role="r", backstory="b", goal="g")
        dm = w.call("dm.create", participants=[agent["id"]])["id"]
        with w.connect() as conn:
            conn.call("events.subscribe", conversation_id=dm)
            sent = conn.call("message.send", conversation_id=dm, content="hello there")
            created = [conn.notification("message.created")["params"]["message"]
                       for _ in range(2)]
        assert [m["id"] for m in created][0] == sent["message"]["id"]
        reply = created[1]
        assert reply["reply_to"] == sent["message"]["id"]
        assert reply["author_id"] == agent["user_id"]
        assert created[0]["seq"] < reply["seq"]
        status = w.call("daemon.status")
        assert status["db"] == url and status["last_seq"] == reply["seq"]
        assert status["queue"]["completed"] == 1
        log = w.log_text()
        assert "schema v" in log and "Traceback" not in log
        assert status["node"] and [n["id"] for n in status["nodes"]] == [status["node"]]
        # A second node on the same database (its own socket) serves the same data...
        other = Wizd(tmp_path / "other", extra_args=["--db", url])
        other.start()
        try:
            listed = other.call("message.list", conversation_id=dm)["messages"]
            assert [m["id"] for m in listed] == [m["id"] for m in created]
            seen = other.call("daemon.status")
            assert seen["node"] != status["node"]
            assert {n["id"] for n in seen["nodes"] if n["alive"]} == {
                status["node"], seen["node"]}
            # ... and a wizd running as a node that runs already is refused, in one line.
            twin = Wizd(tmp_path / "twin", extra_args=["--db", url, "--node", status["node"]])
            twin.start(wait=False)
            assert twin.proc is not None
            assert twin.proc.wait(timeout=30) == 1
            twin.proc = None
            assert f"already running as node '{status['node']}'" in twin.log_text()
            assert "Traceback" not in twin.log_text()
        finally:
            other.close()
        w.stop()

        w.start()  # the same database: nothing to migrate, everything there
        listed = w.call("message.list", conversation_id=dm)["messages"]
        assert [m["id"] for m in listed] == [m["id"] for m in created]
        assert w.call("daemon.status")["last_seq"] == reply["seq"]
    finally:
        w.close()
