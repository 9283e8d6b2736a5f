"""events.subscribe / events.unsubscribe against a real wizd: the response
first, scope, unsubscribe, the end of a connection, errors, many subscribers."""

from __future__ import annotations

import time
from contextlib import ExitStack

import pytest

from tests.events.helpers import channel, send_many
from tests.support.daemon import Conn, RpcFailure, Wizd


def wait_for_subscriptions(w: Wizd, count: int) -> None:
    deadline = time.monotonic() + 10
    while (now := w.call("daemon.status")["subscriptions"]) != count:
        assert time.monotonic() < deadline, f"{now} subscriptions, expected {count}"
        time.sleep(0.01)


def test_response_comes_before_the_first_notification(wizd: Wizd) -> None:
    cid = channel(wizd)
    with wizd.connect() as c:
        stored = send_many(c, cid, [f"stored {i}" for i in range(50)])
        for attempt in range(20):
            # History is ready at once, so the forwarder would win any race.
            id = next(c.ids)
            c.send({"jsonrpc": "2.0", "id": id, "method": "events.subscribe",
                    "params": {"conversation_id": cid, "after_seq": 0}})
            first = c.read()
            assert first.get("id") == id, f"attempt {attempt}: {first}"
            sub = first["result"]["subscription"]
            notes = [c.read() for _ in range(50)]
            assert {n["params"]["subscription"] for n in notes} == {sub}
            assert [n["params"]["message"] for n in notes] == stored
            c.call("events.unsubscribe", subscription=sub)


def test_scope_and_both_sides_of_a_conversation(wizd: Wizd) -> None:
    here, there = channel(wizd, "here"), channel(wizd, "there")
    with wizd.connect() as scoped, wizd.connect() as everything, wizd.connect() as sender:
        s1 = scoped.call("events.subscribe", conversation_id=here)["subscription"]
        s2 = everything.call("events.subscribe")["subscription"]
        sent = send_many(sender, here, ["one"]) + send_many(sender, there, ["two"])
        sent += send_many(sender, here, ["three"])
        note = scoped.notification("message.created")["params"]
        assert note == {"subscription": s1, "message": sent[0]}
        assert scoped.notification("message.created")["params"]["message"] == sent[2]
        got = [everything.notification("message.created")["params"] for _ in range(3)]
        assert [g["message"] for g in got] == sent and {g["subscription"] for g in got} == {s2}


def test_unsubscribe_stops_only_that_subscription(wizd: Wizd) -> None:
    cid = channel(wizd)
    with wizd.connect() as c, wizd.connect() as sender:
        gone = c.call("events.subscribe", conversation_id=cid)["subscription"]
        kept = c.call("events.subscribe", conversation_id=cid)["subscription"]
        assert gone != kept
        assert wizd.call("daemon.status")["subscriptions"] == 2
        first = send_many(sender, cid, ["first"])[0]
        seen = {(n["params"]["subscription"], n["params"]["message"]["seq"])
                for n in (c.notification(), c.notification())}
        assert seen == {(gone, first["seq"]), (kept, first["seq"])}
        assert c.call("events.unsubscribe", subscription=gone) == {"ok": True}
        assert wizd.call("daemon.status")["subscriptions"] == 1
        later = send_many(sender, cid, ["second", "third"])
        for message in later:
            note = c.notification()
            assert note["params"] == {"subscription": kept, "message": message}
        c.call("daemon.status")  # a round trip: anything still queued would show
        assert c.notifications == []
        with pytest.raises(RpcFailure) as err:
            c.call("events.unsubscribe", subscription=gone)
        assert err.value.code == -32001


def test_subscriptions_end_when_the_connection_closes(wizd: Wizd) -> None:
    cid = channel(wizd)
    with wizd.connect() as keeper:
        keeper.call("events.subscribe")
        c = wizd.connect()
        with c:
            for scope in (cid, None, cid):
                c.call("events.subscribe", **({"conversation_id": scope} if scope else {}))
            assert wizd.call("daemon.status")["subscriptions"] == 4
        wait_for_subscriptions(wizd, 1)
        with wizd.connect() as sender:
            message = send_many(sender, cid, ["still here"])[0]
        assert keeper.notification("message.created")["params"]["message"] == message


def test_errors(wizd: Wizd) -> None:
    with wizd.connect() as c, wizd.connect() as other:
        theirs = other.call("events.subscribe")["subscription"]
        for params in ({"subscription": "sub-999"}, {"subscription": theirs}):
            with pytest.raises(RpcFailure) as err:
                c.call("events.unsubscribe", **params)
            assert err.value.code == -32001  # another connection's id is not yours
        with pytest.raises(RpcFailure) as err:
            c.call("events.subscribe", conversation_id="no-such-conversation")
        assert err.value.code == -32001
        for params in ({"after_seq": -1}, {"after_seq": "x"}, {"scope": "all"}):
            with pytest.raises(RpcFailure) as err:
                c.call("events.subscribe", **params)
            assert err.value.code == -32602
        with pytest.raises(RpcFailure) as err:
            c.call("events.unsubscribe")
        assert err.value.code == -32602
    wait_for_subscriptions(wizd, 0)


def test_a_hundred_subscribers_each_receive_every_message(wizd: Wizd) -> None:
    cid = channel(wizd)
    with ExitStack() as stack:
        conns: list[Conn] = [stack.enter_context(wizd.connect()) for _ in range(100)]
        subs = [c.call("events.subscribe", **({"conversation_id": cid} if i % 2 else {}))
                ["subscription"] for i, c in enumerate(conns)]
        assert wizd.call("daemon.status")["subscriptions"] == 100
        with wizd.connect() as sender:
            sent = send_many(sender, cid, [f"to all {i}" for i in range(50)])
        for c, sub in zip(conns, subs, strict=True):
            got = [c.notification("message.created")["params"] for _ in sent]
            assert {g["subscription"] for g in got} == {sub}
            assert [g["message"] for g in got] == sent


def test_one_connection_holds_a_bounded_number_of_subscriptions(wizd: Wizd) -> None:
    from wizd.events.subscribe import MAX_PER_CONNECTION

    with wizd.connect() as c:
        subs = [c.call("events.subscribe")["subscription"] for _ in range(MAX_PER_CONNECTION)]
        with pytest.raises(RpcFailure) as err:
            c.call("events.subscribe")
        assert err.value.code == -32002
        c.call("events.unsubscribe", subscription=subs[0])
        c.call("events.subscribe")  # room again
