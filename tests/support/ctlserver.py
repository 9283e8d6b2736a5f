"""A process that has imported wizctl once and forks a fresh ``wizctl`` for each run.

Run by ``tests.support.ctlrun`` (one per test worker, as a script: it imports
nothing of the tests). A ``wizctl`` run costs most of its time in Python's
start-up and in its imports (typer builds pydantic adapters on first use); a
fork of this process skips both. What it forks is still a real, separate
process running the installed ``wizctl`` console script (the file itself,
run as ``__main__``), with the test's arguments, environment, working folder,
umask and standard streams (the caller's pipe ends or pty, passed over the
socket), in a session of its own (with its terminal as the controlling one)
when asked. Its standard streams are built again from its own environment and
descriptors as Python builds them at start-up (line-buffered on a terminal,
``PYTHONUNBUFFERED``, ``PYTHONIOENCODING``), so a missing flush shows as it
would in a fresh process.

Requests and answers are datagrams on a SOCK_SEQPACKET socket (its number is
the one argument), JSON, requests carrying three descriptors (stdin, stdout,
stderr of the run):

    {"run": [argv...], "env": {...}, "cwd": PATH, "umask": N,
     "session": BOOL, "ctty": BOOL}      + 3 fds  -> {"pid": N}
    {"reap": N}                                   -> {"status": S}
"""

from __future__ import annotations

import atexit
import faulthandler
import fcntl
import gc
import io
import json
import os
import pkgutil  # noqa: F401  (runpy.run_path imports it)
import runpy
import signal
import socket
import sys
import termios
import threading
import traceback

# What the commands import on their way (typer and its pydantic adapters,
# prompt_toolkit for chat on a terminal, rich for widths), so no child pays it.
import prompt_toolkit  # noqa: F401
import rich.cells  # noqa: F401
import typer._adapters  # noqa: F401
import typer._click.decorators  # noqa: F401

import wizctl.chat_tty  # noqa: F401
import wizctl.cli  # noqa: F401
import wizctl.main  # noqa: F401
import wizctl.service  # noqa: F401

# pydantic looks for its plugins (reading every installed package's metadata)
# the first time it builds a validator outside typer's adapters, which every
# command does: looked for once here, the answer is kept by every fork (a run
# whose PYDANTIC_ variables differ is exec'd: tests.support.ctlrun).
try:
    from pydantic.plugin._loader import get_plugins
except ImportError:  # another pydantic: the children look for themselves
    pass
else:
    get_plugins()

# The encoding and error handler Python gave this server's stdin and stdout
# (started without PYTHONIOENCODING; the locale is the children's: a run whose
# locale variables differ is exec'd).
_DEFAULTS = [(stream.encoding, stream.errors) for stream in (sys.__stdin__, sys.__stdout__)]


def _stdio(fd: int, env: dict[str, str], write: bool) -> io.TextIOWrapper:
    """One standard stream as Python's start-up makes it (Python/pylifecycle.c's create_stdio)."""
    buffered = not env.get("PYTHONUNBUFFERED")
    encoding, _, errors = env.get("PYTHONIOENCODING", "").partition(":")
    if fd == 2:
        errors = "backslashreplace"
    raw = io.FileIO(fd, "w" if write else "r", closefd=False)
    binary: io.RawIOBase | io.BufferedIOBase = raw
    if buffered or not write:
        binary = io.BufferedWriter(raw) if write else io.BufferedReader(raw)
    line_buffering = buffered and (raw.isatty() or fd == 2)
    default = _DEFAULTS[min(fd, 1)]  # what Python chose for this server, from the same locale
    stream = io.TextIOWrapper(binary, encoding=encoding or default[0],  # type: ignore[arg-type]
                              errors=errors or default[1], newline="\n",
                              line_buffering=line_buffering, write_through=not buffered)
    return stream


def _child(request: dict[str, object], fds: list[int]) -> None:
    """Turn this forked process into the asked-for wizctl's surroundings."""
    if request["session"]:
        os.setsid()
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # as Popen's close_fds: our socket too
    if request["ctty"]:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    env = request["env"]
    assert isinstance(env, dict)
    os.environ.clear()
    os.environ.update(env)
    sys.dont_write_bytecode = bool(env.get("PYTHONDONTWRITEBYTECODE"))
    os.chdir(str(request["cwd"]))
    umask = request["umask"]
    assert isinstance(umask, int)
    os.umask(umask)
    sys.stdin = sys.__stdin__ = _stdio(0, env, write=False)
    sys.stdout = sys.__stdout__ = _stdio(1, env, write=True)
    sys.stderr = sys.__stderr__ = _stdio(2, env, write=True)
    argv = request["run"]
    assert isinstance(argv, list)
    sys.argv = [str(a) for a in argv]
    # Run as a script, this server has its folder first on sys.path; a wizctl
    # has its console script's folder there.
    sys.path[0] = os.path.dirname(sys.argv[0])


def serve(sock: socket.socket) -> tuple[dict[str, object], list[int]] | None:
    """Answer requests until the socket closes; returns in each forked child its request."""
    while True:
        data, fds, _, _ = socket.recv_fds(sock, 1 << 20, 3)
        if not data:
            return None
        request = json.loads(data)
        if "reap" in request:
            _, status = os.waitpid(request["reap"], 0)
            answer = {"status": status}
        else:
            pid = os.fork()
            if pid == 0:
                sock.close()
                return request, fds
            for fd in fds:
                os.close(fd)
            answer = {"pid": pid}
        sock.send(json.dumps(answer).encode())


def run_wizctl() -> None:
    """In a forked child: run the console script as ``__main__`` and exit as Python would.

    What Python does at exit is done (non-daemon threads joined, atexit
    functions run, the standard streams flushed: a failed flush is exit 120),
    except tearing down the modules. An uncaught KeyboardInterrupt ends the
    process by SIGINT, as Python does.
    """
    code: int
    try:
        runpy.run_path(sys.argv[0], run_name="__main__")
        code = 0
    except SystemExit as exc:
        if exc.code is None:
            code = 0
        elif isinstance(exc.code, int):
            code = exc.code
        else:
            print(exc.code, file=sys.stderr)
            code = 1
    except KeyboardInterrupt:
        traceback.print_exc()
        sys.stderr.flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
        code = 130
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = 1
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            code = 120
    os._exit(code)


if __name__ == "__main__":
    # What is imported stays put: the children's garbage collections leave it
    # alone, so its pages are shared with them instead of copied into each.
    gc.freeze()
    # A forked wizctl that a test gives up on is sent SIGABRT: its Python
    # stacks then go to its own stderr (descriptor 2, the test's pipe or pty).
    faulthandler.enable()
    channel = socket.socket(fileno=int(sys.argv[1]))
    child = serve(channel)
    if child is None:
        sys.exit(0)
    _child(*child)
    run_wizctl()
