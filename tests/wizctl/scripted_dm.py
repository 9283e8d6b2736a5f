"""A DM between me and the agent alice, scripted on a FakeWizd the way wizd
behaves: stored messages, ``events.subscribe`` replaying them after
``after_seq``, live ones pushed to a subscription, ``daemon.status.last_seq``.
"""

from __future__ import annotations

from typing import Any

from tests.wizctl.fakewizd import FakeWizd, Peer

ME = {"id": "u-me", "name": "me"}
ALICE = {"id": "a-1", "user_id": "u-alice", "name": "alice"}
BOB = {"id": "a-2", "user_id": "u-bob", "name": "bob"}
DM = {"id": "dm-1", "type": "dm", "name": None, "participants": ["u-me", "u-alice"]}


def msg(seq: int, content: str = "", author: str = "u-alice", **extra: Any) -> dict[str, Any]:
    """A stored message of the DM (by alice unless said otherwise)."""
    return {"id": f"m{seq}", "seq": seq, "conversation_id": "dm-1", "author_id": author,
            "content": content or f"message {seq}", "kind": "text", "reply_to": None,
            "created_at": 1_700_000_000_000 + seq * 1000, **extra}


class Store:
    """Stored messages and a subscribe handler that replays them, like wizd."""

    def __init__(self, fake: FakeWizd, messages: list[dict[str, Any]]) -> None:
        self.messages = messages
        self.subs = 0
        self.peers: dict[Any, Peer] = {}
        fake.on("events.subscribe", fn=self.subscribe)
        fake.on("user.me", ME)
        fake.on("user.list", {"users": [ME, {"id": "u-alice", "name": "alice"},
                                      {"id": "u-bob", "name": "bob"}]})
        fake.on("agent.list", {"agents": [ALICE, BOB]})
        fake.on("dm.list", {"conversations": [DM]})
        fake.on("message.list", fn=self.list)
        fake.on("daemon.status", fn=lambda params, peer: {"last_seq": self.last_seq})

    @property
    def last_seq(self) -> int:
        return max((m["seq"] for m in self.messages), default=0)

    def subscribe(self, params: dict[str, Any], peer: Peer) -> dict[str, Any]:
        self.subs += 1
        sub = f"s{self.subs}"
        self.peers[sub] = peer
        after = params.get("after_seq")
        if after is not None:
            # Replay one already-seen message too: the client must drop it.
            for m in self.messages:
                if m["seq"] >= after:
                    peer.notify("message.created", subscription=sub, message=m)
        return {"subscription": sub}

    def list(self, params: dict[str, Any], peer: Peer) -> dict[str, Any]:
        return {"messages": self.messages[-params.get("limit", 50):]}

    def live(self, sub: str, m: dict[str, Any]) -> None:
        self.messages.append(m)
        if sub in self.peers:
            self.peers[sub].notify("message.created", subscription=sub, message=m)


def seqs(notes: list[Any]) -> list[int]:
    """The seqs of the ``message.created`` among ``notes``."""
    return [n.params["message"]["seq"] for n in notes if n.method == "message.created"]
