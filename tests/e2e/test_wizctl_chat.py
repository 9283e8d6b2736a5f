"""``wizctl`` on a terminal, end to end: ``chat`` typed into, and replies
streaming into ``tail -f`` and ``send --wait``, each through a real
pseudo-terminal, against a real wizd (and, for streaming with delays and
stalls, the scripted OpenAI-compatible HTTP server on a thread).

The pty is read with select() against a deadline; what wizctl wrote is kept
raw (escape sequences and all) in ``Pty.out`` and ANSI-stripped in ``Pty.text``.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import select
import signal
import stat
import struct
import subprocess
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_wizctl import (
    DEADLINE,
    WIZCTL,
    converse,
    streaming_agent,
    subscribed,
    wizctl_env,
)
from tests.support.daemon import Wizd
from tests.support.openai_server import Reply, ThreadedOpenAIServer, openai_server_in_thread

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
CLEAR = "\r\x1b[J"  # what wizctl writes to erase a streaming reply before settling it
OFFLINE = '[offline demo] I\'m ada (Researcher). You said: "{}"'


class Pty:
    """A wizctl whose stdin, stdout and stderr are a pseudo-terminal of 24x200."""

    def __init__(self, w: Wizd, *args: str) -> None:
        master, slave = os.openpty()
        try:
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 200, 0, 0))
            self.proc = subprocess.Popen([WIZCTL, *args], env=wizctl_env(w), stdin=slave,
                                         stdout=slave, stderr=slave, start_new_session=True)
        except BaseException:
            os.close(master)
            raise
        finally:
            os.close(slave)
        self.master = master
        self.raw = b""
        self.ended = False

    @property
    def out(self) -> str:
        return self.raw.decode(errors="replace")

    @property
    def text(self) -> str:
        return ANSI.sub("", self.out)

    def _read(self, deadline: float) -> bool:
        """Read what is there (waiting until ``deadline``); False at the pty's end."""
        if self.ended:
            return False
        if select.select([self.master], [], [], max(deadline - time.monotonic(), 0))[0]:
            try:
                chunk = os.read(self.master, 65536)
            except OSError as exc:  # Linux says EIO once no process holds the pty
                if exc.errno != errno.EIO:
                    raise
                chunk = b""
            self.raw += chunk
            self.ended = not chunk
        return not self.ended

    def expect(self, pattern: str, after: int = 0) -> re.Match[str]:
        """Wait until ``pattern`` (a regex) matches the raw output from index ``after``."""
        deadline = time.monotonic() + DEADLINE
        while not (found := re.compile(pattern).search(self.out, after)):
            if not self._read(deadline) or time.monotonic() >= deadline:
                raise AssertionError(f"no {pattern!r} in the terminal after "
                                     f"{DEADLINE:g} s (or its end):\n{self.out!r}")
        return found

    def type(self, keys: str) -> None:
        os.write(self.master, keys.encode())

    def wait(self) -> int:
        """Read to the end; the exit code."""
        deadline = time.monotonic() + DEADLINE
        while self._read(deadline) and time.monotonic() < deadline:
            pass
        return self.proc.wait(timeout=max(deadline - time.monotonic(), 1))

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=DEADLINE)
        os.close(self.master)

    def __enter__(self) -> Pty:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@pytest.fixture
def srv() -> Iterator[ThreadedOpenAIServer]:
    with openai_server_in_thread() as server:
        yield server


# -- chat ---------------------------------------------------------------------------

def test_chat_through_a_terminal(wizd: Wizd) -> None:
    me = re.escape(wizd.call("user.me")["name"])
    ada = wizd.call("agent.create", name="ada", role="Researcher", backstory="b", goal="g")
    bob = wizd.call("agent.create", name="bob", role="Critic", backstory="b", goal="g")
    group = wizd.call("dm.create", participants=[ada["id"], bob["id"]])  # not the one to use

    with Pty(wizd, "chat", "ada") as chat:
        chat.expect(r"chatting with ada \(Ctrl-D to leave\)\r\n")
        chat.expect(f"{me}> $")
        chat.type("hello there\r")
        reply = OFFLINE.format("hello there")
        settled = chat.expect(f"{re.escape(CLEAR)}.*ada.*: {re.escape(reply)}\r\n")
        # streamed first (the live line), then erased and printed for good
        streamed = chat.out.rfind(f"ada: {reply}", 0, settled.start())
        assert streamed > chat.out.index("hello there\r\n")
        chat.expect(f"{me}> $", settled.end())

        chat.type("now /fail-auth\r")  # an error reply is said, and the chat goes on
        error = chat.expect(r"wizctl: ada: Agent ada could not reply[^\r\n]*\r\n")
        chat.expect(f"{me}> $", error.end())
        chat.type("\x04")  # Ctrl-D
        assert chat.wait() == 0
    assert "Traceback" not in chat.text

    dms = wizd.call("dm.list")["conversations"]
    [dm] = [d for d in dms if d["id"] != group["id"]]
    assert sorted(dm["participants"]) == sorted([wizd.call("user.me")["id"], ada["user_id"]])
    contents = [m["content"] for m in
                wizd.call("message.list", conversation_id=dm["id"])["messages"]]
    assert contents[:3] == ["hello there", OFFLINE.format("hello there"), "now /fail-auth"]
    assert wizd.call("message.list", conversation_id=group["id"])["messages"] == []

    history = Path(os.environ["XDG_STATE_HOME"]) / "wiz" / "chat_history"
    assert "hello there" in history.read_text()
    assert stat.S_IMODE(history.stat().st_mode) == 0o600

    # A second session: the same DM, its last messages shown first.
    with Pty(wizd, "chat", "ada") as again:
        prompt = again.expect(f"{me}> $")
        assert OFFLINE.format("hello there") in ANSI.sub("", again.out[:prompt.start()])
        again.type("\x04")
        assert again.wait() == 0
    assert len(wizd.call("dm.list")["conversations"]) == 2


