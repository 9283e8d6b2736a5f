"""PostgreSQL's LISTEN/NOTIFY, as the cluster's bus uses it (wizd.cluster.bus).

Blocking calls on connections of their own (autocommit, outside the runner's
pool): the bus runs each in a worker thread. A notification's payload is at
most ``MAX_PAYLOAD`` bytes (PostgreSQL's limit is 8000).
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


_SEND = "SELECT pg_notify(c, p) FROM unnest(%s::text[], %s::text[]) AS n(c, p)"


def send(conn: psycopg.Connection[Any], notices: list[tuple[str, str]]) -> None:
    """Send ``notices`` (channel, payload), in order, in one statement."""
    conn.execute(_SEND, ([c for c, _ in notices], [p for _, p in notices]))
