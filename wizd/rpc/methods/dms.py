"""dm.*: direct-message conversations."""

from __future__ import annotations

from ...objects import Dm, DmList, OpenedDm
from ...services import conversations
from ..registry import registry
from ..server import Call


@registry.method("dm.create")
async def dm_create(call: Call, participants: list[str], name: str | None = None,
                    reuse: bool = False) -> OpenedDm:
    """A DM between you and ``participants`` (user ids, agent ids or agent names);
    with ``reuse``, the oldest open one with exactly them instead of a new one
    (``existing`` says which)."""
    dm, existing = await conversations.open_dm(call.rt, participants=participants, name=name,
                                               reuse=reuse)
    return {**dm, "existing": existing}


@registry.method("dm.list")
async def dm_list(call: Call, include_archived: bool = False) -> DmList:
    """The DMs, oldest first (archived ones only with ``include_archived``)."""
    return {"conversations": await conversations.list_dms(call.rt,
                                                          include_archived=include_archived)}


@registry.method("dm.get")
async def dm_get(call: Call, id: str) -> Dm:
    """One DM by id."""
    return await conversations.get_dm(call.rt, id)


@registry.method("dm.add_participant")
async def dm_add_participant(call: Call, id: str, participant: str) -> Dm:
    """Add a participant (user id, agent id or agent name) to a DM."""
    return await conversations.add_participant(call.rt, id, participant)


@registry.method("dm.remove_participant")
async def dm_remove_participant(call: Call, id: str, participant: str) -> Dm:
    """Remove a participant (user id, agent id or agent name) from a DM; history stays."""
    return await conversations.remove_participant(call.rt, id, participant)


@registry.method("dm.archive")
async def dm_archive(call: Call, id: str) -> Dm:
    """Archive a DM: its history stays readable, new messages are refused."""
    return await conversations.archive_dm(call.rt, id)
