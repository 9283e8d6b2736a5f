"""Full-text queries over ``messages_fts`` (FTS5 over ``messages.content``,
rowid = seq; migration 7), in Core: the FTS5 table is declared here as a
lightweight ``table()``, outside the schema's metadata (SQLAlchemy cannot
create a virtual table; the migration does).

Indexing (``index_next``) follows the messages in seq order up to the seq kept
in ``search_indexed`` (migration 10); it is on the per-message path, so
DB-API through ``raw``."""

from __future__ import annotations

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
from sqlalchemy.exc import OperationalError

from ..objects import ConversationType, MessageKind
from .database import raw
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


def index_next(conn: Connection, limit: int) -> Indexed:
    """Index up to ``limit`` messages past ``indexed``, in seq order, inside the
    caller's write transaction."""
    db = raw(conn)
    done = int(db.execute("SELECT seq FROM search_indexed").fetchone()[0])
    upto, count = db.execute(
        "SELECT max(seq), count(*) FROM (SELECT seq FROM messages WHERE seq > :done"
        " ORDER BY seq LIMIT :limit)", {"done": done, "limit": limit}).fetchone()
    if not count:
        return Indexed(done, 0)
    db.execute("INSERT INTO messages_fts (rowid, content) SELECT seq, content FROM messages"
               " WHERE seq > :done AND seq <= :upto", {"done": done, "upto": upto})
    db.execute("UPDATE search_indexed SET seq = :upto", {"upto": upto})
    return Indexed(int(upto), int(count))


class BadMatch(Exception):
    """FTS5 could not parse the MATCH expression; the message is SQLite's."""


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


def hits(conn: Connection, match: str, seqs: list[int], snippet_tokens: int) -> list[Hit]:
    """The messages ``seqs`` (found by ``ranked``), their authors' names and a
    snippet of each around what matched, in no order."""
    if not seqs:
        return []
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
