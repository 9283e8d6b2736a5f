"""A process that has imported the test MCP server once and forks a fresh one per start.

Run by ``tests.mcp.helpers`` (one per test worker, as a script), with a
listening Unix socket (its fd number the one argument) and a pipe from the worker as stdin (its EOF
ends this process). Importing ``mcp`` costs a second or more of CPU; a fork
of this process skips it. What it forks is still a real, separate server
process running ``mcp_server.main`` on the pipes wizd opened: wizd starts
``mcp_launch.py`` (see there), which passes its stdin, stdout and stderr,
arguments, environment and working folder over the socket.

For each connection this process forks a watcher, which forks the server:

- the server: the launcher's fds as 0, 1 and 2, its environment (nothing
  of this process's), folder and arguments; ``mcp_server.main()``, then it
  exits with its status (``os._exit``: no module teardown);
- the watcher: reaps the server and sends its wait status to the launcher;
  passes on the signals the launcher forwards; if the launcher dies (the
  connection closes), kills the server with SIGKILL and reaps it.
"""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import socket
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

# Everything the server imports on its way to serving (stdio and HTTP), and
# one server built, so that no fork pays for it.
import anyio._backends._asyncio  # noqa: E402, F401
import mcp.server.stdio  # noqa: E402, F401
import mcp_server  # noqa: E402
import uvicorn  # noqa: E402, F401

mcp_server.build(None, False)

def _read_request(conn: socket.socket) -> tuple[dict[str, object], list[int]]:
    data, fds, _, _ = socket.recv_fds(conn, 1 << 16, 3)
    if len(fds) != 3 or len(data) < 4:
        os._exit(1)
    size = struct.unpack("!I", data[:4])[0]
    data = data[4:]
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            os._exit(1)
        data += chunk
    request: dict[str, object] = json.loads(data)
    return request, fds


def _run_server(request: dict[str, object], fds: list[int], conn: socket.socket) -> None:
    """In the server process: become the asked-for server, run it, exit with its status."""
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # the socket, the connection, the fds passed
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    env = request["env"]
    assert isinstance(env, dict)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(str(request["cwd"]))
    argv = request["argv"]
    assert isinstance(argv, list)
    sys.argv = [mcp_server.__file__, *argv]
    try:
        mcp_server.main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
    except BaseException:
        sys.excepthook(*sys.exc_info())
        code = 1
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _watch(conn: socket.socket) -> None:
    """In the watcher: start the server, stand by it until it exits, tell the launcher."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # so that the server can be waited for
    request, fds = _read_request(conn)
    pid = os.fork()
    if pid == 0:
        _run_server(request, fds, conn)
    for fd in fds:
        os.close(fd)  # the server's pipes reach EOF when the server ends
    pidfd = os.pidfd_open(pid)
    while True:
        ready, _, _ = select.select([conn.fileno(), pidfd], [], [])
        if pidfd in ready:
            _, status = os.waitpid(pid, 0)
            conn.sendall(struct.pack("!i", status))
            os._exit(0)
        sig = conn.recv(1)
        if not sig:  # the launcher is gone: so is its server
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os._exit(0)
        os.kill(pid, sig[0])


def serve() -> None:
    listener = socket.socket(fileno=int(sys.argv[1]))
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # watchers are reaped by the kernel
    sys.stdout.flush()
    sys.stderr.flush()
    while True:
        ready, _, _ = select.select([listener.fileno(), 0], [], [])
        if 0 in ready and not os.read(0, 1 << 12):
            return
        if listener.fileno() in ready:
            conn, _ = listener.accept()
            if os.fork() == 0:
                listener.close()
                null = os.open(os.devnull, os.O_RDONLY)
                os.dup2(null, 0)  # not closed: the fds received must not land on 0, 1 or 2
                os.close(null)
                _watch(conn)
            conn.close()


if __name__ == "__main__":
    serve()
