"""``wizctl dm|project|channel ...``: where messages live.

A DM holds the local user and agents; a project holds channels. Conversations
are shown by name (``@alice``, ``#general``), ids only as a short column.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated

import typer

from .. import table, text
from ..objects import ChannelList, Dm, DmList, OpenedDm, ProjectList
from .base import Json, State, by_ref, color, emit, state, sub_app

dm_app = sub_app("Direct-message conversations.")
project_app = sub_app("Projects, which hold channels.")
channel_app = sub_app("Channels of a project.")


def _line(st: State, verb: str) -> Callable[[OpenedDm | Dm], str]:
    def line(c: OpenedDm | Dm) -> str:
        names = ", ".join(st.lookup.user_name(u) for u in c.get("participants", ()))
        return (f"{verb} {st.lookup.conversation_label(c)} ({text.short_id(c.get('id'))})"
                + (f" with {names}" if names else ""))
    return line


# -- DMs -------------------------------------------------------------------------

@dm_app.command("new")
def dm_new(ctx: typer.Context,
           participants: Annotated[list[str], typer.Argument(help="Agent or user names/ids.")],
           name: Annotated[str | None, typer.Option(help="A name for the DM.")] = None,
           new: Annotated[bool, typer.Option(
               "--new", help="Make another DM even if one with them is open.")] = False,
           json: Json = False) -> None:
    """Start a DM with agents (you are always in it); the open DM with exactly
    them (and this --name, if given) is used if there is one."""
    st = state(ctx)
    ids = [st.lookup.participant(p) for p in participants]
    result = st.call("dm.create", participants=ids, name=name, reuse=None if new else True)
    if result.get("existing") and not json:
        sys.stderr.write("wizctl: " + _line(st, "using the existing DM")(result)
                         + " (--new makes another)\n")
        return
    emit(result, json, _line(st, "created DM"))


@dm_app.command("list")
def dm_list(ctx: typer.Context,
            all: Annotated[bool, typer.Option("--all", help="Archived ones too.")] = False,
            json: Json = False) -> None:
    """List DMs."""
    st = state(ctx)

    def human(r: DmList) -> str:
        me = st.lookup.me().get("id")
        rows = [(st.lookup.conversation_label(c) + (" (archived)" if c.get("archived_at") else ""),
                 ", ".join(st.lookup.user_name(u) for u in c.get("participants", ()) if u != me),
                 text.when(c.get("created_at")), text.short_id(c.get("id")))
                for c in r["conversations"]]
        return table.table(("name", "with", "created", "id"), rows, color=color())
    emit(st.call("dm.list", include_archived=all or None), json, human)


@dm_app.command("show")
def dm_show(ctx: typer.Context, conversation: str, json: Json = False) -> None:
    """Show one DM."""
    st = state(ctx)
    conv = st.call("dm.get", id=st.lookup.conversation(conversation)["id"])

    def human(c: Dm) -> str:
        return text.fields([
            ("id", c.get("id")), ("name", st.lookup.conversation_label(c)),
            ("participants", ", ".join(st.lookup.user_name(u) for u in c.get("participants", ()))),
            ("created", text.when(c.get("created_at"))),
        ] + ([("archived", text.when(c["archived_at"]))] if c.get("archived_at") else []),
            color=color())
    emit(conv, json, human)


def _change(ctx: typer.Context, method: str, conversation: str, who: str, json: bool) -> None:
    st = state(ctx)
    cid = st.lookup.conversation(conversation)["id"]
    result = st.call(method, id=cid, participant=st.lookup.participant(who))
    emit(result, json, _line(st, "updated"))


@dm_app.command("add")
def dm_add(ctx: typer.Context, conversation: str, participant: str, json: Json = False) -> None:
    """Add a participant to a DM."""
    _change(ctx, "dm.add_participant", conversation, participant, json)


@dm_app.command("rm")
def dm_rm(ctx: typer.Context, conversation: str, participant: str, json: Json = False) -> None:
    """Remove a participant from a DM."""
    _change(ctx, "dm.remove_participant", conversation, participant, json)


by_ref(dm_app, "archive", "dm.archive", "conversation", "Archive a DM (its history stays).",
       lambda st: _line(st, "archived"))


# -- projects and channels -------------------------------------------------------

@project_app.command("create")
def project_create(ctx: typer.Context, name: str,
                   description: Annotated[str | None, typer.Option()] = None,
                   json: Json = False) -> None:
    """Create a project."""
    result = state(ctx).call("project.create", name=name, description=description)
    emit(result, json,
         lambda p: f"created project {p.get('name')} ({text.short_id(p.get('id'))})")


@project_app.command("list")
def project_list(ctx: typer.Context, json: Json = False) -> None:
    """List projects."""
    def human(r: ProjectList) -> str:
        rows = [(p.get("name"), text.one_line(p.get("description"), 50),
                 text.when(p.get("created_at")), text.short_id(p.get("id")))
                for p in r["projects"]]
        return table.table(("name", "description", "created", "id"), rows, color=color())
    emit(state(ctx).call("project.list"), json, human)


@channel_app.command("create")
def channel_create(ctx: typer.Context, project: str, name: str, json: Json = False) -> None:
    """Create a channel in a project."""
    st = state(ctx)
    result = st.call("channel.create", project_id=st.lookup.project(project)["id"], name=name)
    emit(result, json, lambda c: f"created #{c.get('name')} ({text.short_id(c.get('id'))})")


@channel_app.command("list")
def channel_list(ctx: typer.Context, project: str, json: Json = False) -> None:
    """List the channels of a project."""
    st = state(ctx)

    def human(r: ChannelList) -> str:
        rows = [(f"#{c.get('name')}", text.when(c.get("created_at")),
                 text.short_id(c.get("id"))) for c in r["conversations"]]
        return table.table(("name", "created", "id"), rows, color=color())
    emit(st.call("channel.list", project_id=st.lookup.project(project)["id"]), json, human)
