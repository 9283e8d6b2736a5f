"""The floor for ``wizctl status`` start-up: one ``daemon.status`` call with the
standard library only (socket + json), printed as JSON.

    python bench/stdlib_status.py [SOCKET]     # default: $WIZ_SOCKET

What a CLI cannot do with less: start Python, connect, send one line, read
one line, print. bench/wizctl_startup.py times it beside ``wizctl status``.
"""

import json
import os
import socket
import sys


def main() -> int:
    path = sys.argv[1] if len(sys.argv) > 1 else os.environ["WIZ_SOCKET"]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(path)
        sock.sendall(b'{"jsonrpc": "2.0", "id": 1, "method": "daemon.status"}\n')
        with sock.makefile("rb") as reader:
            answer = json.loads(reader.readline())
    if "error" in answer:
        sys.stderr.write(f"error: {answer['error'].get('message')}\n")
        return 1
    sys.stdout.write(json.dumps(answer["result"], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
