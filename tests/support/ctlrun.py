"""Run the real ``wizctl`` command, as subprocess's ``Popen`` and ``run`` would.

A run of the console script (``WIZCTL``) is a fork of the per-worker
``ctlserver.py`` (which has imported wizctl, typer and prompt_toolkit once),
not an exec: a separate process all the same, running the console script
file with the test's arguments, environment, folder, umask and standard
streams. ``ForkedPopen`` is ``subprocess.Popen`` but for how the child is
made and reaped, so pipes, text mode, ``input``, ``communicate`` and timeouts
behave exactly as Popen's.

Anything else (another program, ``pass_fds``, a ``preexec_fn``), an
environment that differs from the server's in what Python or typer read only
at start-up, and every run under ``WIZ_TESTS_EXEC=1``, is a real exec.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from tests.support.perworker import PerWorker

# The console script installed next to the interpreter: what a person runs.
# (``python -m wizctl.main`` would only import the module: it has no __main__ block.)
WIZCTL = str(Path(sys.executable).with_name("wizctl"))

# WIZ_TESTS_EXEC=1 execs every wizctl (and wizd: tests.support.daemon) instead
# of forking a pre-imported one (to rule the fork servers out when a test fails oddly).
EXEC_ALWAYS = os.environ.get("WIZ_TESTS_EXEC") == "1"

# Read by Python itself before any code runs, by typer when imported, or by
# pydantic when it looks for its plugins (once, in the server): a run whose
# environment differs from the server's in these is exec'd. (The
# child builds its standard streams again from its own PYTHONUNBUFFERED and
# PYTHONIOENCODING, and sets sys.dont_write_bytecode from its own environment.)
APPLIED_IN_CHILD = {"PYTHONUNBUFFERED", "PYTHONIOENCODING", "PYTHONDONTWRITEBYTECODE"}
STARTUP_PREFIXES = ("PYTHON", "TYPER", "_TYPER", "PYDANTIC", "TERMINAL_WIDTH", "LC_", "LANG")

# Exec'd for a terminal: take stdin (the pty) as the controlling terminal of
# the new session, then exec the command (what a shell does when it starts a job).
CONTROLLING_TTY = ("import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
                   "os.execv(sys.argv[1], sys.argv[1:])")


def _startup_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items()
            if k.startswith(STARTUP_PREFIXES) and k not in APPLIED_IN_CHILD}


class _CtlServer(PerWorker):
    """The per-worker ``ctlserver.py`` process, started on first use.

    It keeps no state of any test (each fork gets the test's arguments,
    environment, folder, umask and streams), so nothing leaks between tests.
    """

    def __init__(self) -> None:
        script = Path(__file__).with_name("ctlserver.py")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # Its own standard streams are the worker's; each run's are passed to it.
        self.env = {k: v for k, v in os.environ.items() if k not in APPLIED_IN_CHILD}
        with theirs:
            self.proc = subprocess.Popen([sys.executable, str(script), str(theirs.fileno())],
                                         pass_fds=[theirs.fileno()], env=self.env,
                                         stdin=subprocess.DEVNULL)
        self.sock = ours
        self.startup_env = _startup_env(self.env)
        self.ask_lock = threading.Lock()
        atexit.register(self.close)

    def ask(self, request: dict[str, Any], fds: list[int] | None = None) -> dict[str, Any]:
        with self.ask_lock:
            socket.send_fds(self.sock, [json.dumps(request).encode()], fds or [])
            data = self.sock.recv(1 << 16)
        if not data:
            raise RuntimeError(f"the wizctl fork server exited {self.proc.wait()}")
        answer: dict[str, Any] = json.loads(data)
        return answer

    def close(self) -> None:
        self.sock.close()
        self.proc.wait(timeout=30)


class ForkedPopen(subprocess.Popen):  # type: ignore[type-arg]
    """``subprocess.Popen`` whose child is forked by the fork server instead of exec'd.

    This process is not the child's parent: its exit is seen through a pidfd
    (opened before the server can reap it, so the pid cannot be reused under
    us) and its status comes from the server, which reaps it when asked.
    """

    def __init__(self, *args: Any, controlling_terminal: bool = False, **kwargs: Any) -> None:
        self._controlling_terminal = controlling_terminal
        self._pidfd = -1
        super().__init__(*args, **kwargs)

    def _execute_child(self, args: Any, executable: Any, preexec_fn: Any, close_fds: Any,
                       pass_fds: Any, cwd: Any, env: Any, startupinfo: Any, creationflags: Any,
                       shell: Any, p2cread: int, p2cwrite: int, c2pread: int, c2pwrite: int,
                       errread: int, errwrite: int, restore_signals: Any, gid: Any, gids: Any,
                       uid: Any, umask: int, start_new_session: bool,
                       *rest: Any) -> None:
        assert not shell and executable is None and preexec_fn is None and not pass_fds
        assert gid is None and gids is None and uid is None and close_fds
        if umask < 0:
            umask = os.umask(0o022)
            os.umask(umask)
        server = _CtlServer.get()
        self._server = server
        streams = [p2cread if p2cread != -1 else 0, c2pwrite if c2pwrite != -1 else 1,
                   errwrite if errwrite != -1 else 2]
        try:
            self.pid = server.ask({"run": [os.fsdecode(a) for a in args],
                                   "env": dict(os.environ if env is None else env),
                                   "cwd": os.fsdecode(cwd if cwd is not None else os.getcwd()),
                                   "umask": umask, "session": bool(start_new_session),
                                   "ctty": self._controlling_terminal}, streams)["pid"]
            self._pidfd = os.pidfd_open(self.pid)
            self._child_created = True
        finally:
            self._close_pipe_fds(p2cread, p2cwrite, c2pread, c2pwrite, errread, errwrite)

    def _try_wait(self, wait_flags: int) -> tuple[int, int]:
        """waitpid's answer: (0, 0) while it runs (with WNOHANG), else (pid, status)."""
        if self._pidfd < 0:
            raise ChildProcessError("already reaped")
        timeout = 0 if wait_flags & os.WNOHANG else None
        if not select.select([self._pidfd], [], [], timeout)[0]:
            return 0, 0
        status = self._server.ask({"reap": self.pid})["status"]
        os.close(self._pidfd)
        self._pidfd = -1
        return self.pid, status

    def _internal_poll(self, _deadstate: int | None = None, **_: Any) -> int | None:
        if self.returncode is None and self._waitpid_lock.acquire(False):  # type: ignore[attr-defined]
            try:
                if self.returncode is None:
                    pid, status = self._try_wait(os.WNOHANG)
                    if pid == self.pid:
                        self._handle_exitstatus(status)  # type: ignore[attr-defined]
            except OSError:
                if _deadstate is not None:
                    self.returncode = _deadstate
            finally:
                self._waitpid_lock.release()  # type: ignore[attr-defined]
        return self.returncode


