"""A scripted stand-in for wizd on a real Unix socket, for wizctl's unit tests.

Other wizctl test modules import ``FakeWizd`` from here (pytest puts this
folder on sys.path, as it has no __init__.py). It answers each method with a
handler given in the test, records every request, can push notifications and
can vanish and come back (a daemon restart) on the same path.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest


class Fail(Exception):
    """Raise from a handler to answer with a JSON-RPC error."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.error = {"code": code, "message": message}
        if data is not None:
            self.error["data"] = data


class Peer:
    """One client connection as the fake sees it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.lock = threading.Lock()

    def send(self, obj: Any) -> None:
        data = json.dumps(obj).encode() + b"\n"
        with self.lock:
            try:
                self.sock.sendall(data)
            except OSError:
                pass

    def notify(self, method: str, **params: Any) -> None:
        self.send({"jsonrpc": "2.0", "method": method, "params": params})

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


Handler = Callable[[dict[str, Any], Peer], Any]


class FakeWizd:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.handlers: dict[str, Handler] = {}
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.peers: list[Peer] = []
        self.connected = threading.Event()
        self._server: socketserver.ThreadingUnixStreamServer | None = None

    def on(self, method: str, result: Any = None, *, fn: Handler | None = None) -> None:
        """Answer ``method`` with ``result`` (or what ``fn(params, peer)`` returns)."""
        self.handlers[method] = fn or (lambda params, peer: result)

    def calls(self, method: str) -> list[dict[str, Any]]:
        return [p for m, p in self.requests if m == method]

    def start(self) -> FakeWizd:
        fake = self

        class Handle(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                peer = Peer(self.request)
                fake.peers.append(peer)
                fake.connected.set()
                for line in self.rfile:
                    msg = json.loads(line)
                    method, params = msg["method"], msg.get("params", {})
                    fake.requests.append((method, params))
                    reply: dict[str, Any] = {"jsonrpc": "2.0", "id": msg.get("id")}
                    try:
                        handler = fake.handlers.get(method)
                        if handler is None:
                            raise Fail(-32601, "Method not found", method)
                        reply["result"] = handler(params, peer)
                    except Fail as exc:
                        reply["error"] = exc.error
                    if "id" in msg:
                        peer.send(reply)

        class Server(socketserver.ThreadingUnixStreamServer):
            daemon_threads = True
            block_on_close = False

        self._server = Server(str(self.path), Handle)
        threading.Thread(target=self._server.serve_forever, args=(0.01,), daemon=True).start()
        return self

    def stop(self) -> None:
        """Vanish like a killed daemon: no socket, every connection closed."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        for peer in self.peers:
            peer.close()
        self.peers.clear()
        self.connected.clear()
        self.path.unlink(missing_ok=True)


@contextmanager
def running(path: Path) -> Iterator[FakeWizd]:
    """A started FakeWizd at ``path``, stopped at the end (for each module's fixture)."""
    server = FakeWizd(path).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeWizd]:
    with running(tmp_path / "wizd.sock") as server:
        yield server


def test_the_fake_answers_and_records(fake: FakeWizd) -> None:
    fake.on("daemon.status", {"version": "x"})
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(fake.path))
        s.sendall(b'{"jsonrpc":"2.0","id":7,"method":"daemon.status"}\n')
        reply = json.loads(s.makefile("rb").readline())
    assert reply == {"jsonrpc": "2.0", "id": 7, "result": {"version": "x"}}
    assert fake.requests == [("daemon.status", {})]
