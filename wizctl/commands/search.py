"""``wizctl search``: find messages by their words (message.search)."""

from __future__ import annotations

from typing import Annotated

import typer

from .. import text
from ..objects import SearchResults
from ..since import HELP as SINCE_HELP
from ..since import parse_since
from .base import Json, color, emit, state


def since_option(value: str | None) -> int | None:
    """``--since`` as ms, or a usage error naming the option."""
    if value is None:
        return None
    try:
        return parse_since(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="'--since'") from None


def search(ctx: typer.Context,
           words: Annotated[str, typer.Argument(help="Words a message must all hold; "
                                                "a word ending in * matches words it begins.")],
           agent: Annotated[str | None, typer.Option(
               help="Only messages by this agent or in its DMs.")] = None,
           in_: Annotated[str | None, typer.Option(
               "--in", metavar="CONVERSATION", help="Only in this conversation.")] = None,
           since: Annotated[str | None, typer.Option(help=SINCE_HELP)] = None,
           n: Annotated[int, typer.Option("-n", min=1, max=100, help="How many hits.")] = 20,
           raw: Annotated[bool, typer.Option(
               "--raw", help="WORDS is an FTS5 query (AND, OR, NOT, \"phrases\", NEAR).")] = False,
           json: Json = False) -> None:
    """Find messages by their words, best match first."""
    st = state(ctx)
    since_ms = since_option(since)
    agent_id = st.lookup.agent(agent)["id"] if agent is not None else None
    conversation_id = st.lookup.conversation(in_)["id"] if in_ is not None else None
    result = st.call("message.search", query=words, agent=agent_id,
                     conversation_id=conversation_id, since=since_ms, limit=n,
                     raw=raw or None)
    emit(result, json, _hits)


def _hits(result: SearchResults) -> str:
    hits = result.get("results") or []
    if not hits:
        return "no message found"
    paint = color()
    lines = []
    for hit in hits:
        conv = hit.get("conversation") or {}
        kind = conv.get("type")
        place = str(conv.get("name")) if kind == "channel" else f"@{conv.get('name') or 'dm'}"
        head = (f"{text.when(hit['message'].get('created_at'))} {place} "
                f"{hit.get('author_name')}")
        lines.append(text.paint(head, "dim", paint))
        lines.append("  " + text.one_line(hit.get("snippet", "")))
    return "\n".join(lines)
