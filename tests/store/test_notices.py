"""Notifications between nodes (wizd.store.notices) on a real PostgreSQL
server: a payload longer than a notification may be goes as parts and is
joined again whole, in order with the rest, even with several senders at
once; a payload whose parts a listener did not all get is dropped, not
joined wrong."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.support import postgres as pg_support
from wizd.store import notices


@pytest.fixture
def url() -> Iterator[str]:
    with pg_support.database() as found:
        yield found


def _event(tag: str, size: int) -> str:
    # As the bus relays events: JSON, ASCII only (json.dumps escapes the rest).
    return json.dumps({"m": "message.delta", "p": {"tag": tag, "delta": "ü" * size}})


def _received(conn: psycopg.Connection[Any], count: int) -> list[tuple[str, str]]:
    """The next ``count`` whole payloads (sender, body) of wiz_events, parts joined."""
    parts = notices.Parts()
    found: list[tuple[str, str]] = []
    while len(found) < count:
        got = notices.wait(conn, 10.0)
        assert got, f"waited 10 s with {len(found)} of {count}"
        for channel, payload in got:
            assert channel == notices.EVENTS
            assert len(payload.encode()) <= notices.MAX_PAYLOAD
            sender, _, body = payload.partition("\n")
            if not body.startswith("{"):
                joined = parts.add(sender, body)
                if joined is None:
                    continue
                body = joined
            found.append((sender, body))
    return found


def test_long_payloads_arrive_whole_and_in_order(url: str) -> None:
    bodies = [_event("small", 10), _event("long", 30_000), _event("small again", 20),
              _event("long", 30_000), _event("at the limit", 3_000)]
    listener = notices.listen(url)
    sender = notices.connect(url)
    try:
        batch = [(notices.EVENTS, part) for serial, body in enumerate(bodies)
                 for part in notices.split("a\n", body, serial)]
        assert len(batch) > len(bodies)
        notices.send(sender, batch)
        # The same long event twice in one transaction: both arrive (their
        # parts differ by serial, so PostgreSQL drops neither).
        assert [body for _, body in _received(listener, len(bodies))] == bodies
    finally:
        listener.close()
        sender.close()


def test_senders_at_once_never_mix_their_parts(url: str) -> None:
    listener = notices.listen(url)
    per_sender = 10

    def send_all(name: str) -> None:
        conn = notices.connect(url)
        try:
            for serial in range(per_sender):
                notices.send(conn, [(notices.EVENTS, part) for part in notices.split(
                    f"{name}\n", _event(f"{name}-{serial}", 12_000), serial)])
        finally:
            conn.close()

    try:
        threads = [threading.Thread(target=send_all, args=(name,)) for name in ("a", "b", "c")]
        for t in threads:
            t.start()
        got = _received(listener, 3 * per_sender)
        for t in threads:
            t.join()
    finally:
        listener.close()
    for name in ("a", "b", "c"):
        mine = [json.loads(body)["p"]["tag"] for sender, body in got if sender == name]
        assert mine == [f"{name}-{serial}" for serial in range(per_sender)]


def test_parts_missing_their_start_or_a_middle_are_dropped() -> None:
    parts = [p.partition("\n")[2] for p in notices.split("a\n", _event("x", 20_000), 7)]
    assert len(parts) >= 3
    joining = notices.Parts()
    # Listening began after the first part went out.
    assert [joining.add("a", p) for p in parts[1:]] == [None] * (len(parts) - 1)
    # One part lost in the middle (a connection lost and made again).
    assert [joining.add("a", p) for p in parts[:1] + parts[2:]] == [None] * (len(parts) - 1)
    # Whole, after all that.
    assert [joining.add("a", p) for p in parts][-1] == _event("x", 20_000)


def test_a_payload_that_fits_goes_as_it_is() -> None:
    body = _event("x", 100)
    assert notices.split("node\n", body, 1) == ["node\n" + body]


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_what_a_node_notifies_goes_before_its_next_write_and_alone_when_none_comes(
    url: str,
) -> None:
    """``Database.notify``: a listener gets what was notified before a write
    before what that write's triggers notify (a reply's relayed deltas before
    the reply), and ``flush`` sends what no write took along."""
    from wizd.store import jobs
    from wizd.store.database import Database

    listener = notices.listen(url)
    db = Database(url)
    await db.open()
    try:
        db.notify(notices.EVENTS, "before")
        await db.write(lambda conn: jobs.add_job(conn, name="noop", data={}, now_ms=1,
                                                 max_attempts=1))
        db.notify(notices.EVENTS, "alone")
        await db.flush()
        got: list[tuple[str, str]] = []
        while len(got) < 3:
            arrived = notices.wait(listener, 10.0)
            assert arrived, f"waited 10 s; got {got}"
            got += arrived
        assert got == [(notices.EVENTS, "before"), (notices.JOBS, ""),
                       (notices.EVENTS, "alone")]
    finally:
        await db.close()
        listener.close()
