"""``wizctl`` end to end: the real command (a subprocess, as a person runs it)
against a real wizd subprocess on a private socket and database.

The agents here mostly use the built-in ``offline`` provider: it answers at
once and deterministically, and fails or hangs on request (``/fail-auth``,
``/hang``); where a reply must be scripted, the OpenAI-compatible test server
stands in for the LLM. The terminal side (``chat``, streaming on a TTY) is in test_wizctl_chat.py.

No fixed sleeps: every wait is for a condition (a line printed, a process
gone), with a deadline generous enough never to be reached when things work.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.ctlrun import WIZCTL, popen, run
from tests.support.daemon import Conn, Wizd
from tests.support.openai_server import Reply, ThreadedOpenAIServer, openai_server_in_thread

DEADLINE = 20.0


# -- helpers shared with test_wizctl_chat.py ------------------------------------

def wizctl_env(w: Wizd) -> dict[str, str]:
    """The test's environment pointing wizctl at ``w``; nothing about the
    terminal or output buffering leaks in from whoever runs the suite (with
    PYTHONUNBUFFERED set, a missing flush would go unnoticed)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("NO_COLOR", "COLUMNS", "LINES", "TERM", "PYTHONUNBUFFERED")}
    env["WIZ_SOCKET"] = str(w.socket)
    env["TERM"] = "xterm"
    return env


