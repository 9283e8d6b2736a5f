"""Queries over DMs (``dm_conversations``, ``dm_participants``) and the
conversation look-up shared with channels.

``find_dm`` (the DM and its participants in one statement) and
``find_channel`` run on every message sent (finding its conversation):
DB-API through ``raw``, with ``:name`` params.
"""

from __future__ import annotations

from typing import TypedDict

from sqlalchemy import Connection, delete, func, select, update

from .database import raw
from .rows import every, first
from .schema import dm_conversations, dm_participants


class DmRow(TypedDict):
    id: str
    name: str | None
    created_at: int
    updated_at: int
    archived_at: int | None


class ChannelRow(TypedDict):
    id: str
    project_id: str
    name: str
    created_at: int
    updated_at: int
    archived_at: int | None


def participants(conn: Connection, conversation_id: str) -> list[str]:
    """User ids of a DM, in the order they joined."""
    rows = raw(conn).execute(_PARTICIPANTS, {"id": conversation_id})
    return [row[0] for row in rows]


def find_dm(conn: Connection, conversation_id: str) -> tuple[DmRow, list[str]] | None:
    """The DM, archived or not, and the user ids of its participants in the
    order they joined (hot: message.send)."""
    rows = raw(conn).execute(_FIND_DM, {"id": conversation_id}).fetchall()
    if not rows:
        return None
    found = rows[0]
    return ({"id": found[0], "name": found[1], "archived_at": found[2],
             "created_at": found[3], "updated_at": found[4]},
            [row[5] for row in rows if row[5] is not None])


def find_channel(conn: Connection, conversation_id: str) -> ChannelRow | None:
    """The channel, archived or not (hot: message.send)."""
    found = raw(conn).execute(_FIND_CHANNEL, {"id": conversation_id}).fetchone()
    if found is None:
        return None
    return {"id": found[0], "name": found[1], "project_id": found[2], "archived_at": found[3],
            "created_at": found[4], "updated_at": found[5]}


_PARTICIPANTS = ("SELECT user_id FROM dm_participants WHERE conversation_id = :id"
                 " ORDER BY created_at, rowid")
_FIND_DM = ("SELECT d.id, d.name, d.archived_at, d.created_at, d.updated_at, p.user_id"
            " FROM dm_conversations AS d"
            " LEFT JOIN dm_participants AS p ON p.conversation_id = d.id"
            " WHERE d.id = :id ORDER BY p.created_at, p.rowid")
_FIND_CHANNEL = ("SELECT id, name, project_id, archived_at, created_at, updated_at"
                 " FROM project_channels WHERE id = :id")


def get_dm(conn: Connection, dm_id: str) -> DmRow | None:
    return first(conn, select(dm_conversations).where(dm_conversations.c.id == dm_id), DmRow)


def list_dms(conn: Connection, *, include_archived: bool) -> list[DmRow]:
    """DMs, oldest first."""
    query = select(dm_conversations).order_by(dm_conversations.c.created_at,
                                              dm_conversations.c.id)
    if not include_archived:
        query = query.where(dm_conversations.c.archived_at.is_(None))
    return every(conn, query, DmRow)


def insert_dm(conn: Connection, *, id: str, name: str | None, now_ms: int) -> None:
    conn.execute(dm_conversations.insert().values(id=id, name=name, created_at=now_ms,
                                                  updated_at=now_ms))


def add_participant(conn: Connection, dm_id: str, user_id: str, now_ms: int) -> None:
    conn.execute(dm_participants.insert().values(conversation_id=dm_id, user_id=user_id,
                                                 created_at=now_ms))


def remove_participant(conn: Connection, dm_id: str, user_id: str) -> None:
    conn.execute(delete(dm_participants).where(dm_participants.c.conversation_id == dm_id,
                                               dm_participants.c.user_id == user_id))


def touch(conn: Connection, dm_id: str, now_ms: int) -> None:
    """Mark the DM updated now."""
    conn.execute(update(dm_conversations).where(dm_conversations.c.id == dm_id)
                 .values(updated_at=now_ms))


def archive(conn: Connection, dm_id: str, now_ms: int) -> None:
    """Archive the DM unless it is already."""
    conn.execute(update(dm_conversations).where(dm_conversations.c.id == dm_id,
                                                dm_conversations.c.archived_at.is_(None))
                 .values(archived_at=now_ms, updated_at=now_ms))


def open_dm_of(conn: Connection, members: list[str], name: str | None) -> DmRow | None:
    """The oldest open DM whose participants are exactly ``members`` (named ``name``
    if given), or None."""
    mine = dm_participants.alias("mine")
    everyone = dm_participants.alias("everyone")
    # DMs holding every one of ``members`` and nobody else: all members are in,
    # and the head count matches.
    holding = (select(mine.c.conversation_id)
               .where(mine.c.user_id.in_(members))
               .group_by(mine.c.conversation_id)
               .having(func.count() == len(members)))
    size = (select(func.count()).where(everyone.c.conversation_id == dm_conversations.c.id)
            .scalar_subquery())
    query = (select(dm_conversations)
             .where(dm_conversations.c.archived_at.is_(None),
                    dm_conversations.c.id.in_(holding), size == len(members))
             .order_by(dm_conversations.c.created_at, dm_conversations.c.id).limit(1))
    if name is not None:
        query = query.where(dm_conversations.c.name == name)
    return first(conn, query, DmRow)
