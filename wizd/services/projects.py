"""Projects and their channels.

A project groups channels; a channel is a conversation (see
``conversations.py`` for its public shape) in which an agent answers when a
message mentions it as ``@name``. Projects are referred to by id or name;
names are unique among projects, channel names within their project.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from ..errors import Conflict, NotFound
from ..objects import Channel, Project
from ..store.schema import project_channels, projects
from . import checks
from .conversations import channel_public
from .runtime import Runtime, new_id

MAX_DESCRIPTION = 10_000

_live = projects.c.archived_at.is_(None)


def public(row: Any) -> Project:
    return {
        "id": row.id,
        "name": row.name,
        "description": row.description,
        "archived": row.archived_at is not None,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def resolve(conn: Connection, ref: str) -> Any:
    """The live project whose id or name is ``ref``. Raises NotFound."""
    for column in (projects.c.id, projects.c.name):
        row = conn.execute(select(projects).where(_live, column == ref)).first()
        if row is not None:
            return row
    raise NotFound("project", ref)


async def create_project(
    rt: Runtime, *, name: str, description: str | None = None
) -> Project:
    """A new project. Raises InvalidInput, Conflict (the name is taken)."""
    name = checks.name("name", name)
    if description is not None:
        description = checks.text("description", description, max_len=MAX_DESCRIPTION)
    now = rt.clock.now_ms()

    def q(conn: Connection) -> Project:
        if conn.execute(select(projects.c.id).where(_live, projects.c.name == name)).first():
            raise Conflict(f"a project named {name!r} already exists", name=name)
        project_id = new_id()
        conn.execute(projects.insert().values(id=project_id, name=name, description=description,
                                              created_at=now, updated_at=now))
        return public(resolve(conn, project_id))

    return await rt.db.write(q)


async def list_projects(rt: Runtime) -> list[Project]:
    """Every live project, oldest first."""
    def q(conn: Connection) -> list[Project]:
        rows = conn.execute(select(projects).where(_live)
                            .order_by(projects.c.created_at, projects.c.id))
        return [public(r) for r in rows]

    return await rt.db.read(q)


async def create_channel(rt: Runtime, *, project_id: str, name: str) -> Channel:
    """A new channel in project ``project_id`` (id or name).

    Raises InvalidInput, NotFound (no such project), Conflict (the name is taken
    in that project).
    """
    name = checks.name("name", name)
    now = rt.clock.now_ms()

    def q(conn: Connection) -> Channel:
        project = resolve(conn, project_id)
        taken = conn.execute(select(project_channels.c.id).where(
            project_channels.c.project_id == project.id, project_channels.c.name == name,
            project_channels.c.archived_at.is_(None))).first()
        if taken:
            raise Conflict(f"project {project.name!r} already has a channel named {name!r}",
                           name=name)
        channel_id = new_id()
        conn.execute(project_channels.insert().values(
            id=channel_id, project_id=project.id, name=name, created_at=now, updated_at=now))
        return channel_public(conn.execute(
            select(project_channels).where(project_channels.c.id == channel_id)).one())

    return await rt.db.write(q)


async def list_channels(rt: Runtime, *, project_id: str) -> list[Channel]:
    """The live channels of project ``project_id`` (id or name), oldest first. Raises NotFound."""
    def q(conn: Connection) -> list[Channel]:
        project = resolve(conn, project_id)
        rows = conn.execute(select(project_channels).where(
            project_channels.c.project_id == project.id, project_channels.c.archived_at.is_(None),
        ).order_by(project_channels.c.created_at, project_channels.c.id))
        return [channel_public(r) for r in rows]

    return await rt.db.read(q)


async def get_channel(rt: Runtime, channel_id: str) -> Channel:
    """One channel, archived or not. Raises NotFound."""
    def q(conn: Connection) -> Channel:
        row = conn.execute(select(project_channels)
                           .where(project_channels.c.id == channel_id)).first()
        if row is None:
            raise NotFound("channel", channel_id)
        return channel_public(row)

    return await rt.db.read(q)
