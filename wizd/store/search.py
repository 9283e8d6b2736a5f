"""Full-text queries over ``messages_fts`` (FTS5 over ``messages.content``,
rowid = seq; migration 7), in Core: the FTS5 table is declared here as a
lightweight ``table()``, outside the schema's metadata (SQLAlchemy cannot
create a virtual table; the migration does).

Indexing (``index_next``) follows the messages in seq order up to the seq kept
in ``search_indexed`` (migration 10); it is on the per-message path, so
DB-API through ``raw``.

On PostgreSQL ``messages_fts`` holds a ``tsvector`` per message (seq, tsv;
migrations_pg), the 'simple' configuration; an FTS5 expression (what
services.search builds, or a user's raw query) is turned into a tsquery by
``tsquery``: phrases, ``word*`` prefixes, AND, OR, NOT and parentheses;
NEAR is refused. Rank is ``-ts_rank`` (lower is better, as FTS5's bm25) and
the snippet ``ts_headline``'s."""

from __future__ import annotations

import re
from typing import NamedTuple

from sqlalchemy import (
    ColumnClause,
    ColumnElement,
    Connection,
    column,
    func,
    literal_column,
    or_,
    select,
    table,
)
from sqlalchemy.exc import OperationalError, ProgrammingError

from ..objects import ConversationType, MessageKind
from .database import is_pg, raw
from .schema import (
    dm_conversations,
    dm_participants,
    messages,
    project_channels,
    projects,
    users,
)

messages_fts = table("messages_fts", column("rowid"), column("rank"))
# The table's name as MATCH's left side: the whole row (every column) matches.
_whole: ColumnClause[str] = literal_column("messages_fts")


def indexed(conn: Connection) -> int:
    """The greatest seq the full-text index has taken in (every message up to it)."""
    return int(raw(conn).execute("SELECT seq FROM search_indexed").fetchone()[0])


class Indexed(NamedTuple):
    upto: int  # every message up to this seq is indexed
    added: int  # how many this write indexed


_INDEXED = "SELECT seq FROM search_indexed"
_INDEXED_PG = _INDEXED + " FOR UPDATE"


def index_next(conn: Connection, limit: int) -> Indexed:
    """Index up to ``limit`` messages past ``indexed``, in seq order, inside the
    caller's write transaction."""
    db = raw(conn)
    # On PostgreSQL several nodes index: the row lock makes them take turns,
    # each reading where the one before stopped.
    done = int(db.execute(_INDEXED_PG if is_pg(conn) else _INDEXED).fetchone()[0])
    upto, count = db.execute(
        "SELECT max(seq), count(*) FROM (SELECT seq FROM messages WHERE seq > :done"
        " ORDER BY seq LIMIT :limit) AS batch", {"done": done, "limit": limit}).fetchone()
    if not count:
        return Indexed(done, 0)
    if is_pg(conn):
        db.execute("INSERT INTO messages_fts (seq, tsv)"
                   " SELECT seq, to_tsvector('simple', content) FROM messages"
                   " WHERE seq > :done AND seq <= :upto ON CONFLICT (seq) DO NOTHING",
                   {"done": done, "upto": upto})
        db.execute("UPDATE search_indexed SET seq = :upto", {"upto": upto})
        return Indexed(int(upto), int(count))
    db.execute("INSERT INTO messages_fts (rowid, content) SELECT seq, content FROM messages"
               " WHERE seq > :done AND seq <= :upto", {"done": done, "upto": upto})
    db.execute("UPDATE search_indexed SET seq = :upto", {"upto": upto})
    return Indexed(int(upto), int(count))


class BadMatch(Exception):
    """FTS5 could not parse the MATCH expression; the message is SQLite's."""


# -- PostgreSQL: an FTS5 expression as a tsquery ---------------------------------------

_TOKEN = re.compile(r'\s*(?:(")((?:[^"]|"")*)"(\*?)|(\()|(\))|([^\s()"]+))')
_WORD = re.compile(r"\w+")
_OPERATORS = {"AND": "&", "OR": "|", "NOT": "& !"}


