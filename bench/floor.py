"""The floor: a minimal JSON-RPC 2.0 daemon that issue 10's throughput targets
are ratios to (bench/vs_floor.py runs it beside wizd, with the same client).

    .venv/bin/python bench/floor.py SOCKET DB     prints "ready" once it accepts

anyio on trio; newline-delimited JSON-RPC 2.0 on a Unix socket; one task per
connection reads a line, parses it with the stdlib json module and answers:

- ``message.send`` {conversation_id, content}: one INSERT and COMMIT with the
  stdlib sqlite3 module, on the loop (WAL, synchronous=NORMAL); the
  ``message.created`` event is encoded once and queued to every connection
  subscribed to the conversation; the answer is the stored message.
- ``events.subscribe`` {conversation_id}: the connection gets that
  conversation's events; the answer is {subscription}.
- anything else (``daemon.status``): a small constant-shaped result.

Each connection has one writer task: a write goes out at once, and after a
write that carried events the next waits 5 ms, so writes coalesce under load
while an idle connection sees an event immediately.
"""

from __future__ import annotations

import itertools
import json
import os
import sqlite3
import sys
import time
import uuid
from typing import Any

import anyio
from anyio.abc import SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

COALESCE = 0.005
MAX_LINE = 1 << 20


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


class Connection:
    """One client: its outbox and its writer task."""

    def __init__(self, stream: SocketStream) -> None:
        self.stream = stream
        self.outbox: list[bytes] = []
        self.events = False  # the outbox holds an event
        self.wake = anyio.Event()

    def queue(self, line: bytes, *, event: bool = False) -> None:
        self.outbox.append(line)
        self.events = self.events or event
        self.wake.set()

    async def writer(self) -> None:
        while True:
            if not self.outbox:
                self.wake = anyio.Event()
                await self.wake.wait()
                continue
            data, carried = b"".join(self.outbox), self.events
            self.outbox.clear()
            self.events = False
            await self.stream.send(data)
            if carried:
                await anyio.sleep(COALESCE)


class Floor:
    def __init__(self, db_path: str) -> None:
        self.db = sqlite3.connect(db_path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS messages (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
            " id TEXT NOT NULL, conversation_id TEXT NOT NULL, author_id TEXT NOT NULL,"
            " content TEXT NOT NULL, created_at INTEGER NOT NULL)")
        self.subscribers: dict[str, list[tuple[Connection, bytes]]] = {}
        self.ids = itertools.count(1)
        self.started = time.monotonic()
        self.author = str(uuid.uuid4())

    def answer(self, conn: Connection, request: dict[str, Any]) -> Any:
        method, params = request.get("method"), request.get("params") or {}
        if method == "message.send":
            return {"message": self.send(params["conversation_id"], params["content"])}
        if method == "events.subscribe":
            sub = f"sub-{next(self.ids)}"
            head = (b'{"jsonrpc":"2.0","method":"message.created","params":{"subscription":'
                    + _json(sub) + b',"message":')
            self.subscribers.setdefault(params["conversation_id"], []).append((conn, head))
            return {"subscription": sub}
        return {"version": "floor", "pid": os.getpid(),
                "uptime_ms": int((time.monotonic() - self.started) * 1000),
                "queue": {"waiting": 0, "active": 0}, "subscriptions": next(self.ids) - 1}

    def send(self, conversation_id: str, content: str) -> dict[str, Any]:
        message = {"id": str(uuid.uuid4()), "seq": 0, "conversation_id": conversation_id,
                   "author_id": self.author, "content": content, "kind": "text",
                   "created_at": int(time.time() * 1000)}
        self.db.execute("BEGIN IMMEDIATE")
        cur = self.db.execute(
            "INSERT INTO messages (id, conversation_id, author_id, content, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (message["id"], conversation_id, message["author_id"], content,
             message["created_at"]))
        self.db.execute("COMMIT")
        message["seq"] = cur.lastrowid
        tail = _json(message) + b"}}\n"  # encoded once, whatever the number of subscribers
        for sub_conn, head in self.subscribers.get(conversation_id, ()):
            sub_conn.queue(head + tail, event=True)
        return message

    async def serve(self, stream: SocketStream) -> None:
        conn = Connection(stream)
        async with stream, anyio.create_task_group() as tg:
            tg.start_soon(conn.writer)
            reader = BufferedByteReceiveStream(stream)
            try:
                while True:
                    line = await reader.receive_until(b"\n", MAX_LINE)
                    request = json.loads(line)
                    response = {"jsonrpc": "2.0", "id": request.get("id"),
                                "result": self.answer(conn, request)}
                    conn.queue(_json(response) + b"\n")
            except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError):
                pass
            finally:
                for subs in self.subscribers.values():
                    subs[:] = [s for s in subs if s[0] is not conn]
                tg.cancel_scope.cancel()


async def main(path: str, db_path: str) -> None:
    floor = Floor(db_path)
    listener = await anyio.create_unix_listener(path)
    print("ready", flush=True)
    await listener.serve(floor.serve)


if __name__ == "__main__":
    anyio.run(main, sys.argv[1], sys.argv[2], backend="trio")
