"""A scripted stand-in for wizd on a real Unix socket, for wizctl's tests.

It answers each method with a handler the test gives, records every request,
can push notifications, and can vanish and come back on the same path (a
daemon restart). The ``fake`` fixture (``conftest.py``) hands out a started
one; tests import the types from here.
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any


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
    """The fake daemon at ``path``: ``on()`` scripts it, ``requests`` records it,
    ``start()`` / ``stop()`` bring it up and down (again and again)."""

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
        """The params of every request of ``method`` so far, in order."""
        return [p for m, p in self.requests if m == method]

    def start(self) -> FakeWizd:
        """Listen at ``path``, serving each connection on its own thread."""
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
