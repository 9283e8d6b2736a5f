"""Secrets and access: the API key never leaves the daemon, other users are kept out."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.rpc.shared import private_wizd
from tests.support.daemon import Conn, RpcFailure, Wizd
from tests.support.openai_server import Reply, openai_server_in_thread

KEY = "sk-wizTEST-4f9c2a7e1b3d5f60-doNotLeak"
CORE = "4f9c2a7e1b3d5f60"  # what would survive a truncated echo such as "sk-wiz***Leak"


class Checked:
    """A connection whose every answer, result or error, is checked for the key."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self.seen = 0

    def call(self, method: str, **params: Any) -> Any:
        resp = self.conn.request(method, **params)
        text = json.dumps(resp)
        assert KEY not in text and CORE not in text, f"{method} leaked the key: {text}"
        self.seen += 1
        if "error" in resp:
            raise RpcFailure(resp["error"])
        return resp["result"]

    def notification(self, method: str) -> dict[str, Any]:
        """The next notification of ``method``; every one met on the way is checked too."""
        while True:
            note = self.conn.notification()
            text = json.dumps(note)
            assert KEY not in text and CORE not in text, f"a notification leaked the key: {text}"
            self.seen += 1
            if note["method"] == method:
                return note



def test_api_key_is_in_no_result_and_no_log(tmp_path: Path) -> None:
    with openai_server_in_thread() as srv:
        # The first call is refused and the error echoes the key, as OpenAI's does.
        srv.enqueue(Reply(status=401, error=f"Incorrect API key provided: {KEY}"),
                    Reply(text="all good"))
        w = private_wizd(tmp_path / "w")
        try:
            w.start()
            with w.connect() as raw:
                c = Checked(raw)
                p = c.call("provider.create", name="secret", type="openai", base_url=srv.base_url,
                           default_model="gpt-test", api_key=KEY)
                assert p["has_api_key"] is True
                for method, params in (("provider.list", {}), ("provider.get", {"id": "secret"}),
                                       ("provider.set_default", {"id": "secret"}),
                                       ("provider.update", {"id": "secret", "name": "secret2"}),
                                       ("provider.update", {"id": "secret2", "api_key": KEY}),
                                       ("daemon.status", {}), ("rpc.discover", {})):
                    c.call(method, **params)
                for bad in ({"name": "secret2", "type": "openai", "default_model": "m",
                             "api_key": KEY},  # duplicate name
                            {"name": "x", "type": "bogus", "default_model": "m", "api_key": KEY},
                            {"name": "x", "type": "openai", "default_model": "m", "api_key": KEY,
                             "api_key_env": "ALSO"}):
                    with pytest.raises(RpcFailure):
                        c.call("provider.create", **bad)
                with pytest.raises(RpcFailure):
                    c.call("provider.create", name="y", type="openai", default_model="m",
                           api_key=KEY, unknown_param=1)
                agent = c.call("agent.create", name="spy", role="r", backstory="", goal="")
                assert agent["provider_id"] == p["id"]
                dm = c.call("dm.create", participants=["spy"])
                # Every event of the DM (job updates, messages) is checked too.
                c.call("events.subscribe", conversation_id=dm["id"])
                jobs = [c.call("message.send", conversation_id=dm["id"], content=f"q{i}")["jobs"]
                        for i in range(2)]
                assert all(len(j) == 1 for j in jobs)
                # The key did reach the provider, where it belongs.
                first = srv.wait_for_requests(1)[0]
                assert first.headers["authorization"] == f"Bearer {KEY}"
                created = [c.notification("message.created") for _ in range(4)]  # q0, q1, replies
                found = c.call("message.list", conversation_id=dm["id"])["messages"]
                assert [m["id"] for m in found] == [n["params"]["message"]["id"] for n in created]
                assert {m["kind"] for m in found} == {"text", "error"}
                if "job.get" in {m["name"] for m in c.call("rpc.discover")["methods"]}:
                    for job_ids in jobs:
                        c.call("job.get", id=job_ids[0])
                    c.call("job.list")
                c.call("agent.get", name="spy")
                c.call("user.list")
                for note in raw.notifications:  # the ones no call above waited for
                    text = json.dumps(note)
                    assert KEY not in text and CORE not in text, text
            assert c.seen >= 20
        finally:
            w.close()
        log = w.log_text()
        assert log.count("\n") > 5  # the debug log was written ...
        assert KEY not in log and CORE not in log  # ... without the key


@pytest.fixture
def reachable_wizd() -> Iterator[Wizd]:
    """A wizd under a folder other users may traverse (tmp_path's is private to root)."""
    # The default temporary folder may itself be private (it is 0700 in some sandboxes).
    roots = [Path(d) for d in (tempfile.gettempdir(), "/var/tmp", "/dev/shm")
             if all(os.stat(p).st_mode & stat.S_IXOTH for p in (Path(d), *Path(d).parents))]
    if not roots:
        pytest.skip("no temporary folder that another uid can traverse")
    base = Path(tempfile.mkdtemp(prefix="wiz-uid-", dir=roots[0]))
    base.chmod(0o711)
    w = private_wizd(base)
    try:
        yield w.start()
    finally:
        w.close()
        shutil.rmtree(base)


def as_nobody(socket_path: Path) -> str:
    """What a process of uid 65534 gets when it asks ``socket_path`` for user.me.

    A forked child drops to uid/gid 65534 (this interpreter lives under /root,
    which another user cannot execute, so a fresh process is not an option).
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        outcome = "child failed"
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            outcome = _ask(socket_path)
        except BaseException as exc:  # report, whatever it is
            outcome = f"child failed: {exc!r}"
        finally:
            os.write(write_end, outcome.encode())
            os._exit(0)
    os.close(write_end)
    try:
        with os.fdopen(read_end, "rb") as pipe:
            outcome = pipe.read().decode()
    finally:
        os.waitpid(pid, 0)
    return outcome


def _ask(socket_path: Path) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        try:
            s.connect(str(socket_path))
        except PermissionError:
            return "permission denied"
        try:  # the daemon may hang up before the request is even written
            s.sendall(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "user.me"}).encode()
                      + b"\n")
            data = s.recv(65536)
        except (BrokenPipeError, ConnectionResetError):
            data = b""
        return "answered " + data.decode() if data else "closed"


@pytest.mark.skipif(os.geteuid() != 0, reason="connecting as another uid needs root (setuid)")
def test_another_uid_is_refused(reachable_wizd: Wizd) -> None:
    sock = reachable_wizd.socket
    assert stat.S_IMODE(sock.stat().st_mode) == 0o600
    assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700
    # The private folder keeps another user from even reaching the socket ...
    assert as_nobody(sock) == "permission denied"
    # ... and were the permissions opened, the daemon itself refuses the peer (SO_PEERCRED).
    sock.parent.chmod(0o711)
    sock.chmod(0o666)
    try:
        assert as_nobody(sock) == "closed"
    finally:
        sock.chmod(0o600)
        sock.parent.chmod(0o700)
    assert "refused connection from pid" in reachable_wizd.log_text()
    assert "uid 65534" in reachable_wizd.log_text()
    assert reachable_wizd.call("user.me")["type"] == "human"  # the owner still gets in
