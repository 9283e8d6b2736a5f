"""Constraints that refuse a statement reach callers as Conflict, translated
in one place (store.failures.constraint_error): by the store's hot message
insert, inside the transaction, and by the write runner for the rest."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError

from wizd.errors import Conflict
from wizd.store import messages, users
from wizd.store.database import Database
from wizd.store.failures import constraint_error

pytestmark = pytest.mark.anyio


def test_sqlite_and_sqlalchemy_integrity_errors_are_conflicts() -> None:
    refused = sqlite3.IntegrityError("UNIQUE constraint failed: messages.reply_to, "
                                     "messages.author_id")
    for exc in (refused, IntegrityError("INSERT ...", {}, refused)):
        conflict = constraint_error(exc)
        assert isinstance(conflict, Conflict)
        assert conflict.message == "this author already replied to that message"
        assert conflict.__cause__ is refused or conflict.__cause__ is exc
    other = constraint_error(sqlite3.IntegrityError("FOREIGN KEY constraint failed"))
    assert other is not None and other.message == (
        "refused by the database (FOREIGN KEY constraint failed)")
    assert constraint_error(sqlite3.OperationalError("no such table: x")) is None
    assert constraint_error(ValueError("x")) is None


async def opened(path: Path | str) -> Database:
    db = Database(path)
    await db.open()
    return db


def _reply(conn: Connection, message_id: str, now: int) -> int:
    return messages.insert(conn, id=message_id, source_type="dm", source_id="c1",
                           author_id="agent", content="hi", kind="text", reply_to="m0",
                           truncated=False, now_ms=now)


async def test_a_second_reply_is_a_conflict_and_the_transaction_goes_on(
    db_at: Path | str,
) -> None:
    db = await opened(db_at)
    try:
        def setup(conn: Connection) -> None:
            users.insert(conn, id="agent", name="ada", type="agent", now_ms=1)

        def twice(conn: Connection) -> str:
            _reply(conn, "m1", 2)
            try:
                _reply(conn, "m2", 3)
            except Conflict as exc:
                return exc.message
            return "stored"

        await db.write(setup)
        assert await db.write(twice) == "this author already replied to that message"
        stored = await db.read(lambda conn: messages.after(conn, "c1", 0, 10))
        assert [m["id"] for m in stored] == ["m1"]  # the first reply committed
    finally:
        await db.close()


async def test_the_write_runner_turns_a_refused_statement_into_a_conflict(
    db_at: Path | str,
) -> None:
    db = await opened(db_at)
    try:
        def orphan(conn: Connection) -> None:  # no such provider
            conn.execute(text(
                "INSERT INTO agents (id, user_id, name, role, backstory, goal, system_prompt,"
                " provider_id, status, created_at, updated_at) VALUES ('a', 'nobody', 'ada',"
                " 'r', 'b', 'g', 's', 'none', 'active', 1, 1)"))

        with pytest.raises(Conflict, match="(?i)FOREIGN KEY"):
            await db.write(orphan)
        assert await db.read(lambda conn: users.list_live(conn)) == []
    finally:
        await db.close()