def popen(argv: list[str], *, controlling_terminal: bool = False,
          **kwargs: Any) -> subprocess.Popen[Any]:
    """Start ``argv`` as ``subprocess.Popen(argv, **kwargs)``; a fork if it is ``WIZCTL``.

    ``controlling_terminal=True`` (with ``start_new_session=True``) makes the
    child's stdin, a terminal, the controlling terminal of its session.
    """
    env = kwargs.get("env")
    forkable = (argv[0] == WIZCTL and not EXEC_ALWAYS and not kwargs.get("pass_fds")
                and kwargs.get("preexec_fn") is None and not kwargs.get("shell"))
    if forkable:
        server = _CtlServer.get()
        forkable = _startup_env(dict(os.environ if env is None else env)) == server.startup_env
    if forkable:
        return ForkedPopen(argv, controlling_terminal=controlling_terminal, **kwargs)
    if controlling_terminal:
        argv = [sys.executable, "-c", CONTROLLING_TTY, *argv]
    return subprocess.Popen(argv, **kwargs)


def run(argv: list[str], *, input: str | bytes | None = None, capture_output: bool = False,
        timeout: float | None = None, check: bool = False,
        **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """``subprocess.run`` through ``popen``."""
    if input is not None:
        kwargs["stdin"] = subprocess.PIPE
    if capture_output:
        kwargs["stdout"] = kwargs["stderr"] = subprocess.PIPE
    with popen(argv, **kwargs) as process:
        try:
            stdout, stderr = process.communicate(input, timeout=timeout)
        except BaseException:
            process.kill()
            process.wait()
            raise
        code = process.poll()
        assert code is not None
    if check and code:
        raise subprocess.CalledProcessError(code, process.args, stdout, stderr)
    return subprocess.CompletedProcess(process.args, code, stdout, stderr)
