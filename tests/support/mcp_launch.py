"""The command wizd runs as the test MCP server when a fork server serves starts.

``python -S mcp_launch.py SOCKET [server args...]``: stdlib only, so it runs
in a few milliseconds. It hands its stdin, stdout and stderr, its arguments,
environment and working folder to the fork server listening on ``SOCKET``
(``mcp_forkserver.py``), whose fork runs the real test server
(``mcp_server.py``) on those very pipes, then closes its own copies: the
server's stdout reaches EOF when the server ends, as it would for a server
wizd had started itself.

It stays until the server ends and exits as the server did (its status, or
the signal that ended it). SIGTERM, SIGINT and SIGHUP are passed on to the
server (mcp's shutdown ends a server's process group with SIGTERM); if this
process dies any other way (SIGKILL), the fork server's side sees the
connection close and kills the server.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import sys


def main() -> None:
    path, *args = sys.argv[1:]
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        conn.connect(path)
    except OSError as exc:
        print(f"mcp_launch: cannot reach the MCP fork server at {path}: {exc}", file=sys.stderr)
        sys.exit(127)
    request = json.dumps({"argv": args, "env": dict(os.environ),
                          "cwd": os.getcwd()}).encode()
    # The descriptors travel with the first byte; the rest may follow in pieces.
    socket.send_fds(conn, [struct.pack("!I", len(request)) + request], [0, 1, 2])
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)

    def forward(signum: int, frame: object) -> None:
        conn.sendall(struct.pack("!B", signum))

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    answer = b""
    while len(answer) < 4:
        chunk = conn.recv(4 - len(answer))
        if not chunk:
            os._exit(1)  # the fork server's side died: never happens in a sound test run
        answer += chunk
    code = os.waitstatus_to_exitcode(struct.unpack("!i", answer)[0])
    if code < 0:
        if code != -signal.SIGKILL:  # the one signal whose action cannot be set
            signal.signal(-code, signal.SIG_DFL)
        os.kill(os.getpid(), -code)
    os._exit(code)


if __name__ == "__main__":
    main()
