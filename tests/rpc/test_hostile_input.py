"""Input that once could take the daemon down, and the bound on a client's requests."""

from __future__ import annotations

import json

from tests.support.daemon import Wizd


def test_a_lone_surrogate_echoed_in_an_error_does_not_crash_wizd(wizd: Wizd) -> None:
    # Valid JSON, but "\ud800" cannot be encoded as UTF-8; the error repeats it.
    with wizd.connect() as c:
        c.send_raw(b'{"jsonrpc":"2.0","id":1,"method":"no.such\\ud800"}\n')
        resp = c.response(1)
        assert resp["error"]["code"] == -32601
        assert resp["error"]["data"] == "no.such\ud800"
        c.send_raw(b'{"jsonrpc":"2.0","id":2,"method":"agent.get","params":{"name":"\\udfff"}}\n')
        error = c.response(2)["error"]
        assert (error["code"], error["data"]["field"]) == (-32602, "name")
        assert c.call("daemon.status")["pid"] == wizd.proc.pid  # type: ignore[union-attr]


def test_a_client_that_never_reads_its_answers_is_bounded_not_fatal(wizd: Wizd) -> None:
    """Thousands of requests without reading: the daemon stops reading from that
    client (at most 64 in flight) instead of piling up tasks, and serves others."""
    line = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "rpc.discover"}).encode() + b"\n"
    with wizd.connect() as greedy:
        greedy.sock.setblocking(False)
        sent = 0
        try:
            for _ in range(20_000):
                sent += greedy.sock.send(line * 16)
        except BlockingIOError:
            pass  # the daemon stopped reading: its socket buffer and ours are full
        assert sent < 20_000 * 16 * len(line)
        status = wizd.call("daemon.status")  # another client is served meanwhile
        assert status["pid"] == wizd.proc.pid  # type: ignore[union-attr]
