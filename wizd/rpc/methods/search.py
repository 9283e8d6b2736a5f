"""message.search: full-text search over messages (see wizd.services.search)."""

from __future__ import annotations

from ...objects import SearchResults
from ...services import search
from ..registry import registry
from ..server import Call


@registry.method("message.search")
async def message_search(
    call: Call,
    query: str,
    conversation_id: str | None = None,
    agent: str | None = None,
    since: int | None = None,
    limit: int = search.DEFAULT_LIMIT,
    raw: bool = False,
) -> SearchResults:
    """Messages holding every word of ``query``, best match first (FTS5 bm25), each
    with its conversation and a snippet; ``raw: true`` takes FTS5 query syntax.

    Filters: ``conversation_id``; ``agent`` (id or name): messages it wrote and
    every message of its DMs; ``since``: created at or after (ms). ``limit``
    1 to 100 (default 20).
    """
    return await search.search(call.rt, query=query, conversation_id=conversation_id,
                               agent=agent, since=since, limit=limit, raw=raw)
