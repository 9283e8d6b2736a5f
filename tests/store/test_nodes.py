"""The queue with several nodes on one PostgreSQL database (wizd.cluster):
an active job moves only for the node that holds it, the jobs of a node
whose lease lapsed are taken back once, the attempt given back, and two
nodes adding to one group at the same moment leave it one head.

Two ``Database``s, each a node with its own write connection, on a real
server (tests/support/postgres.py)."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import psycopg
import pytest
from sqlalchemy import Connection

from tests.support import postgres as pg_support
from wizd.errors import DaemonBusy, StorageUnavailable
from wizd.objects import Job
from wizd.store import jobs, nodes
from wizd.store.database import Database, raw
from wizd.store.postgres_keys import NODE_LOCK_CLASS

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("anyio_backend", ["trio"])]


@asynccontextmanager
async def two_nodes() -> AsyncIterator[tuple[Database, Database]]:
    with pg_support.database() as url:
        a, b = Database(url, node="a"), Database(url, node="b")
        await a.open()
        await b.open()
        try:
            yield a, b
        finally:
            await a.close()
            await b.close()


def _add(conn: Connection, group_key: str | None = None) -> Job:
    return jobs.add_job(conn, name="noop", data={}, now_ms=1, max_attempts=3,
                        group_key=group_key)


def _claim(conn: Connection) -> list[Job]:
    return jobs.claim(conn, now_ms=10, limit=10)[0]


def _register(node_id: str, lease_ms: int) -> Callable[[Connection], None]:
    def tx(conn: Connection) -> None:
        nodes.register(conn, node_id=node_id, host="h", pid=1, socket="s", version="v",
                       lease_ms=lease_ms)
    return tx


async def test_an_active_job_moves_only_for_the_node_that_holds_it() -> None:
    async with two_nodes() as (a, b):
        job = await a.write(_add)
        assert [j["id"] for j in await a.write(_claim)] == [job["id"]]
        assert await b.write(jobs.held, job["id"]) is False
        assert await b.write(jobs.complete, job["id"], "b's", 20) is None
        assert await b.write(jobs.fail, job["id"], "b's", 20) is None
        assert await a.write(jobs.held, job["id"]) is True
        done = await a.write(jobs.complete, job["id"], "a's", 20)
        assert done is not None and done["status"] == "completed" and done["result"] == "a's"


async def test_the_jobs_of_a_node_whose_lease_lapsed_are_taken_back_once() -> None:
    async with two_nodes() as (a, b):
        await a.write(_register("a", -1))  # lapsed at once: a died, say
        await b.write(_register("b", 60_000))
        added = [await a.write(_add) for _ in range(2)]
        claimed = await a.write(_claim)
        assert {j["id"] for j in claimed} == {j["id"] for j in added}
        assert all(j["attempts"] == 1 for j in claimed)
        taken = await b.write(lambda conn: jobs.take_back(conn, mine="", now_ms=30))
        assert {j["id"] for j in taken} == {j["id"] for j in added}
        assert all(j["status"] == "waiting" and j["attempts"] == 0 for j in taken)
        assert await b.write(lambda conn: jobs.take_back(conn, mine="", now_ms=31)) == []
        # a, back, finds its jobs gone: what it brings is refused.
        assert await a.write(jobs.complete, added[0]["id"], "late", 40) is None
        again = await b.write(_claim)
        assert {j["id"] for j in again} == {j["id"] for j in added}
        assert await b.write(jobs.held, added[0]["id"]) is True
        # b holds them under a live lease: another node's take-back leaves them.
        assert await a.write(lambda conn: jobs.take_back(conn, mine="", now_ms=50)) == []
        listed = {n["id"]: n["alive"] for n in await a.read(nodes.every)}
        assert listed == {"a": False, "b": True}


async def test_two_nodes_adding_to_one_group_at_once_leave_one_head() -> None:
    """Both transactions insert before either marks the head (a barrier holds
    them there): the group lock makes the second mark with the first's row."""
    async with two_nodes() as (a, b):
        both_added = threading.Barrier(2, timeout=10)

        def add_then_wait(conn: Connection) -> Job:
            job = _add(conn, "g")
            both_added.wait()
            return job

        async with anyio.create_task_group() as tg:
            tg.start_soon(a.write, add_then_wait)
            tg.start_soon(b.write, add_then_wait)

        def heads(conn: Connection) -> int:
            return int(raw(conn).execute(
                "SELECT count(*) FROM jobs WHERE group_key = 'g' AND is_head = 1").fetchone()[0])

        assert await a.read(heads) == 1
        claimed = await b.write(_claim)
        assert len(claimed) == 1  # one at a time in the group, whichever node claims


async def test_a_second_database_as_the_same_node_is_refused() -> None:
    async with two_nodes() as (a, _b):
        assert a.url is not None
        twin = Database(a.url, node="a")
        with pytest.raises(DaemonBusy, match="already running as node 'a'"):
            await twin.open()


async def test_a_node_whose_lost_session_still_holds_its_lock_waits_for_it() -> None:
    """The write connection was cut (its session killed) while the server
    still holds the node's lock for it (as after a network cut, until the
    server notices): writes fail as StorageUnavailable meanwhile, not as a
    second wizd, and work again once the lock is free."""
    async with two_nodes() as (a, _b):
        assert a.url is not None
        await a.write(_add)
        with psycopg.connect(a.url, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                          " WHERE pid <> pg_backend_pid() AND datname = current_database()"
                          " AND query NOT ILIKE '%pg_stat_activity%'")
            other.execute("SELECT pg_advisory_lock(%s, hashtext('a'))", (NODE_LOCK_CLASS,))
            with pytest.raises(StorageUnavailable, match="previous session"):
                await a.write(_add)
            other.execute("SELECT pg_advisory_unlock(%s, hashtext('a'))", (NODE_LOCK_CLASS,))
        job = await a.write(_add)
        assert [j["id"] for j in await a.write(_claim)][-1] == job["id"]