def tsquery(match: str) -> str:
    """The FTS5 expression ``match`` as to_tsquery('simple', ...) text; "" when
    it holds no word. Raises BadMatch for what it cannot turn (NEAR, column
    filters, an unclosed quote)."""
    out: list[str] = []
    pos, last_term = 0, False
    text = match.strip()
    while pos < len(text):
        found = _TOKEN.match(text, pos)
        if found is None or found.end() == pos:
            raise BadMatch(f"fts5: syntax error near {text[pos:pos + 10]!r}")
        pos = found.end()
        quote, phrase, star, opening, closing, bare = found.groups()
        if bare in _OPERATORS:
            out.append(_OPERATORS[bare])
            last_term = False
            continue
        if bare is not None and (bare.upper().startswith("NEAR") or ":" in bare):
            raise BadMatch(f"fts5: {bare!r} is not supported on PostgreSQL")
        if closing:
            out.append(")")
            last_term = True
            continue
        if last_term:
            out.append("&")  # FTS5: terms side by side must all match
        if opening:
            out.append("(")
            last_term = False
            continue
        prefix = bool(star) if quote else bare.endswith("*")  # type: ignore[union-attr]
        words = _WORD.findall((phrase or "").replace('""', '"') if quote else bare or "")
        lexemes = ["'" + w.lower().replace("\\", "\\\\").replace("'", "''") + "'"
                   for w in words]
        if not lexemes:
            if out and out[-1] == "&":
                out.pop()
            last_term = bool(out) and out[-1] not in ("&", "|", "& !", "(")
            continue
        if prefix:
            lexemes[-1] += ":*"
        out.append("(" + " <-> ".join(lexemes) + ")")
        last_term = True
    return " ".join(out)


_fts_pg = table("messages_fts", column("seq"), column("tsv"))
_SIMPLE: ColumnClause[str] = literal_column("'simple'::regconfig")


def _pg_query(match: str) -> ColumnElement[str]:
    return func.to_tsquery(_SIMPLE, tsquery(match))


class Ranked(NamedTuple):
    seq: int
    rank: float


class Hit(NamedTuple):
    seq: int
    id: str
    source_type: ConversationType
    source_id: str
    author_id: str
    content: str
    kind: MessageKind
    reply_to: str | None
    created_at: int
    author_name: str
    snippet: str


def ranked(
    conn: Connection, match: str, *, conversation_id: str | None, agent_user_id: str | None,
    since: int | None, limit: int,
) -> list[Ranked]:
    """The best ``limit`` live messages matching ``match`` (seq, rank), best first;
    of one conversation; written by ``agent_user_id`` or in a DM it takes part
    in; created at or after ``since``: each if given.

    Raises BadMatch when FTS5 cannot parse ``match``.
    """
    if is_pg(conn):
        return _ranked_pg(conn, match, conversation_id=conversation_id,
                          agent_user_id=agent_user_id, since=since, limit=limit)
    where: list[ColumnElement[bool]] = [_whole.op("MATCH")(match),
                                        messages.c.deleted_at.is_(None)]
    if conversation_id is not None:
        where.append(messages.c.source_id == conversation_id)
    if agent_user_id is not None:
        where.append(or_(messages.c.author_id == agent_user_id, messages.c.source_id.in_(
            select(dm_participants.c.conversation_id)
            .where(dm_participants.c.user_id == agent_user_id))))
    if since is not None:
        where.append(messages.c.created_at >= since)
    query = (select(messages.c.seq, messages_fts.c.rank)
             .select_from(messages_fts.join(messages, messages.c.seq == messages_fts.c.rowid))
             .where(*where).order_by(messages_fts.c.rank).limit(limit))
    try:
        return [Ranked(int(seq), float(rank)) for seq, rank in conn.execute(query)]
    except OperationalError as exc:
        raise BadMatch(str(exc.orig)) from None


