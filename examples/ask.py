#!/usr/bin/env python3
"""Ask a wizd agent one question from Python, with the standard library only.

    python3 examples/ask.py AGENT "question"

Creates AGENT (on the default provider) if there is none, opens your DM with
it (or reuses the open one), subscribes to that DM, sends the question, and
prints the reply when it is stored. Exits 1 if the reply is an error message.
The socket is $WIZ_SOCKET, else $XDG_RUNTIME_DIR/wiz/wizd.sock, else
/tmp/wiz-$UID/wizd.sock. The protocol: docs/protocol.md.
"""

import itertools
import json
import os
import socket
import sys


def socket_path():
    if os.environ.get("WIZ_SOCKET"):
        return os.environ["WIZ_SOCKET"]
    if os.environ.get("XDG_RUNTIME_DIR"):
        return os.path.join(os.environ["XDG_RUNTIME_DIR"], "wiz", "wizd.sock")
    return f"/tmp/wiz-{os.getuid()}/wizd.sock"


class RpcError(Exception):
    """An error answer: ``code`` (-32001 not found ...) and the daemon's message."""

    def __init__(self, error):
        super().__init__(error["message"])
        self.code = error["code"]


class Wizd:
    """One connection: newline-delimited JSON-RPC 2.0. Notifications that arrive
    while waiting for a response are kept for ``notification()``."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.lines = self.sock.makefile("rb")
        self.ids = itertools.count(1)
        self.notes = []

    def call(self, method, **params):
        """The result; raises RpcError for an error answer."""
        rid = next(self.ids)
        request = {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}
        self.sock.sendall(json.dumps(request).encode() + b"\n")
        while True:
            msg = self.read()
            if "id" not in msg:
                self.notes.append(msg)  # a notification: keep it for later
            elif msg["id"] == rid:
                if "error" in msg:
                    raise RpcError(msg["error"])
                return msg["result"]

    def notification(self):
        return self.notes.pop(0) if self.notes else self.read()

    def read(self):
        line = self.lines.readline()
        if not line:
            raise RuntimeError("wizd closed the connection")
        return json.loads(line)


def ask(wiz, agent_name, question):
    """The reply message to ``question`` from ``agent_name``."""
    try:
        agent = wiz.call("agent.get", name=agent_name)
    except RpcError as exc:
        if exc.code != -32001:  # anything but "not found"
            raise
        agent = wiz.call("agent.create", name=agent_name, role="helper",
                         backstory="Made by examples/ask.py.", goal="Answer briefly.")
    dm = wiz.call("dm.create", participants=[agent["id"]], reuse=True)
    # Subscribe before sending, so that the reply cannot come in between.
    wiz.call("events.subscribe", conversation_id=dm["id"])
    sent = wiz.call("message.send", conversation_id=dm["id"], content=question)["message"]
    while True:
        note = wiz.notification()
        # message.delta notifications carry the reply piece by piece as it is
        # generated; this example waits for the stored reply.
        if note["method"] == "message.created":
            msg = note["params"]["message"]
            if msg["reply_to"] == sent["id"]:
                return msg


def main():
    if len(sys.argv) != 3:
        sys.exit(f"usage: {sys.argv[0]} AGENT QUESTION")
    try:
        wiz = Wizd(socket_path())
        reply = ask(wiz, sys.argv[1], sys.argv[2])
    except (OSError, RuntimeError, RpcError) as exc:
        sys.exit(f"ask.py: {exc}")
    if reply["kind"] == "error":
        sys.exit(f"ask.py: {reply['content']}")
    print(reply["content"])


if __name__ == "__main__":
    main()
