"""Both sides of an exchange reach a subscriber: the human message, the reply's
message.delta pieces in order, then the stored reply (offline provider: no network)."""

from __future__ import annotations

from typing import Any

from tests.events.helpers import channel
from tests.support.daemon import Conn, Wizd


def until_reply(c: Conn, human_id: str) -> list[dict[str, Any]]:
    """Notifications up to the reply to ``human_id`` and its job's completion."""
    notes: list[dict[str, Any]] = []
    replied = completed = False
    while not (replied and completed):
        note = c.notification()
        notes.append(note)
        params = note["params"]
        if note["method"] == "message.created" and params["message"]["reply_to"] == human_id:
            replied = True
        if note["method"] == "job.updated" and params["job"]["status"] == "completed":
            completed = True
    return notes


def test_subscriber_sees_message_deltas_and_reply(wizd: Wizd) -> None:
    wizd.call("provider.create", name="demo", type="offline", default_model="demo-1")
    agent = wizd.call("agent.create", name="Ada", role="Researcher",
                      backstory="Reads everything.", goal="Answer well.")
    dm = wizd.call("dm.create", participants=["Ada"])
    elsewhere = channel(wizd)
    with wizd.connect() as scoped, wizd.connect() as everything, \
            wizd.connect() as other, wizd.connect() as sender:
        sub = scoped.call("events.subscribe", conversation_id=dm["id"])["subscription"]
        everything.call("events.subscribe")
        other.call("events.subscribe", conversation_id=elsewhere)
        sent = sender.call("message.send", conversation_id=dm["id"], content="hello there")
        human = sent["message"]
        assert len(sent["jobs"]) == 1
        notes = until_reply(scoped, human["id"])
        assert {n["params"]["subscription"] for n in notes} == {sub}
        created = [n["params"]["message"] for n in notes if n["method"] == "message.created"]
        assert created[0] == human
        reply = created[1]
        assert reply["author_id"] == agent["user_id"] and reply["kind"] == "text"
        assert reply["seq"] > human["seq"]
        methods = [n["method"] for n in notes]
        reply_at = methods.index("message.created", methods.index("message.created") + 1)
        deltas = [n["params"] for n in notes if n["method"] == "message.delta"]
        assert len(deltas) > 1  # streamed in pieces...
        assert max(i for i, m in enumerate(methods) if m == "message.delta") < reply_at
        assert [d["index"] for d in deltas] == list(range(len(deltas)))  # ...in order,
        assert "".join(d["delta"] for d in deltas) == reply["content"]  # adding up to the reply
        assert {(d["job_id"], d["author_id"], d["conversation_id"]) for d in deltas} == {
            (sent["jobs"][0], agent["user_id"], dm["id"])}
        statuses = [n["params"]["status"] for n in notes if n["method"] == "agent.status"]
        assert statuses[:1] == ["busy"]
        # The unscoped subscriber saw the same exchange.
        seen = until_reply(everything, human["id"])
        assert [n["method"] for n in seen if n["method"] != "agent.status"] == [
            m for m in methods if m != "agent.status"]
        # A subscriber of another conversation saw none of it.
        other.call("daemon.status")
        assert other.notifications == []