def wizctl(w: Wizd, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``wizctl ARGS`` to completion against ``w``."""
    return run([WIZCTL, *args], env=wizctl_env(w), input=input, capture_output=True, text=True,
               timeout=DEADLINE)


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    """The stdout of a wizctl run that must have succeeded quietly."""
    assert proc.returncode == 0, f"{proc.args[1:]} exited {proc.returncode}:\n{proc.stderr}"
    assert proc.stderr == "", proc.stderr
    return proc.stdout


def agent_and_dm(w: Wizd, name: str = "ada", **agent: Any) -> tuple[dict[str, Any], str]:
    """An agent (on the default provider: offline) and a DM with it."""
    made = w.call("agent.create", name=name, role="Researcher", backstory="b", goal="g", **agent)
    dm = w.call("dm.create", participants=[made["id"]])
    return made, dm["id"]


def converse(conn: Conn, conversation_id: str, text: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Send ``text`` on ``conn`` (subscribed to the conversation already) and wait
    for the one reply; returns (sent, reply)."""
    sent = conn.call("message.send", conversation_id=conversation_id, content=text)["message"]
    while True:
        msg = conn.notification("message.created")["params"]["message"]
        if msg["reply_to"] == sent["id"]:
            return sent, msg


@pytest.fixture
def srv() -> Iterator[ThreadedOpenAIServer]:
    """The scripted OpenAI-compatible HTTP server, on a thread."""
    with openai_server_in_thread() as server:
        yield server


def streaming_agent(w: Wizd, srv: ThreadedOpenAIServer) -> tuple[dict[str, Any], str]:
    """ada on the scripted HTTP server, and a DM with her."""
    provider = w.call("provider.create", name="scripted", type="openai", base_url=srv.base_url,
                      api_key="sk-test", default_model="gpt-test")
    return agent_and_dm(w, provider_id=provider["id"])


def subscribed(w: Wizd, conversation_id: str) -> Conn:
    conn = w.connect()
    conn.call("events.subscribe", conversation_id=conversation_id)
    return conn


def stored(w: Wizd, conversation_id: str) -> list[dict[str, Any]]:
    """Every stored message of a conversation, oldest first."""
    msgs: list[dict[str, Any]] = []
    while True:
        page = w.call("message.list", conversation_id=conversation_id,
                      after_seq=msgs[-1]["seq"] if msgs else 0)["messages"]
        if not page:
            return msgs
        msgs += page


class Running:
    """A wizctl running in the background (``tail -f``, ``send --wait``); its
    stdout is read as it comes."""

    def __init__(self, w: Wizd, *args: str) -> None:
        self.proc = popen([WIZCTL, *args], env=wizctl_env(w), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE)
        self.out = b""
        self.err = b""

    def lines(self) -> list[str]:
        """The complete lines printed so far."""
        return self.out.decode().split("\n")[:-1]

    def read_until(self, done: Callable[[], bool], what: str) -> None:
        """Read stdout until ``done()``; fails after DEADLINE seconds or at its end."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + DEADLINE
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"waited {DEADLINE:g} s for {what}; stdout:\n"
                                     f"{self.out.decode(errors='replace')}")
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise AssertionError(f"wizctl ended while waiting for {what}: "
                                         f"{self.finish()}\n{self.err.decode(errors='replace')}")
                self.out += chunk

    def interrupt(self) -> int:
        """Ctrl-C (SIGINT); returns the exit code once everything is read."""
        self.proc.send_signal(signal.SIGINT)
        return self.finish()

    def finish(self) -> int:
        rest, err = self.proc.communicate(timeout=DEADLINE)
        self.out += rest
        self.err += err
        return self.proc.returncode

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=DEADLINE)  # reaps it and closes the pipes

    def __enter__(self) -> Running:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- the tour of the README ---------------------------------------------------

def test_the_tour(wizd: Wizd) -> None:
    me = wizd.call("user.me")
    out = ok(wizctl(wizd, "agent", "create", "ada", "--role", "Researcher",
                    "--backstory", "Grew up with engines", "--goal", "Explain computing"))
    assert re.fullmatch(r"created agent ada \([0-9a-f]{8}\), active\n", out)
    out = ok(wizctl(wizd, "dm", "new", "ada"))
    assert re.fullmatch(rf"created DM @ada \([0-9a-f]{{8}}\) with {me['name']}, ada\n", out)
    [dm] = wizd.call("dm.list")["conversations"]

    with subscribed(wizd, dm["id"]) as conn:
        out = ok(wizctl(wizd, "send", "ada", "hi"))
        assert re.fullmatch(r"sent [0-9a-f]{8} to @ada; 1 agent will reply\n", out)
        while conn.notification("message.created")["params"]["message"]["reply_to"] is None:
            pass  # the sent message; then comes the reply

    reply = '[offline demo] I\'m ada (Researcher). You said: "hi"'
    lines = ok(wizctl(wizd, "log", "ada")).splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [f"{me['name']}: hi", f"ada: {reply}"]
    assert all(re.match(r"\d\d:\d\d:\d\d ", line) for line in lines)

    # --json is the daemon's own answer, for scripts
    log = json.loads(ok(wizctl(wizd, "log", "ada", "--json")))
    assert log == wizd.call("message.list", conversation_id=dm["id"])
    assert [m["content"] for m in log["messages"]] == ["hi", reply]
    last = json.loads(ok(wizctl(wizd, "log", "ada", "-n", "1", "--json")))
    assert [m["content"] for m in last["messages"]] == [reply]
    agents = json.loads(ok(wizctl(wizd, "agent", "list", "--json")))["agents"]
    assert [(a["name"], a["role"], a["goal"]) for a in agents] == [
        ("ada", "Researcher", "Explain computing")]
    dms = json.loads(ok(wizctl(wizd, "dm", "list", "--json")))["conversations"]
    assert [d["id"] for d in dms] == [dm["id"]]
    sent = json.loads(ok(wizctl(wizd, "send", "ada", "again", "--json")))
    assert sent["message"]["content"] == "again" and len(sent["jobs"]) == 1

    status = json.loads(ok(wizctl(wizd, "status", "--json")))
    assert status["pid"] == wizd.proc.pid  # type: ignore[union-attr]
    assert status["socket"] == str(wizd.socket) and status["db"] == str(wizd.db)
    fields = dict(line.split(":", 1) for line in ok(wizctl(wizd, "status")).splitlines())
    assert fields["wizd"].strip().startswith(f"{status['version']} (pid {status['pid']}, up ")
    assert fields["socket"].strip() == str(wizd.socket)
    assert fields["database"].strip() == str(wizd.db)
    assert "waiting" in fields["queue"]


def test_the_console_script_run_as_a_person_runs_it(wizd: Wizd) -> None:
    """The other tests fork wizctl from a pre-imported fork server (tests/support/ctlrun.py);
    here the installed console script is exec'd, and says what a forked one says."""
    agent_and_dm(wizd)
    for args in (["agent", "list", "--json"], ["send", "ada", "hi", "--wait"], ["nosuch"]):
        execed = subprocess.run([WIZCTL, *args], env=wizctl_env(wizd), capture_output=True,
                                text=True, timeout=DEADLINE)
        forked = wizctl(wizd, *args)
        assert (execed.returncode, execed.stdout, execed.stderr) == (
            forked.returncode, forked.stdout, forked.stderr)
    assert execed.returncode == 2 and "No such command" in execed.stderr


# -- tail -f across restarts ----------------------------------------------------

def created(lines: list[str]) -> list[dict[str, Any]]:
    """The messages of the ``message.created`` lines of ``tail --json``."""
    notes = [json.loads(line) for line in lines]
    return [n["params"]["message"] for n in notes if n["method"] == "message.created"]


def test_tail_follows_across_restarts_without_gap_or_duplicate(wizd: Wizd) -> None:
    _, dm = agent_and_dm(wizd)
    with subscribed(wizd, dm) as conn:
        for text in ("one", "two"):
            converse(conn, dm, text)

    with Running(wizd, "tail", "ada", "-n", "100", "-f", "--json") as tail:
        def shown(n: int) -> None:
            tail.read_until(lambda: len(created(tail.lines())) >= n, f"{n} messages")

        shown(4)  # the history
        with subscribed(wizd, dm) as conn:
            for text in ("three", "four"):
                converse(conn, dm, text)
        shown(8)  # live

        assert wizd.stop() == 0  # SIGTERM: a clean stop
        wizd.start()
        # Sent at once: the tail may still be backing off; it must replay these.
        with subscribed(wizd, dm) as conn:
            for text in ("five", "six"):
                converse(conn, dm, text)
        shown(12)

        wizd.kill()  # kill -9: the socket file stays behind
        wizd.start()
        with subscribed(wizd, dm) as conn:
            for text in ("seven", "eight"):
                converse(conn, dm, text)
        shown(16)

        assert tail.interrupt() == 0
    err = tail.err.decode()
    assert "Traceback" not in err
    assert err.count("wizctl: reconnected\n") == 2, err

    messages = stored(wizd, dm)
    assert len(messages) == 16
    got = created(tail.lines())
    seqs = [m["seq"] for m in got]
    assert seqs == [m["seq"] for m in messages]  # nothing missed, nothing twice
    assert all(a < b for a, b in zip(seqs, seqs[1:], strict=False))
    assert [m["id"] for m in got] == [m["id"] for m in messages]
    assert [m["content"] for m in got][::2] == ["one", "two", "three", "four", "five", "six",
                                                "seven", "eight"]


# -- send --wait ------------------------------------------------------------------

def test_send_wait_prints_the_reply(wizd: Wizd) -> None:
    agent_and_dm(wizd)
    out = ok(wizctl(wizd, "send", "ada", "hello there", "--wait"))
    assert out == '[offline demo] I\'m ada (Researcher). You said: "hello there"\n'

    doc = json.loads(ok(wizctl(wizd, "send", "ada", "and now?", "--wait", "--json")))
    [reply] = doc["replies"]
    assert reply["reply_to"] == doc["message"]["id"] and reply["kind"] == "text"
    assert reply["content"].endswith('You said: "and now?"')


def test_send_wait_waits_for_every_agent_of_the_dm(wizd: Wizd) -> None:
    ada = wizd.call("agent.create", name="ada", role="Researcher", backstory="b", goal="g")
    bob = wizd.call("agent.create", name="bob", role="Critic", backstory="b", goal="g")
    dm = wizd.call("dm.create", name="pair", participants=[ada["id"], bob["id"]])
    out = ok(wizctl(wizd, "send", "pair", "both of you", "--wait"))
    # two replies: each on its own line, named (they may come in either order)
    assert sorted(line.split(" ", 1)[1] for line in out.splitlines()) == [
        'ada: [offline demo] I\'m ada (Researcher). You said: "both of you"',
        'bob: [offline demo] I\'m bob (Critic). You said: "both of you"']
    assert len(stored(wizd, dm["id"])) == 3


def test_send_wait_when_no_agent_is_triggered_does_not_wait(wizd: Wizd) -> None:
    wizd.call("agent.create", name="ada", role="Researcher", backstory="b", goal="g")
    project = wizd.call("project.create", name="apollo")
    wizd.call("channel.create", project_id=project["id"], name="general")
    proc = wizctl(wizd, "send", "#general", "nobody is mentioned", "--wait")
    assert (proc.returncode, proc.stdout) == (0, "")
    assert proc.stderr.startswith("wizctl: no agent was triggered, so no reply will come")
    proc = wizctl(wizd, "send", "apollo/general", "@ada are you there?", "--wait")
    assert ok(proc).endswith('You said: "@ada are you there?"\n')


def test_send_wait_carries_on_across_a_daemon_restart(
        wizd: Wizd, srv: ThreadedOpenAIServer) -> None:
    """The reply being generated when wizd stops is generated again after it
    starts; send --wait reconnects and prints it."""
    streaming_agent(wizd, srv)
    srv.enqueue(Reply(hang=True))  # then the default: an echo
    with Running(wizd, "send", "ada", "hello", "--wait") as send:
        srv.wait_for_requests(1, timeout=DEADLINE)
        assert wizd.stop() == 0
        wizd.start()
        assert send.finish() == 0
    assert send.out == b"echo: hello\n"
    assert send.err == (b"wizctl: lost the connection to wizd; reconnecting\n"
                        b"wizctl: reconnected\n")
    assert len(srv.requests) == 2


def test_send_wait_with_an_error_reply_exits_6(wizd: Wizd) -> None:
    _, dm = agent_and_dm(wizd)
    proc = wizctl(wizd, "send", "ada", "please /fail-auth", "--wait")
    assert (proc.returncode, proc.stdout) == (6, "")  # 6: a provider error
    [error] = [m for m in stored(wizd, dm) if m["kind"] == "error"]
    assert proc.stderr == f"wizctl: ada: {error['content']}\n"
    assert "could not reply" in error["content"]


def test_send_wait_timeout_exits_8(wizd: Wizd) -> None:
    _, dm = agent_and_dm(wizd)
    started = time.monotonic()
    proc = wizctl(wizd, "send", "ada", "take your time /hang", "--wait", "--timeout", "0.5")
    assert time.monotonic() - started >= 0.5
    assert (proc.returncode, proc.stdout) == (8, "")  # 8: timed out
    assert proc.stderr.startswith("wizctl: error: no reply within 0.5 s")
    assert proc.stderr.count("\n") == 1
    assert [m["content"] for m in stored(wizd, dm)] == ["take your time /hang"]


# -- no daemon ----------------------------------------------------------------------

@pytest.mark.parametrize("how", ["never started", "killed"])
def test_status_without_a_daemon_is_one_line_and_exit_5(wizd_factory: Any, how: str) -> None:
    w: Wizd = wizd_factory()
    if how == "killed":  # kill -9 leaves a socket file nobody listens on
        w.start().kill()
        assert w.socket.exists()
    proc = wizctl(w, "status")
    assert (proc.returncode, proc.stdout) == (5, "")
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    reason = "nobody listens on" if how == "killed" else "no socket at"
    assert proc.stderr.startswith(f"wizctl: error: wizd is not running ({reason} {w.socket})")
    assert "start it with `wizd`" in proc.stderr
