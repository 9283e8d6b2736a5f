"""A real ``wizd`` subprocess on a temporary socket and database, and a raw
line-oriented connection to it for protocol-level tests."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

STARTUP_TIMEOUT = 20.0


def wait_for(predicate: Any, timeout: float = 30.0) -> Any:
    """Poll ``predicate`` until it returns something truthy (returned), or fail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s")


class RpcFailure(Exception):
    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(f"{error.get('code')}: {error.get('message')} {error.get('data', '')}")
        self.code = error.get("code")
        self.message = error.get("message")
        self.data = error.get("data")


class Conn:
    """A blocking JSON-RPC connection that keeps notifications aside."""

    def __init__(self, path: Path, timeout: float = 15.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(str(path))
        except OSError:
            self.sock.close()
            raise
        self.file = self.sock.makefile("rb")
        self.ids = itertools.count(1)
        self.notifications: list[dict[str, Any]] = []
        self.pending: dict[Any, dict[str, Any]] = {}

    def close(self) -> None:
        self.file.close()
        self.sock.close()

    def __enter__(self) -> Conn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, message: Any) -> None:
        self.send_raw(json.dumps(message).encode() + b"\n")

    def read(self) -> Any:
        """The next message (response or notification); raises EOFError at the end."""
        line = self.file.readline()
        if not line:
            raise EOFError("wizd closed the connection")
        return json.loads(line)

    def response(self, id: Any) -> dict[str, Any]:
        while id not in self.pending:
            msg = self.read()
            if isinstance(msg, dict) and "id" not in msg:
                self.notifications.append(msg)
            elif isinstance(msg, dict):
                self.pending[msg["id"]] = msg
            else:
                raise AssertionError(f"unexpected batch {msg!r}")
        return self.pending.pop(id)

    def request(self, method: str, **params: Any) -> dict[str, Any]:
        """The whole response object."""
        id = next(self.ids)
        msg: dict[str, Any] = {"jsonrpc": "2.0", "id": id, "method": method}
        if params:
            msg["params"] = params
        self.send(msg)
        return self.response(id)

    def call(self, method: str, **params: Any) -> Any:
        """The result; raises RpcFailure on an error response."""
        resp = self.request(method, **params)
        if "error" in resp:
            raise RpcFailure(resp["error"])
        return resp["result"]

    def notification(self, method: str | None = None) -> dict[str, Any]:
        """The next notification (of ``method``, skipping others if given)."""
        while True:
            if self.notifications:
                note = self.notifications.pop(0)
            else:
                msg = self.read()
                if "id" in msg:
                    self.pending[msg["id"]] = msg
                    continue
                note = msg
            if method is None or note["method"] == method:
                return note


class Wizd:
    """One wizd process. ``start()``/``stop()``/``kill()`` may be repeated."""

    def __init__(self, base: Path, *, extra_args: list[str] | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        self.socket = base / "run" / "wizd.sock"
        self.db = base / "data" / "wiz.db"
        self.log = base / "wizd.log"
        self.extra_args = extra_args or []
        self.env = dict(os.environ, **(env or {}))
        self.env.setdefault("XDG_CONFIG_HOME", str(base / "config"))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *args: str, wait: bool = True) -> Wizd:
        cmd = [sys.executable, "-m", "wizd", "--socket", str(self.socket), "--db", str(self.db),
               "--log-level", "debug", *self.extra_args, *args]
        logfile = self.log.open("ab")
        self.proc = subprocess.Popen(cmd, stdout=logfile, stderr=logfile, env=self.env)
        logfile.close()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        assert self.proc is not None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"wizd exited {self.proc.returncode}:\n{self.log_text()}")
            try:
                with Conn(self.socket, timeout=2) as c:
                    c.call("daemon.status")
                return
            except (OSError, EOFError):
                time.sleep(0.02)
        raise RuntimeError(f"wizd did not start:\n{self.log_text()}")

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def connect(self) -> Conn:
        return Conn(self.socket)

    def call(self, method: str, **params: Any) -> Any:
        with self.connect() as c:
            return c.call(method, **params)

    def signal(self, signum: int) -> int:
        assert self.proc is not None
        self.proc.send_signal(signum)
        code = self.proc.wait(timeout=30)
        self.proc = None
        return code

    def stop(self) -> int:
        return self.signal(signal.SIGTERM)

    def kill(self) -> int:
        return self.signal(signal.SIGKILL)

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self.proc = None


@contextmanager
def running_wizd(base: Path, **kwargs: Any) -> Iterator[Wizd]:
    w = Wizd(base, **kwargs)
    try:
        yield w.start()
    finally:
        w.close()
