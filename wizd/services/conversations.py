"""Conversations: direct messages (DMs) here, project channels in ``projects.py``.

Both kinds share one id space (uuids) and one public shape::

    {id, type: "dm" | "channel", name, participants: [user ids],
     project_id (channels only), archived, archived_at, created_at, updated_at}

A DM lists its participants; the local user is always one of them and cannot
leave. Participants are given as user ids, agent ids or agent names. An
archived conversation keeps its history and accepts no new message.
"""

from __future__ import annotations

from sqlalchemy import Connection

from ..errors import Conflict, InvalidInput, NotFound
from ..objects import Channel, Conversation, Dm
from ..store import conversations as store
from ..store import users as user_store
from ..store.conversations import ChannelRow, DmRow
from . import agents, checks
from .runtime import Runtime, new_id


def participants(conn: Connection, conversation_id: str) -> list[str]:
    """User ids of a DM, in the order they joined."""
    return store.participants(conn, conversation_id)


def dm_public(conn: Connection, row: DmRow) -> Dm:
    return _dm(row, participants(conn, row["id"]))


def _dm(row: DmRow, members: list[str]) -> Dm:
    return {
        "id": row["id"],
        "type": "dm",
        "name": row["name"],
        "participants": members,
        "archived": row["archived_at"] is not None,
        "archived_at": row["archived_at"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def channel_public(row: ChannelRow) -> Channel:
    return {
        "id": row["id"],
        "type": "channel",
        "name": row["name"],
        "project_id": row["project_id"],
        # Channels have no member list: any agent mentioned as @name answers.
        "participants": [],
        "archived": row["archived_at"] is not None,
        "archived_at": row["archived_at"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def find(conn: Connection, conversation_id: str) -> Conversation:
    """The DM or channel with this id, archived or not. Raises NotFound."""
    dm = store.find_dm(conn, conversation_id)
    if dm is not None:
        return _dm(*dm)
    channel = store.find_channel(conn, conversation_id)
    if channel is not None:
        return channel_public(channel)
    raise NotFound("conversation", conversation_id)


def _dm_row(conn: Connection, dm_id: str) -> DmRow:
    row = store.get_dm(conn, dm_id)
    if row is None:
        raise NotFound("dm", dm_id)
    return row


def resolve_participant(conn: Connection, ref: str) -> str:
    """The user id that ``ref`` (a user id, an agent id or an agent name) stands for.

    Raises NotFound.
    """
    found = user_store.live_id(conn, ref)
    if found is not None:
        return found
    try:
        return agents.resolve(conn, ref)["user_id"]
    except NotFound:
        raise NotFound("participant", ref) from None


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
            found = store.open_dm_of(conn, members, name)
            if found is not None:
                return dm_public(conn, found), True
        dm_id = new_id()
        store.insert_dm(conn, id=dm_id, name=name, now_ms=now)
        for user_id in members:
            store.add_participant(conn, dm_id, user_id, now)
        return dm_public(conn, _dm_row(conn, dm_id)), False

    return await rt.db.write(q)


async def list_dms(rt: Runtime, *, include_archived: bool = False) -> list[Dm]:
    """The DMs, oldest first; archived ones only if asked."""
    def q(conn: Connection) -> list[Dm]:
        return [dm_public(conn, row)
                for row in store.list_dms(conn, include_archived=include_archived)]

    return await rt.db.read(q)


async def get_dm(rt: Runtime, dm_id: str) -> Dm:
    """One DM, archived or not. Raises NotFound."""
    return await rt.db.read(lambda conn: dm_public(conn, _dm_row(conn, dm_id)))


def _open_dm(conn: Connection, dm_id: str) -> DmRow:
    row = _dm_row(conn, dm_id)
    if row["archived_at"] is not None:
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
        store.add_participant(conn, dm_id, user_id, now)
        store.touch(conn, dm_id, now)
        return dm_public(conn, _dm_row(conn, row["id"]))

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
        store.remove_participant(conn, dm_id, user_id)
        store.touch(conn, dm_id, now)
        return dm_public(conn, _dm_row(conn, dm_id))

    return await rt.db.write(q)


async def archive_dm(rt: Runtime, dm_id: str) -> Dm:
    """Archive a DM (again: no change). Its history stays readable. Raises NotFound."""
    now = rt.clock.now_ms()

    def q(conn: Connection) -> Dm:
        store.archive(conn, dm_id, now)
        return dm_public(conn, _dm_row(conn, dm_id))

    return await rt.db.write(q)
