"""Projects and their channels.

A project groups channels; a channel is a conversation (see
``conversations.py`` for its public shape) in which an agent answers when a
message mentions it as ``@name``. Projects are referred to by id or name;
names are unique among projects, channel names within their project.
"""

from __future__ import annotations

from sqlalchemy import Connection

from ..errors import Conflict, NotFound
from ..objects import Channel, Project
from ..store import projects as store
from ..store.projects import ProjectRow
from . import checks
from .conversations import channel_public
from .runtime import Runtime, new_id

MAX_DESCRIPTION = 10_000


def public(row: ProjectRow) -> Project:
    return {
        "id": row["id"],
        "name": row["name"],
        "description": row["description"],
        "archived": row["archived_at"] is not None,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def resolve(conn: Connection, ref: str) -> ProjectRow:
    """The live project whose id or name is ``ref``. Raises NotFound."""
    row = store.by_ref(conn, ref)
    if row is None:
        raise NotFound("project", ref)
    return row


async def create_project(
    rt: Runtime, *, name: str, description: str | None = None
) -> Project:
    """A new project. Raises InvalidInput, Conflict (the name is taken)."""
    name = checks.name("name", name)
    if description is not None:
        description = checks.text("description", description, max_len=MAX_DESCRIPTION)
    now = rt.clock.now_ms()

    def q(conn: Connection) -> Project:
        if store.name_taken(conn, name):
            raise Conflict(f"a project named {name!r} already exists", name=name)
        project_id = new_id()
        store.insert(conn, id=project_id, name=name, description=description, now_ms=now)
        return public(resolve(conn, project_id))

    return await rt.db.write(q)


async def list_projects(rt: Runtime) -> list[Project]:
    """Every live project, oldest first."""
    return [public(r) for r in await rt.db.read(store.list_live)]


async def create_channel(rt: Runtime, *, project_id: str, name: str) -> Channel:
    """A new channel in project ``project_id`` (id or name).

    Raises InvalidInput, NotFound (no such project), Conflict (the name is taken
    in that project).
    """
    name = checks.name("name", name)
    now = rt.clock.now_ms()

    def q(conn: Connection) -> Channel:
        project = resolve(conn, project_id)
        if store.channel_name_taken(conn, project["id"], name):
            raise Conflict(f"project {project['name']!r} already has a channel named {name!r}",
                           name=name)
        channel_id = new_id()
        store.insert_channel(conn, id=channel_id, project_id=project["id"], name=name,
                             now_ms=now)
        return _channel(conn, channel_id)

    return await rt.db.write(q)


async def list_channels(rt: Runtime, *, project_id: str) -> list[Channel]:
    """The live channels of project ``project_id`` (id or name), oldest first. Raises NotFound."""
    def q(conn: Connection) -> list[Channel]:
        project = resolve(conn, project_id)
        return [channel_public(r) for r in store.live_channels(conn, project["id"])]

    return await rt.db.read(q)


async def get_channel(rt: Runtime, channel_id: str) -> Channel:
    """One channel, archived or not. Raises NotFound."""
    return await rt.db.read(_channel, channel_id)


def _channel(conn: Connection, channel_id: str) -> Channel:
    row = store.channel(conn, channel_id)
    if row is None:
        raise NotFound("channel", channel_id)
    return channel_public(row)
