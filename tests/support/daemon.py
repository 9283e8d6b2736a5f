"""A real ``wizd`` subprocess on a temporary socket and database, and a raw
line-oriented connection to it for protocol-level tests."""

from __future__ import annotations

import atexit
import itertools
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from tests.support.perworker import PerWorker

STARTUP_TIMEOUT = 20.0

# WIZ_TESTS_EXEC=1 starts every wizd with `python -m wizd` instead of a fork
# of the fork server (to rule the fork server out when a test fails oddly).
EXEC_ALWAYS = os.environ.get("WIZ_TESTS_EXEC") == "1"


class Process(Protocol):
    """What tests use of a wizd process: subprocess.Popen's names and meanings."""

    pid: int
    returncode: int | None

    def poll(self) -> int | None: ...
    def wait(self, timeout: float | None = None) -> int: ...
    def send_signal(self, sig: int) -> None: ...
    def kill(self) -> None: ...


class _ForkServer(PerWorker):
    """The per-worker ``forkserver.py`` process, started on first use.

    Shared by the tests of one worker as the Python interpreter is: it keeps
    no state of any test (each fork gets the test's arguments, environment,
    folder and umask), so nothing leaks from one test to the next.
    """

    def __init__(self) -> None:
        script = Path(__file__).with_name("forkserver.py")
        self.proc = subprocess.Popen([sys.executable, str(script)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE)
        atexit.register(self.close)

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        with self._lock:
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")
            self.proc.stdin.flush()
            line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the wizd fork server exited {self.proc.wait()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class ForkedWizd:
    """A wizd forked by the fork server, with the part of Popen's interface tests use.

    Its exit is seen through a pidfd (this process is not its parent); the
    fork server, its parent, reaps it and says its status.
    """

    def __init__(self, server: _ForkServer, args: list[str], env: dict[str, str],
                 log: Path, err: Path | None = None) -> None:
        umask = os.umask(0o022)
        os.umask(umask)
        self._server = server
        self.pid: int = server.ask({"start": args, "env": env, "log": str(log),
                                    "err": str(err) if err else None,
                                    "cwd": os.getcwd(), "umask": umask})["pid"]
        # Opened before the child can be reaped, so the pid cannot be reused under us.
        self._pidfd = os.pidfd_open(self.pid)
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self._reap(0)

    def wait(self, timeout: float | None = None) -> int:
        code = self._reap(timeout)
        if code is None:
            raise subprocess.TimeoutExpired(f"wizd (pid {self.pid})", timeout or 0)
        return code

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            signal.pidfd_send_signal(self._pidfd, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def _reap(self, timeout: float | None) -> int | None:
        if self.returncode is not None:
            return self.returncode
        ready, _, _ = select.select([self._pidfd], [], [], timeout)
        if not ready:
            return None
        status = self._server.ask({"reap": self.pid})["status"]
        self.returncode = os.waitstatus_to_exitcode(status)
        os.close(self._pidfd)
        return self.returncode


def run_wizd(args: list[str], env: dict[str, str], timeout: float = 60) -> tuple[int, str, str]:
    """Run wizd with ``args`` until it exits: its exit code, stdout and stderr.

    A fork of the fork server, as ``Wizd.start`` (``python -m wizd`` under
    WIZ_TESTS_EXEC=1).
    """
    if EXEC_ALWAYS:
        done = subprocess.run([sys.executable, "-m", "wizd", *args], capture_output=True,
                              text=True, timeout=timeout, env=env)
        return done.returncode, done.stdout, done.stderr
    with tempfile.TemporaryDirectory() as folder:
        out, err = Path(folder) / "stdout", Path(folder) / "stderr"
        proc = ForkedWizd(_ForkServer.get(), args, env, out, err)
        try:
            code = proc.wait(timeout)
        finally:
            proc.kill()
            proc.wait(30)
        return code, out.read_text(), err.read_text()


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

    def streamed_reply(self, author_id: str) -> tuple[list[str], dict[str, Any]]:
        """The ``message.delta`` pieces that come before the message.created of
        a message by ``author_id``, and that message."""
        deltas: list[str] = []
        while True:
            note = self.notification()
            if note["method"] == "message.delta":
                deltas.append(note["params"]["delta"])
            elif (note["method"] == "message.created"
                  and note["params"]["message"]["author_id"] == author_id):
                return deltas, note["params"]["message"]

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
        self.proc: Process | None = None

    def start(self, *args: str, wait: bool = True, fork: bool = True) -> Wizd:
        """Start wizd; a fork of the fork server unless ``fork=False`` (``python -m wizd``)."""
        argv = ["--socket", str(self.socket), "--db", str(self.db), "--log-level", "debug",
                *self.extra_args, *args]
        if fork and not EXEC_ALWAYS:
            self.proc = ForkedWizd(_ForkServer.get(), argv, self.env, self.log)
        else:
            logfile = self.log.open("ab")
            self.proc = subprocess.Popen([sys.executable, "-m", "wizd", *argv], stdout=logfile,
                                         stderr=logfile, env=self.env)
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
