"""Conversations: direct messages (DMs) here, project channels in ``projects.py``.

Both kinds share one id space (uuids) and one public shape::

    {id, type: "dm" | "channel", name, participants: [user ids],
     project_id (channels only), archived, archived_at, created_at, updated_at}

A DM lists its participants; the local user is always one of them and cannot
leave. Participants are given as user ids, agent ids or agent names. An
archived conversation keeps its history and accepts no new message.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import Connection, delete, func, select, update

from ..errors import Conflict, InvalidInput, NotFound
from ..objects import Channel, Conversation, Dm
from ..store.database import raw
from ..store.schema import dm_conversations, dm_participants, users
from . import agents, checks
from .runtime import Runtime, new_id


def participants(conn: Connection, conversation_id: str) -> list[str]:
    """User ids of a DM, in the order they joined."""
    return [row[0] for row in raw(conn).execute(_PARTICIPANTS, (conversation_id,))]


# message.send looks its conversation up every time: plain SQL (see database.raw).
_PARTICIPANTS = ("SELECT user_id FROM dm_participants WHERE conversation_id = ?"
                 " ORDER BY created_at, rowid")
_FIND_DM = "SELECT id, name, archived_at, created_at, updated_at FROM dm_conversations WHERE id = ?"
_FIND_CHANNEL = ("SELECT id, name, project_id, archived_at, created_at, updated_at"
                 " FROM project_channels WHERE id = ?")


class _DmRow(NamedTuple):
    id: str
    name: str | None
    archived_at: int | None
    created_at: int
    updated_at: int


class _ChannelRow(NamedTuple):
    id: str
    name: str
    project_id: str
    archived_at: int | None
    created_at: int
    updated_at: int


def dm_public(conn: Connection, row: Any) -> Dm:
    return {
        "id": row.id,
        "type": "dm",
        "name": row.name,
        "participants": participants(conn, row.id),
        "archived": row.archived_at is not None,
        "archived_at": row.archived_at,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def channel_public(row: Any) -> Channel:
    return {
        "id": row.id,
        "type": "channel",
        "name": row.name,
        "project_id": row.project_id,
        # Channels have no member list: any agent mentioned as @name answers.
        "participants": [],
        "archived": row.archived_at is not None,
        "archived_at": row.archived_at,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def find(conn: Connection, conversation_id: str) -> Conversation:
    """The DM or channel with this id, archived or not. Raises NotFound."""
    db = raw(conn)
    found = db.execute(_FIND_DM, (conversation_id,)).fetchone()
    if found is not None:
        return dm_public(conn, _DmRow(*found))
    found = db.execute(_FIND_CHANNEL, (conversation_id,)).fetchone()
    if found is not None:
        return channel_public(_ChannelRow(*found))
    raise NotFound("conversation", conversation_id)


def _dm_row(conn: Connection, dm_id: str) -> Any:
    row = conn.execute(select(dm_conversations).where(dm_conversations.c.id == dm_id)).first()
    if row is None:
        raise NotFound("dm", dm_id)
    return row


def resolve_participant(conn: Connection, ref: str) -> str:
    """The user id that ``ref`` (a user id, an agent id or an agent name) stands for.

    Raises NotFound.
    """
    found = conn.execute(select(users.c.id).where(users.c.id == ref,
                                                  users.c.deleted_at.is_(None))).scalar()
    if found is not None:
        return str(found)
    try:
        return str(agents.resolve(conn, ref).user_id)
    except NotFound:
        raise NotFound("participant", ref) from None


def _add(conn: Connection, dm_id: str, user_id: str, now: int) -> None:
    conn.execute(dm_participants.insert().values(conversation_id=dm_id, user_id=user_id,
                                                 created_at=now))


async def create_dm(
    rt: Runtime, *, participants: list[str], name: str | None = None
) -> Dm:
    """A new DM between the local user and ``participants``.

    Raises InvalidInput (no one besides the local user), NotFound (an unknown
    participant).
    """
    dm, _ = await open_dm(rt, participants=participants, name=name)
    return dm


async def open_dm(
    rt: Runtime, *, participants: list[str], name: str | None = None, reuse: bool = False
) -> tuple[Dm, bool]:
    """A DM between the local user and ``participants``, and whether it existed.

    With ``reuse``, the oldest open DM with exactly these participants (and
    this ``name``, if one is given) is returned instead of a new one; the look-up
    and the creation share one transaction, so two callers never make two.
    Raises InvalidInput (no one besides the local user), NotFound (an unknown
    participant).
    """
    if name is not None:
        name = checks.name("name", name)
    now = rt.clock.now_ms()

    def q(conn: Connection) -> tuple[Dm, bool]:
        members = [rt.local_user_id]
        for ref in participants:
            user_id = resolve_participant(conn, ref)
            if user_id not in members:
                members.append(user_id)
        if len(members) < 2:
            raise InvalidInput("participants", "name at least one user or agent besides you")
        if reuse:
            found = _open_dm_of(conn, members, name)
            if found is not None:
                return dm_public(conn, found), True
        dm_id = new_id()
        conn.execute(dm_conversations.insert().values(id=dm_id, name=name, created_at=now,
                                                      updated_at=now))
        for user_id in members:
            _add(conn, dm_id, user_id, now)
        return dm_public(conn, _dm_row(conn, dm_id)), False

    return await rt.db.write(q)


def _open_dm_of(conn: Connection, members: list[str], name: str | None) -> Any:
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
    return conn.execute(query).first()


async def list_dms(rt: Runtime, *, include_archived: bool = False) -> list[Dm]:
    """The DMs, oldest first; archived ones only if asked."""
    def q(conn: Connection) -> list[Dm]:
        query = select(dm_conversations).order_by(dm_conversations.c.created_at,
                                                  dm_conversations.c.id)
        if not include_archived:
            query = query.where(dm_conversations.c.archived_at.is_(None))
        return [dm_public(conn, row) for row in conn.execute(query).all()]

    return await rt.db.read(q)


async def get_dm(rt: Runtime, dm_id: str) -> Dm:
    """One DM, archived or not. Raises NotFound."""
    return await rt.db.read(lambda conn: dm_public(conn, _dm_row(conn, dm_id)))


def _open_dm(conn: Connection, dm_id: str) -> Any:
    row = _dm_row(conn, dm_id)
    if row.archived_at is not None:
        raise Conflict("the DM is archived", id=dm_id)
    return row


async def add_participant(rt: Runtime, dm_id: str, participant: str) -> Dm:
    """Add a user or agent to a DM. Raises NotFound, Conflict (already in it, or archived)."""
    now = rt.clock.now_ms()

    def q(conn: Connection) -> Dm:
        row = _open_dm(conn, dm_id)
        user_id = resolve_participant(conn, participant)
        if user_id in participants(conn, dm_id):
            raise Conflict("already a participant of this DM", participant=participant)
        _add(conn, dm_id, user_id, now)
        conn.execute(update(dm_conversations).where(dm_conversations.c.id == dm_id)
                     .values(updated_at=now))
        return dm_public(conn, _dm_row(conn, row.id))

    return await rt.db.write(q)


async def remove_participant(rt: Runtime, dm_id: str, participant: str) -> Dm:
    """Remove a user or agent from a DM; its past messages stay.

    Raises NotFound, Conflict (not in it, the local user, or archived).
    """
    now = rt.clock.now_ms()

    def q(conn: Connection) -> Dm:
        _open_dm(conn, dm_id)
        user_id = resolve_participant(conn, participant)
        if user_id == rt.local_user_id:
            raise Conflict("the local user cannot leave a DM; archive it instead")
        if user_id not in participants(conn, dm_id):
            raise Conflict("not a participant of this DM", participant=participant)
        conn.execute(delete(dm_participants).where(dm_participants.c.conversation_id == dm_id,
                                                   dm_participants.c.user_id == user_id))
        conn.execute(update(dm_conversations).where(dm_conversations.c.id == dm_id)
                     .values(updated_at=now))
        return dm_public(conn, _dm_row(conn, dm_id))

    return await rt.db.write(q)


async def archive_dm(rt: Runtime, dm_id: str) -> Dm:
    """Archive a DM (again: no change). Its history stays readable. Raises NotFound."""
    now = rt.clock.now_ms()

    def q(conn: Connection) -> Dm:
        conn.execute(update(dm_conversations).where(dm_conversations.c.id == dm_id,
                                                    dm_conversations.c.archived_at.is_(None))
                     .values(archived_at=now, updated_at=now))
        return dm_public(conn, _dm_row(conn, dm_id))

    return await rt.db.write(q)
