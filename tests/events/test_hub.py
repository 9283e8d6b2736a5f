"""The hub alone: scope, order, the bounded buffer and the lagged drop."""

from __future__ import annotations

import anyio
import pytest

from wizd.events.hub import Event, Hub

pytestmark = pytest.mark.anyio


def created(seq: int, conversation_id: str = "c1") -> Event:
    return Event("message.created", {"message": {"seq": seq}}, conversation_id, seq)


def drain(sub) -> list[Event]:  # type: ignore[no-untyped-def]
    out = []
    while True:
        try:
            out.append(sub.receive.receive_nowait())
        except (anyio.WouldBlock, anyio.EndOfStream):
            return out


async def test_events_reach_only_attached_subscriptions_in_publish_order() -> None:
    hub = Hub(buffer=16)
    sub = hub.create(None)
    with sub.receive:
        hub.publish(created(1))  # before attach: not for this subscription
        hub.attach(sub, 1)
        assert len(hub) == 1 and sub.attached and sub.last_seq == 1
        for seq in (2, 3, 4):
            hub.publish(created(seq))
        assert [e.seq for e in drain(sub)] == [2, 3, 4]
        hub.detach(sub)
        assert len(hub) == 0 and sub.closed
        with pytest.raises(anyio.EndOfStream):
            await sub.receive.receive()


async def test_scope_is_one_conversation_or_everything() -> None:
    hub = Hub(buffer=16)
    scoped, everything = hub.create("c1"), hub.create(None)
    with scoped.receive, everything.receive:
        hub.attach(scoped, 0)
        hub.attach(everything, 0)
        hub.publish(created(1, "c1"))
        hub.publish(created(2, "c2"))
        hub.publish(Event("agent.status", {"agent_id": "a", "status": "busy"}, None))
        hub.publish(Event("job.updated", {"job": {"id": "j"}}, "c1"))
        assert [(e.method, e.conversation_id) for e in drain(scoped)] == [
            ("message.created", "c1"), ("job.updated", "c1")]
        assert len(drain(everything)) == 4
        hub.detach(scoped)
        hub.detach(everything)


async def test_full_buffer_drops_only_that_subscriber_without_blocking() -> None:
    hub = Hub(buffer=3)
    slow, fast = hub.create(None), hub.create(None)
    with slow.receive, fast.receive:
        hub.attach(slow, 0)
        hub.attach(fast, 0)
        got = []
        for seq in range(1, 11):  # synchronous: publish can never wait for a reader
            hub.publish(created(seq))
            got += drain(fast)
        assert slow.lagged and slow.closed and not slow.attached
        assert not fast.lagged and [e.seq for e in got] == list(range(1, 11))
        assert len(hub) == 1
        # The buffer kept what fitted; the hub holds no more than that.
        assert [e.seq for e in drain(slow)] == [1, 2, 3]
        hub.detach(fast)


async def test_detached_before_attach_stays_out() -> None:
    """A connection that closes while its subscribe is waiting for the write lock."""
    hub = Hub(buffer=4)
    sub = hub.create(None)
    with sub.receive:
        hub.detach(sub)
        hub.detach(sub)  # idempotent
        hub.attach(sub, 7)
        assert len(hub) == 0 and not sub.attached
        hub.publish(created(8))
        with pytest.raises(anyio.EndOfStream):
            sub.receive.receive_nowait()
