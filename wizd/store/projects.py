"""Queries over ``projects`` and ``project_channels``."""

from __future__ import annotations

from typing import TypedDict

from sqlalchemy import Connection, select

from .conversations import ChannelRow
from .rows import every, first
from .schema import project_channels, projects

_live = projects.c.archived_at.is_(None)


class ProjectRow(TypedDict):
    id: str
    name: str
    description: str | None
    created_at: int
    updated_at: int
    archived_at: int | None


def by_ref(conn: Connection, ref: str) -> ProjectRow | None:
    """The live project whose id, or else name, is ``ref``."""
    for column in (projects.c.id, projects.c.name):
        row = first(conn, select(projects).where(_live, column == ref), ProjectRow)
        if row is not None:
            return row
    return None


def name_taken(conn: Connection, name: str) -> bool:
    """Whether a live project is named ``name``."""
    return conn.execute(select(projects.c.id).where(_live, projects.c.name == name)
                        ).first() is not None


def insert(conn: Connection, *, id: str, name: str, description: str | None,
           now_ms: int) -> None:
    conn.execute(projects.insert().values(id=id, name=name, description=description,
                                          created_at=now_ms, updated_at=now_ms))


def list_live(conn: Connection) -> list[ProjectRow]:
    """Live projects, oldest first."""
    return every(conn, select(projects).where(_live)
                 .order_by(projects.c.created_at, projects.c.id), ProjectRow)


def channel_name_taken(conn: Connection, project_id: str, name: str) -> bool:
    """Whether a live channel of the project is named ``name``."""
    return conn.execute(select(project_channels.c.id).where(
        project_channels.c.project_id == project_id, project_channels.c.name == name,
        project_channels.c.archived_at.is_(None))).first() is not None


def insert_channel(conn: Connection, *, id: str, project_id: str, name: str,
                   now_ms: int) -> None:
    conn.execute(project_channels.insert().values(
        id=id, project_id=project_id, name=name, created_at=now_ms, updated_at=now_ms))


def channel(conn: Connection, channel_id: str) -> ChannelRow | None:
    """The channel, archived or not."""
    return first(conn, select(project_channels).where(project_channels.c.id == channel_id),
                 ChannelRow)


def live_channels(conn: Connection, project_id: str) -> list[ChannelRow]:
    """The project's live channels, oldest first."""
    return every(conn, select(project_channels).where(
        project_channels.c.project_id == project_id, project_channels.c.archived_at.is_(None),
    ).order_by(project_channels.c.created_at, project_channels.c.id), ChannelRow)
