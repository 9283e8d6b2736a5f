"""Full-text search over messages (``message.search``).

The index is ``messages_fts`` (FTS5 over ``messages.content``, rowid = seq;
migration 7), which follows the messages table after its commits
(``search_index``); a search first indexes what is not yet, so it finds
every message stored before it. A search costs what FTS5's match and
ranking cost, then a look-up of the ``limit`` hits it keeps: it never reads
history that does not match.

The user's words are searched as words: each becomes an FTS5 phrase ("...",
quotes doubled), and a message must hold every one of them, in any order, so
text such as ``"hello`` or ``AND (`` just works; a word ending in ``*`` matches
the words it begins. ``raw=True`` hands the query to
FTS5 as written (``apples NOT pears``, ``app*``, ``NEAR(a b)``); its syntax
errors are InvalidInput.

Filters: ``conversation_id``; ``agent`` (id or name): messages the agent wrote,
anywhere, and every message of the DMs it takes part in; ``since``: messages
created at or after that time (ms).
"""

from __future__ import annotations

from sqlalchemy import Connection

from ..errors import InvalidInput, NotFound
from ..objects import SearchHit, SearchResults
from ..store import agents as agent_store
from ..store import search as store
from . import conversations
from .runtime import Runtime

__all__ = ["MAX_LIMIT", "SearchHit", "SearchResults", "search"]

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
SNIPPET_TOKENS = 12


def fts_query(words: str) -> str:
    """``words`` as an FTS5 query matching messages that hold every word; a
    word ending in ``*`` (``kanga*``) matches the words it begins."""
    return " ".join(_phrase(word) for word in words.split())


def _phrase(word: str) -> str:
    prefix = word.endswith("*") and word.strip("*") != ""
    word = word.rstrip("*") if prefix else word
    return '"' + word.replace('"', '""') + '"' + ("*" if prefix else "")


async def search(
    rt: Runtime,
    *,
    query: str,
    conversation_id: str | None = None,
    agent: str | None = None,
    since: int | None = None,
    limit: int = DEFAULT_LIMIT,
    raw: bool = False,
) -> SearchResults:
    """The best ``limit`` live messages matching ``query``, best first.

    Raises InvalidInput (an empty query, a raw query FTS5 cannot parse,
    ``limit`` outside 1..100, a negative ``since``) and NotFound (an unknown
    conversation or agent).
    """
    if not query.strip():
        raise InvalidInput("query", "must not be empty")
    if not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput("limit", f"must be between 1 and {MAX_LIMIT}")
    if since is not None and since < 0:
        raise InvalidInput("since", "must not be negative")
    match = query if raw else fts_query(query)

    def q(conn: Connection) -> SearchResults:
        if conversation_id is not None:
            conversations.find(conn, conversation_id)  # NotFound
        user_id = None if agent is None else _agent_user(conn, agent)
        try:
            found = store.ranked(conn, match, conversation_id=conversation_id,
                                 agent_user_id=user_id, since=since, limit=limit)
        except store.BadMatch as exc:
            # Only a raw query can be malformed; quoted words always parse.
            raise InvalidInput("query", f"not valid FTS5 syntax ({exc}); "
                               "leave out raw to search for the words as written") from None
        return {"results": _hits(conn, match, found)}

    await rt.search_index.catch_up(rt.db)
    return await rt.db.read(q)


def _agent_user(conn: Connection, ref: str) -> str:
    found = agent_store.by_ref(conn, ref)
    if found is None:
        raise NotFound("agent", ref)
    return found["user_id"]


def _hits(conn: Connection, match: str, ranked: list[store.Ranked]) -> list[SearchHit]:
    """The details and snippets of the hits ``ranked`` (best first)."""
    by_seq = {hit.seq: hit for hit in store.hits(conn, match, [r.seq for r in ranked],
                                                 SNIPPET_TOKENS)}
    names = _conversation_names(conn, {(hit.source_type, hit.source_id)
                                       for hit in by_seq.values()})
    found: list[SearchHit] = []
    for seq, rank in ranked:
        hit = by_seq[seq]
        found.append({
            "message": {"id": hit.id, "seq": seq, "conversation_id": hit.source_id,
                        "author_id": hit.author_id, "content": hit.content,
                        "kind": hit.kind, "reply_to": hit.reply_to,
                        "created_at": hit.created_at},
            "conversation": {"id": hit.source_id, "type": hit.source_type,
                             "name": names.get(hit.source_id, "")},
            "author_name": hit.author_name,
            "snippet": hit.snippet,
            "score": rank,
        })
    return found


def _conversation_names(conn: Connection, places: set[tuple[str, str]]) -> dict[str, str]:
    """Display names of the hits' conversations (a handful: one query each)."""
    names: dict[str, str] = {}
    for kind, cid in places:
        title = store.dm_title(conn, cid) if kind == "dm" else store.channel_title(conn, cid)
        names[cid] = title or ""
    return names
