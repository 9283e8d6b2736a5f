"""PostgreSQL's LISTEN/NOTIFY, as the cluster's bus uses it (wizd.cluster.bus).

Blocking calls on connections of their own (autocommit, outside the runner's
pool): the bus runs each in a worker thread. A notification's payload is at
most ``MAX_PAYLOAD`` bytes (PostgreSQL's limit is 8000): a longer one goes
as parts (``split``), joined again by the listener (``Parts``). The parts of
one payload are sent in one statement, so in one transaction, and
PostgreSQL queues a transaction's notifications together, in order, in
commit order with other transactions': a listener gets them one after the
other, never mixed with another sender's.
"""

from __future__ import annotations

from typing import Any

import psycopg

from .postgres import connect_args

MAX_PAYLOAD = 7900

# The channels, and what a notification on each means.
JOBS = "wiz_jobs"  # a commit made a job claimable (migration 14's trigger)
MESSAGES = "wiz_messages"  # a commit stored messages; payload: the writing node
EVENTS = "wiz_events"  # an event published on a node (JSON)
CANCEL = "wiz_cancel"  # a node is asked to cancel a job it runs (JSON)
CHANNELS = (JOBS, MESSAGES, EVENTS, CANCEL)


def connect(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True, **connect_args(url))


def listen(url: str) -> psycopg.Connection[Any]:
    """A new connection listening on every channel."""
    conn = connect(url)
    try:
        for channel in CHANNELS:
            conn.execute(f"LISTEN {channel}")
    except BaseException:
        conn.close()
        raise
    return conn


def wait(conn: psycopg.Connection[Any], timeout: float) -> list[tuple[str, str]]:
    """The notifications that arrive within ``timeout`` seconds (returns once
    some have: all that came in the same packet), as (channel, payload)."""
    return [(n.channel, n.payload) for n in conn.notifies(timeout=timeout, stop_after=1)]


def split(head: str, body: str, serial: int) -> list[str]:
    """``head + body`` as payloads of at most MAX_PAYLOAD bytes: one if it
    fits, else parts ``head + "<serial>:<i>/<n>\\n" + piece`` (``i`` from 1).
    ``serial`` tells one sender's payloads apart: PostgreSQL drops a
    notification identical to another of the same transaction."""
    whole = head + body
    if len(whole.encode()) <= MAX_PAYLOAD:
        return [whole]
    # The header's room at its longest; a character is at most 4 bytes.
    room = MAX_PAYLOAD - len(f"{head}{serial}:{len(body)}/{len(body)}\n".encode())
    step = room if body.isascii() else room // 4
    pieces = [body[i:i + step] for i in range(0, len(body), step)]
    n = len(pieces)
    return [f"{head}{serial}:{i}/{n}\n{piece}" for i, piece in enumerate(pieces, 1)]


class Parts:
    """A listener's parts of split payloads, by sender, joined in order."""

    def __init__(self) -> None:
        self._open: dict[str, tuple[str, list[str]]] = {}

    def add(self, sender: str, part: str) -> str | None:
        """The whole body once ``part`` (after the head: ``<serial>:<i>/<n>\\n``
        and a piece) is its payload's last; None until then, or if ``part``
        is not the next of what this sender began (a connection lost in
        between): that payload is dropped."""
        header, _, piece = part.partition("\n")
        serial, _, position = header.partition(":")
        i, _, n = position.partition("/")
        if i == "1":
            self._open[sender] = (serial, [])
        begun = self._open.get(sender)
        if begun is None or begun[0] != serial or str(len(begun[1]) + 1) != i:
            self._open.pop(sender, None)
            return None
        begun[1].append(piece)
        if i != n:
            return None
        del self._open[sender]
        return "".join(begun[1])


_SEND = "SELECT pg_notify(c, p) FROM unnest(%s::text[], %s::text[]) AS n(c, p)"


def send(conn: psycopg.Connection[Any], notices: list[tuple[str, str]]) -> None:
    """Send ``notices`` (channel, payload), in order, in one statement."""
    conn.execute(_SEND, ([c for c, _ in notices], [p for _, p in notices]))