def _filters(conversation_id: str | None, agent_user_id: str | None,
             since: int | None) -> list[ColumnElement[bool]]:
    where: list[ColumnElement[bool]] = [messages.c.deleted_at.is_(None)]
    if conversation_id is not None:
        where.append(messages.c.source_id == conversation_id)
    if agent_user_id is not None:
        where.append(or_(messages.c.author_id == agent_user_id, messages.c.source_id.in_(
            select(dm_participants.c.conversation_id)
            .where(dm_participants.c.user_id == agent_user_id))))
    if since is not None:
        where.append(messages.c.created_at >= since)
    return where


def _ranked_pg(
    conn: Connection, match: str, *, conversation_id: str | None, agent_user_id: str | None,
    since: int | None, limit: int,
) -> list[Ranked]:
    if not tsquery(match):
        return []
    query = _pg_query(match)
    rank = (-func.ts_rank(_fts_pg.c.tsv, query)).label("rank")
    found = (select(messages.c.seq, rank)
             .select_from(_fts_pg.join(messages, messages.c.seq == _fts_pg.c.seq))
             .where(_fts_pg.c.tsv.op("@@")(query),
                    *_filters(conversation_id, agent_user_id, since))
             .order_by(rank, messages.c.seq).limit(limit))
    try:
        return [Ranked(int(seq), float(r)) for seq, r in conn.execute(found)]
    except ProgrammingError as exc:  # to_tsquery's syntax error
        raise BadMatch(str(exc.orig).strip().splitlines()[0]) from None


def hits(conn: Connection, match: str, seqs: list[int], snippet_tokens: int) -> list[Hit]:
    """The messages ``seqs`` (found by ``ranked``), their authors' names and a
    snippet of each around what matched, in no order."""
    if not seqs:
        return []
    if is_pg(conn):
        options = (f"StartSel=[, StopSel=], MaxWords={max(snippet_tokens, 2)},"
                   f" MinWords={max(min(snippet_tokens // 2, snippet_tokens - 1), 1)}")
        headline = func.ts_headline(_SIMPLE, messages.c.content, _pg_query(match), options)
        rows = conn.execute(
            select(messages.c.seq, messages.c.id, messages.c.source_type,
                   messages.c.source_id, messages.c.author_id, messages.c.content,
                   messages.c.kind, messages.c.reply_to, messages.c.created_at, users.c.name,
                   headline)
            .select_from(messages.join(users, users.c.id == messages.c.author_id))
            .where(messages.c.seq.in_(seqs)))
        return [Hit(*row) for row in rows]
    snippet = func.snippet(_whole, 0, "[", "]", "…", snippet_tokens)
    query = (select(messages.c.seq, messages.c.id, messages.c.source_type,
                    messages.c.source_id, messages.c.author_id, messages.c.content,
                    messages.c.kind, messages.c.reply_to, messages.c.created_at, users.c.name,
                    snippet)
             .select_from(messages_fts.join(messages, messages.c.seq == messages_fts.c.rowid)
                          .join(users, users.c.id == messages.c.author_id))
             .where(_whole.op("MATCH")(match), messages_fts.c.rowid.in_(seqs)))
    return [Hit(*row) for row in conn.execute(query)]


def dm_title(conn: Connection, dm_id: str) -> str | None:
    """A DM's name, or else its agents' names (sorted, comma-separated); None
    for no DM or a DM with neither."""
    name = conn.execute(select(dm_conversations.c.name)
                        .where(dm_conversations.c.id == dm_id)).first()
    if name is None:
        return None
    if name[0]:
        return str(name[0])
    agents = conn.execute(
        select(users.c.name)
        .select_from(dm_participants.join(users, users.c.id == dm_participants.c.user_id))
        .where(dm_participants.c.conversation_id == dm_id, users.c.type == "agent")
        .order_by(users.c.name)).scalars().all()
    return ", ".join(agents) or None


def channel_title(conn: Connection, channel_id: str) -> str | None:
    """``project#channel``, or None for no channel."""
    found = conn.execute(
        select(projects.c.name + "#" + project_channels.c.name)
        .select_from(project_channels.join(projects,
                                           projects.c.id == project_channels.c.project_id))
        .where(project_channels.c.id == channel_id)).scalar()
    return None if found is None else str(found)
