"""project.* and channel.*: projects and their channels."""

from __future__ import annotations

from ...objects import Channel, ChannelList, Project, ProjectList
from ...services import projects
from ..registry import registry
from ..server import Call


@registry.method("project.create")
async def project_create(call: Call, name: str, description: str | None = None) -> Project:
    """Create a project."""
    return await projects.create_project(call.rt, name=name, description=description)


@registry.method("project.list")
async def project_list(call: Call) -> ProjectList:
    """Every project, oldest first."""
    return {"projects": await projects.list_projects(call.rt)}


@registry.method("channel.create")
async def channel_create(call: Call, project_id: str, name: str) -> Channel:
    """Create a channel in a project (id or name); agents answer there when @mentioned."""
    return await projects.create_channel(call.rt, project_id=project_id, name=name)


@registry.method("channel.list")
async def channel_list(call: Call, project_id: str) -> ChannelList:
    """The channels of a project (id or name), oldest first."""
    return {"conversations": await projects.list_channels(call.rt, project_id=project_id)}


@registry.method("channel.get")
async def channel_get(call: Call, id: str) -> Channel:
    """One channel by id."""
    return await projects.get_channel(call.rt, id)
