"""``wizd migrate-to``: a SQLite database copied into PostgreSQL keeps every
row, every seq and the order of ties; the PostgreSQL wizd goes on from there."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from sqlalchemy import Connection, text

from tests.support import postgres
from tests.support.engines import runtime_at, runtime_on
from wizd.errors import Conflict
from wizd.lock import InstanceLock
from wizd.services import agents, conversations, messages, search
from wizd.services.agents import AgentCreate
from wizd.store import jobs
from wizd.store.copy import copy


@pytest.fixture
def url() -> Iterator[str]:
    with postgres.database(migrated=False) as found:
        yield found


async def _fill(tmp_path: Path) -> dict[str, Any]:
    async with runtime_on("sqlite", tmp_path, "trio") as rt:
        ada = await agents.create(rt, AgentCreate(name="ada", role="r", backstory="",
                                                  goal=""))
        dm = await conversations.create_dm(rt, participants=["ada"])
        sent = [(await messages.send(rt, conversation_id=dm["id"], content=c))["message"]
                for c in ("kangaroos jump", "wombats dig", "the newest, deleted")]
        await search.search(rt, query="kangaroos")  # indexes what was stored
        # The newest message goes: AUTOINCREMENT never gives its seq again.
        await rt.db.write(lambda conn: conn.execute(
            text("DELETE FROM messages WHERE id = :id"), {"id": sent[-1]["id"]}))
        listed = await rt.db.read(lambda conn: jobs.list_jobs(conn, limit=100))
        return {"ada": ada, "dm": dm, "sent": sent, "jobs": listed,
                "db": rt.config.db}


def _seqs(conn: Connection, dm_id: str) -> list[tuple[str, int]]:
    return [(row[0], row[1]) for row in conn.execute(
        text("SELECT id, seq FROM messages WHERE source_id = :id ORDER BY seq"), {"id": dm_id})]


def test_everything_is_copied_and_postgresql_goes_on_from_there(
    tmp_path: Path, url: str
) -> None:
    before = anyio.run(_fill, tmp_path / "sqlite")
    counts = copy(before["db"], url)
    assert counts["messages"] == 2 and counts["jobs"] == 3 and counts["agents"] == 1

    async def check() -> None:
        async with runtime_on("sqlite", tmp_path / "sqlite", "trio") as old:
            expected = await old.db.read(_seqs, before["dm"]["id"])
        async with runtime_at(url, tmp_path, "trio") as rt:
            assert await rt.db.read(_seqs, before["dm"]["id"]) == expected
            assert await rt.db.read(lambda c: jobs.list_jobs(c, limit=100)) == before["jobs"]
            found = await search.search(rt, query="kangaroos")
            assert [h["message"]["id"] for h in found["results"]] == [before["sent"][0]["id"]]
            newer = await messages.send(rt, conversation_id=before["dm"]["id"], content="on")
            assert newer["message"]["seq"] == before["sent"][-1]["seq"] + 1
            assert rt.tallies.last_seq == newer["message"]["seq"]

    anyio.run(check)
    with pytest.raises(Conflict, match="already holds data"):
        copy(before["db"], url)


def test_the_command_copies_once_and_never_a_database_in_use(
    tmp_path: Path, url: str
) -> None:
    before = anyio.run(_fill, tmp_path / "sqlite")
    command = [sys.executable, "-m", "wizd", "--db", str(before["db"]), "migrate-to", url]
    running = InstanceLock(before["db"], "database")  # as a wizd on that file holds it
    running.acquire()
    try:
        busy = subprocess.run(command, capture_output=True, text=True, timeout=60)
    finally:
        running.release()
    assert busy.returncode == 1 and "already using the database" in busy.stderr
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("copied ") and "messages 2" in done.stdout
    again = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert again.returncode == 2 and "already holds data" in again.stderr
