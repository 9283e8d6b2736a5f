"""Driving a real wizd for the event tests: channels (where a message mentions
no agent, so nobody replies), pipelined sends, and reading notifications."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

from tests.support.daemon import Conn, RpcFailure, Wizd


def channel(w: Wizd, name: str = "general") -> str:
    """A new channel's id: messages there trigger no agent unless they @mention one."""
    project = w.call("project.create", name=f"project-{name}")
    return str(w.call("channel.create", project_id=project["id"], name=name)["id"])


def send_many(conn: Conn, conversation_id: str, contents: Iterable[str],
              window: int = 32) -> list[dict[str, Any]]:
    """message.send each content, ``window`` requests in flight; the stored messages
    in seq order (concurrent requests may commit in another order than sent)."""
    inflight: deque[int] = deque()
    out: list[dict[str, Any]] = []

    def settle() -> None:
        resp = conn.response(inflight.popleft())
        if "error" in resp:
            raise RpcFailure(resp["error"])
        out.append(resp["result"]["message"])

    for content in contents:
        if len(inflight) >= window:
            settle()
        id = next(conn.ids)
        conn.send({"jsonrpc": "2.0", "id": id, "method": "message.send",
                   "params": {"conversation_id": conversation_id, "content": content}})
        inflight.append(id)
    while inflight:
        settle()
    return sorted(out, key=lambda m: m["seq"])


def stored_after(w: Wizd, conversation_id: str, after_seq: int) -> list[dict[str, Any]]:
    """Every stored message of a conversation after ``after_seq``, via message.list."""
    out: list[dict[str, Any]] = []
    with w.connect() as c:
        while True:
            page = c.call("message.list", conversation_id=conversation_id,
                          after_seq=after_seq, limit=1000)["messages"]
            if not page:
                return out
            out += page
            after_seq = page[-1]["seq"]


def newest_seq(w: Wizd, conversation_id: str) -> int:
    page = w.call("message.list", conversation_id=conversation_id, limit=1)["messages"]
    return int(page[-1]["seq"]) if page else 0
