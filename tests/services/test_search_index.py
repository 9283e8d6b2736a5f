"""The full-text index follows the messages after their commits
(``services.search_index``): a message's commit leaves the index alone, the
index takes it in ``DELAY`` later with the others of that while, and a wizd
that stopped before indexing catches up when it starts again. (A search
indexing first what is not yet is in test_search.py: every search there runs
without this task.) Virtual time: trio's autojump clock."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from sqlalchemy import Connection, text
from trio.testing import MockClock

from tests.support.runtime import started_runtime
from wizd.services import messages, projects
from wizd.services.runtime import Runtime
from wizd.services.search_index import DELAY

pytestmark = pytest.mark.trio


async def matches(rt: Runtime, word: str) -> list[int]:
    """What the index holds for ``word`` (seqs), read straight from it."""
    def q(conn: Connection) -> list[int]:
        return [r[0] for r in conn.execute(text(
            "SELECT rowid FROM messages_fts WHERE messages_fts MATCH :w ORDER BY rowid"),
            {"w": word})]
    return await rt.db.read(q)


async def channel(rt: Runtime) -> str:
    project = await projects.create_project(rt, name="p")
    made = await projects.create_channel(rt, project_id=project["id"], name="c")
    return str(made["id"])


async def indexed_after_delay(rt: Runtime, seq: int) -> None:
    """The index reaches ``seq`` DELAY from now, not before."""
    await trio.sleep(DELAY * 0.9)
    assert rt.search_index.indexed < seq
    await trio.sleep(DELAY * 0.2)
    assert rt.search_index.indexed == seq


async def test_messages_are_indexed_after_their_commit(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    async with started_runtime(tmp_path, "trio") as rt, trio.open_nursery() as nursery:
        cid = await channel(rt)
        seqs = [(await messages.send(rt, conversation_id=cid, content=f"fox {i}"))
                ["message"]["seq"] for i in range(3)]
        assert await matches(rt, "fox") == []  # their commits did not index them
        await nursery.start(rt.search_index.run, rt.db, rt.tallies)
        await indexed_after_delay(rt, seqs[-1])
        assert await matches(rt, "fox") == seqs
        # Running: a new message is indexed DELAY after its commit.
        later = (await messages.send(rt, conversation_id=cid, content="fox again"))["message"]
        await indexed_after_delay(rt, later["seq"])
        assert await matches(rt, "fox") == [*seqs, later["seq"]]
        nursery.cancel_scope.cancel()


async def test_a_restarted_wizd_indexes_what_the_stopped_one_left(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    async with started_runtime(tmp_path, "trio") as rt:  # stops before indexing
        cid = await channel(rt)
        seqs = [(await messages.send(rt, conversation_id=cid, content=f"owl {i}"))
                ["message"]["seq"] for i in range(450)]  # more than a batch
    async with started_runtime(tmp_path, "trio") as rt, trio.open_nursery() as nursery:
        assert await matches(rt, "owl") == []
        await nursery.start(rt.search_index.run, rt.db, rt.tallies)
        await trio.sleep(DELAY * 1.1)
        assert rt.search_index.indexed == seqs[-1]
        assert await matches(rt, "owl") == seqs
        nursery.cancel_scope.cancel()
