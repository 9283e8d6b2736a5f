"""Helpers of the cluster tests: wizd nodes on one PostgreSQL database, and
subscribers that record every message.created they get."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from tests.support.daemon import Conn, Wizd


def node(base: Path, url: str, name: str, *args: str, backend: str = "trio") -> Wizd:
    return Wizd(base / name, extra_args=["--db", url, "--node", name, *args],
                env={"WIZ_BACKEND": backend})


@contextmanager
def nodes(base: Path, url: str, count: int, *args: str,
          backend: str = "trio") -> Iterator[list[Wizd]]:
    """``count`` started nodes (n1, n2, ...), killed at the end if still running."""
    started = [node(base, url, f"n{i + 1}", *args, backend=backend) for i in range(count)]
    try:
        for w in started:
            w.start()
        yield started
    finally:
        for w in started:
            w.close()


class Recorder:
    """A connection subscribed to every event of one node from the first
    message (``after_seq`` 0); a thread records the messages of its
    message.created notifications, in arrival order."""

    def __init__(self, w: Wizd) -> None:
        self.conn = Conn(w.socket, timeout=120)
        self.conn.call("events.subscribe", after_seq=0)
        self.messages: list[dict[str, Any]] = []
        self._thread = threading.Thread(target=self._read, daemon=True)

    def start(self) -> Recorder:
        self._thread.start()
        return self

    def _read(self) -> None:
        try:
            while True:
                note = self.conn.read()
                if note.get("method") == "message.created":
                    self.messages.append(note["params"]["message"])
        except (OSError, EOFError, ValueError):
            pass  # the connection ended (closed here, or its node killed)

    def seqs(self) -> list[int]:
        return [m["seq"] for m in list(self.messages)]

    def close(self) -> None:
        try:
            self.conn.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._thread.join(timeout=10)
        self.conn.close()


@contextmanager
def recorders(ws: list[Wizd]) -> Iterator[list[Recorder]]:
    with ExitStack() as stack:
        found = []
        for w in ws:
            rec = Recorder(w)
            stack.callback(rec.close)
            found.append(rec.start())
        yield found
