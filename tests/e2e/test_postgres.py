"""A real ``wizd --db postgresql://...`` process on a real PostgreSQL server
(tests/support/postgres.py): migrated from nothing at start, an agent
answers with the offline provider, a subscriber sees the message and the
reply, in seq order; a second wizd on the same database is refused (one
node per database for now); a restart finds everything and upgrades nothing."""

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
        # A second wizd on the same database (its own socket) is refused, in one line.
        other = Wizd(tmp_path / "other", extra_args=["--db", url])
        other.start(wait=False)
        assert other.proc is not None
        assert other.proc.wait(timeout=30) == 1
        other.proc = None
        assert "another wizd is already using the database" in other.log_text()
        assert "Traceback" not in other.log_text()
        w.stop()

        w.start()  # the same database: nothing to migrate, everything there
        listed = w.call("message.list", conversation_id=dm)["messages"]
        assert [m["id"] for m in listed] == [m["id"] for m in created]
        assert w.call("daemon.status")["last_seq"] == reply["seq"]
    finally:
        w.close()
