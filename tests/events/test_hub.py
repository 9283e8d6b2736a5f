"""The hub alone: scope, order, the bounded buffer, the lagged drop, and how it
tells load (many subscriptions with events waiting) from a lone subscriber."""

from __future__ import annotations

import anyio
import pytest

from wizd.events.hub import BUSY, Event, Hub

pytestmark = pytest.mark.anyio


def created(seq: int, conversation_id: str = "c1") -> Event:
    return Event("message.created", {"message": {"seq": seq}}, conversation_id, seq)


async def test_events_reach_only_attached_subscriptions_in_publish_order() -> None:
    hub = Hub(buffer=16)
    sub = hub.create(None)
    hub.publish(created(1))  # before attach: not for this subscription
    hub.attach(sub, 1)
    assert len(hub) == 1 and sub.attached and sub.last_seq == 1
    for seq in (2, 3, 4):
        hub.publish(created(seq))
    assert [e.seq for e in sub.take()] == [2, 3, 4]
    hub.detach(sub)
    assert len(hub) == 0 and sub.closed
    with anyio.fail_after(1):
        await sub.wait()  # a closed subscription does not keep its reader waiting
    assert sub.take() == []


async def test_a_reader_waits_until_an_event_arrives() -> None:
    hub = Hub(buffer=16)
    sub = hub.create("c1")
    hub.attach(sub, 0)
    got: list[int | None] = []
    async with anyio.create_task_group() as tg:
        async def read() -> None:
            await sub.wait()
            got.extend(e.seq for e in sub.take())

        tg.start_soon(read)
        await anyio.wait_all_tasks_blocked()
        assert got == []
        hub.publish(created(1, "c2"))  # another conversation: still waiting
        await anyio.wait_all_tasks_blocked()
        assert got == []
        hub.publish(created(2))
    assert got == [2]
    hub.detach(sub)


async def test_scope_is_one_conversation_or_everything() -> None:
    hub = Hub(buffer=16)
    scoped, everything = hub.create("c1"), hub.create(None)
    hub.attach(scoped, 0)
    hub.attach(everything, 0)
    hub.publish(created(1, "c1"))
    hub.publish(created(2, "c2"))
    hub.publish(Event("agent.status", {"agent_id": "a", "status": "busy"}, None))
    hub.publish(Event("job.updated", {"job": {"id": "j"}}, "c1"))
    assert [(e.method, e.conversation_id) for e in scoped.take()] == [
        ("message.created", "c1"), ("job.updated", "c1")]
    assert len(everything.take()) == 4
    hub.detach(scoped)
    hub.detach(everything)


async def test_full_buffer_drops_only_that_subscriber_without_blocking() -> None:
    hub = Hub(buffer=3)
    slow, fast = hub.create(None), hub.create(None)
    hub.attach(slow, 0)
    hub.attach(fast, 0)
    got = []
    for seq in range(1, 11):  # synchronous: publish can never wait for a reader
        hub.publish(created(seq))
        assert len(slow.buffer) <= 3  # memory stays bounded, whatever the reader does
        got += fast.take()
    assert slow.lagged and slow.closed and not slow.attached
    assert not fast.lagged and [e.seq for e in got] == list(range(1, 11))
    assert len(hub) == 1
    # Dropped: what its buffer held is released, and its reader takes nothing more.
    assert not slow.buffer and slow.take() == []
    hub.detach(fast)


async def test_detached_before_attach_stays_out() -> None:
    """A connection that closes while its subscribe is waiting for the write lock."""
    hub = Hub(buffer=4)
    sub = hub.create(None)
    hub.detach(sub)
    hub.detach(sub)  # idempotent
    hub.attach(sub, 7)
    assert len(hub) == 0 and not sub.attached
    hub.publish(created(8))
    assert sub.take() == []


async def test_busy_while_many_subscriptions_have_events_waiting() -> None:
    hub = Hub(buffer=64)
    subs = [hub.create("c1") for _ in range(BUSY)]
    for sub in subs:
        hub.attach(sub, 0)
    lone = hub.create("c2")
    hub.attach(lone, 0)
    hub.publish(created(1, "c2"))
    assert not hub.busy  # one subscription waiting: a person's reply, not load
    lone.take()
    hub.publish(created(2, "c1"))
    assert hub.busy  # one message to BUSY subscribers: load
    for sub in subs:
        sub.take()
    hub.publish(created(3, "c2"))
    assert not hub.busy  # the readers caught up
    for sub in [*subs, lone]:
        hub.detach(sub)
    hub.publish(created(4, "c1"))
    assert not hub.busy