def test_chat_with_piped_input_prints_each_reply(wizd: Wizd) -> None:
    """Not on a terminal: no prompt, no history, one line per reply; the DM is
    created on first use and used again after."""
    wizd.call("agent.create", name="ada", role="Researcher", backstory="b", goal="g")
    for lines in (["one", "", "two"], ["three"]):
        proc = subprocess.run([WIZCTL, "chat", "ada"], env=wizctl_env(wizd), capture_output=True,
                              text=True, input="\n".join(lines) + "\n", timeout=DEADLINE)
        assert (proc.returncode, proc.stderr) == (0, "")
        assert [line.split(" ", 1)[1] for line in proc.stdout.splitlines()] == [
            f"ada: {OFFLINE.format(text)}" for text in lines if text]
    [dm] = wizd.call("dm.list")["conversations"]
    assert len(wizd.call("message.list", conversation_id=dm["id"])["messages"]) == 6


# -- streaming --------------------------------------------------------------------------

def test_tail_streams_a_reply_then_settles_it(wizd: Wizd, srv: ThreadedOpenAIServer) -> None:
    _, dm = streaming_agent(wizd, srv)
    srv.enqueue(Reply(text="ready"))
    with subscribed(wizd, dm) as conn:
        converse(conn, dm, "warm up")

    with Pty(wizd, "tail", "ada", "-n", "1", "-f") as tail:
        tail.expect(r"ada.*: ready\r\n")  # the history...
        # ...then a message sent after it comes through the subscription, so from
        # here on tail is subscribed and sees every delta.
        srv.enqueue(Reply(text="pong"))
        with subscribed(wizd, dm) as conn:
            converse(conn, dm, "ping")
        mark = tail.expect(r"ada.*: pong\r\n").end()

        srv.enqueue(Reply(chunks=["Hel", "lo ", "wor", "ld"], chunk_delay=0.05))
        wizd.call("message.send", conversation_id=dm, content="one")
        settled = tail.expect(f"{re.escape(CLEAR)}.*ada.*: Hello world\r\n", mark)
        streamed = tail.out.find("ada: Hello world", mark)
        assert mark < streamed < settled.start()  # the live line came first

        # A reply that stalls half-way is shown as far as it came, and stays
        # unstored: so what is shown arrived live, not when the reply was stored.
        srv.enqueue(Reply(chunks=["Thinking", " it", " over"], stall=True))
        sent = wizd.call("message.send", conversation_id=dm, content="two")["message"]
        tail.expect(r"ada: Thinking it over$", settled.end())
        assert [m["content"] for m in wizd.call(
            "message.list", conversation_id=dm, after_seq=sent["seq"])["messages"]] == []

        tail.proc.send_signal(signal.SIGINT)
        assert tail.wait() == 0
        assert tail.out.endswith(CLEAR)  # the unfinished reply is erased on the way out
    assert "Traceback" not in tail.text


def test_send_wait_streams_on_a_terminal(wizd: Wizd, srv: ThreadedOpenAIServer) -> None:
    streaming_agent(wizd, srv)
    srv.enqueue(Reply(chunks=["Hel", "lo ", "world"], chunk_delay=0.05))
    with Pty(wizd, "send", "ada", "hi", "--wait") as send:
        assert send.wait() == 0
    # the pieces as they came, then erased and replaced by the stored reply
    assert send.out == f"Hello world{CLEAR}Hello world\r\n"


def test_a_reconnect_notice_does_not_garble_a_streaming_reply(
        wizd: Wizd, srv: ThreadedOpenAIServer) -> None:
    _, dm = streaming_agent(wizd, srv)
    srv.enqueue(Reply(text="ready"))
    with subscribed(wizd, dm) as conn:
        converse(conn, dm, "warm up")
    with Pty(wizd, "tail", "ada", "-n", "1", "-f") as tail:
        tail.expect(r"ada.*: ready\r\n")
        srv.enqueue(Reply(text="pong"))
        with subscribed(wizd, dm) as conn:
            converse(conn, dm, "ping")
        tail.expect(r"ada.*: pong\r\n")
        # stalls half-way; after the restart, the job runs again and finishes
        srv.enqueue(Reply(chunks=["Thinking", " it", " over"], stall=True), Reply(text="Done"))
        wizd.call("message.send", conversation_id=dm, content="two")
        tail.expect(r"ada: Thinking it over$")
        assert wizd.stop() == 0
        wizd.start()
        tail.expect(f"{re.escape(CLEAR)}.*ada.*: Done\r\n")
        tail.proc.send_signal(signal.SIGINT)
        assert tail.wait() == 0
    # The notice starts its own line: the live line was erased before it.
    notice = tail.out.index("wizctl: lost the connection to wizd; reconnecting")
    assert tail.out[:notice].endswith(("\n", CLEAR)), repr(tail.out)
