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
import shutil
import signal
import stat
import struct
import subprocess
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.test_wizctl import (
    DEADLINE,
    converse,
    streaming_agent,
    subscribed,
    wizctl_env,
)
from tests.support.ctlrun import WIZCTL, popen, run
from tests.support.daemon import Wizd
from tests.support.openai_server import Reply, ThreadedOpenAIServer, openai_server_in_thread

ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
CLEAR = "\r\x1b[J"  # what wizctl writes to erase a streaming reply before settling it
OFFLINE = '[offline demo] I\'m ada (Researcher). You said: "{}"'


def _process_state(pid: int) -> str:
    """What the kernel says of a process that should have ended (for a failure's
    message): its state, its signals pending, blocked and ignored, where it waits."""
    try:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        wchan = Path(f"/proc/{pid}/wchan").read_text()
    except OSError as exc:
        return f"(pid {pid}: {exc})"
    keep = ("State", "SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt", "Threads")
    return "; ".join(line for line in status if line.startswith(keep)) + f"; wchan {wchan}"


class Pty:
    """A wizctl whose stdin, stdout and stderr are a pseudo-terminal of 24x200."""

    def __init__(self, w: Wizd, *args: str) -> None:
        master, slave = os.openpty()
        try:
            fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 200, 0, 0))
            # No terminal emulator here to answer where the cursor is: tell
            # prompt_toolkit not to ask (tmux answers, in the test that uses it).
            env = {**wizctl_env(w), "PROMPT_TOOLKIT_NO_CPR": "1"}
            # A session of its own whose controlling terminal is the pty, as a
            # shell would start it: Ctrl-C typed in cooked mode then sends SIGINT.
            self.proc = popen([WIZCTL, *args], env=env, stdin=slave, stdout=slave,
                              stderr=slave, start_new_session=True, controlling_terminal=True)
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
        try:
            return self.proc.wait(timeout=max(deadline - time.monotonic(), 1))
        except subprocess.TimeoutExpired:
            state = _process_state(self.proc.pid)
            # A forked wizctl prints its Python stacks on SIGABRT (tests/support/ctlserver.py).
            self.proc.send_signal(signal.SIGABRT)
            end = time.monotonic() + 5
            while self._read(end) and time.monotonic() < end:
                pass
            raise AssertionError(f"wizctl still running after {DEADLINE:g} s:\n"
                                 f"{state}\n{self.out!r}") from None

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

def cooked(pty: Pty) -> bool:
    """Whether the pty is in the mode a shell expects (line editing and echo on).
    On Linux the master reports the terminal's (slave's) settings."""
    lflag = termios.tcgetattr(pty.master)[3]
    return bool(lflag & termios.ICANON and lflag & termios.ECHO)


def contents(w: Wizd, conversation_id: str) -> list[str]:
    return [m["content"] for m in
            w.call("message.list", conversation_id=conversation_id, limit=1000)["messages"]]


def test_chat_is_live_while_you_type(wizd: Wizd) -> None:
    me = re.escape(wizd.call("user.me")["name"])
    ada = wizd.call("agent.create", name="ada", role="Researcher", backstory="b", goal="g")
    bob = wizd.call("agent.create", name="bob", role="Critic", backstory="b", goal="g")
    group = wizd.call("dm.create", participants=[ada["id"], bob["id"]])  # not the one to use

    with Pty(wizd, "chat", "ada") as chat:
        intro = chat.expect(r"chatting with ada \(/help for commands, Ctrl-D to leave\)\r\n")
        # The prompt drawn after that line: it may have been drawn before too,
        # then left (the terminal cooked) while the line was printed above it.
        chat.expect(f"{me}>", intro.end())
        assert not cooked(chat)  # the prompt edits the line itself
        chat.type("hello there\r")
        reply = OFFLINE.format("hello there")
        mine = chat.expect(f"{me}.*: hello there\r\n")
        chat.expect(f"ada.*: {re.escape(reply)}\r\n", mine.end())
        [dm] = [d for d in wizd.call("dm.list")["conversations"] if d["id"] != group["id"]]

        # Half a line typed; meanwhile another client writes in the DM: it shows
        # at once, above the prompt, in order, and the half line is still there.
        chat.type("half a thou")
        typed = chat.expect("half a thou").end()
        wizd.call("message.send", conversation_id=dm["id"], content="from elsewhere")
        elsewhere = chat.expect(f"{me}.*: from elsewhere\r\n", typed)
        answer = chat.expect(f"ada.*: {re.escape(OFFLINE.format('from elsewhere'))}\r\n",
                             elsewhere.end())
        chat.expect(f"{me}>.*half a thou", answer.end())  # the prompt, redrawn below
        chat.type("ght\r")
        chat.expect(f"ada.*: {re.escape(OFFLINE.format('half a thought'))}\r\n")
        assert contents(wizd, dm["id"]) == [
            "hello there", reply, "from elsewhere", OFFLINE.format("from elsewhere"),
            "half a thought", OFFLINE.format("half a thought")]

        mark = len(chat.out)
        chat.type("/history 2\r")
        shown = chat.expect(f"{me}.*: half a thought\r\n.*ada.*: "
                            f"{re.escape(OFFLINE.format('half a thought'))}\r\n", mark)
        chat.type("/agent bob\r")
        chat.expect(r"chatting with bob\r\n", shown.end())
        chat.type("hi bob\r")
        chat.expect(r"bob.*: \[offline demo\] I'm bob \(Critic\)\. You said: \"hi bob\"")
        chat.type("/help\r")
        chat.expect(r"/history \[N\]")
        chat.type("/nonsense\r")
        chat.expect(r"wizctl: unknown command /nonsense")
        chat.type("/quit\r")
        assert chat.wait() == 0
        assert cooked(chat)
    assert "Traceback" not in chat.text

    dms = [d for d in wizd.call("dm.list")["conversations"] if d["id"] not in (group["id"],
                                                                                 dm["id"])]
    [with_bob] = dms
    assert sorted(with_bob["participants"]) == sorted([wizd.call("user.me")["id"],
                                                       bob["user_id"]])
    assert contents(wizd, with_bob["id"])[0] == "hi bob"
    assert contents(wizd, group["id"]) == []

    history = Path(os.environ["XDG_STATE_HOME"]) / "wiz" / "chat_history"
    assert "hello there" in history.read_text()
    assert stat.S_IMODE(history.stat().st_mode) == 0o600

    # A second session: the same DM, its last messages shown first.
    with Pty(wizd, "chat", "ada") as again:
        prompt = again.expect(f"{me}>")
        assert OFFLINE.format("half a thought") in ANSI.sub("", again.out[:prompt.start()])
        again.type("\x04")  # Ctrl-D
        assert again.wait() == 0
    assert len(wizd.call("dm.list")["conversations"]) == 3


@pytest.mark.parametrize("how", ["Ctrl-C", "SIGINT"])
def test_interrupting_a_streamed_reply_leaves_the_terminal_clean(
        wizd: Wizd, srv: ThreadedOpenAIServer, how: str) -> None:
    me = re.escape(wizd.call("user.me")["name"])
    _, dm = streaming_agent(wizd, srv)
    srv.enqueue(Reply(chunks=["Thinking", " it", " over"], stall=True))
    with Pty(wizd, "chat", "ada") as chat:
        chat.expect(f"{me}>")
        chat.type("think hard\r")
        # The reply streams while it is generated (never stored); prompt_toolkit
        # draws what changed, so the pieces are apart in the raw output (the
        # screen itself is checked through tmux below).
        streaming = chat.expect("over", chat.expect("ada.*: Thinking").end())
        assert contents(wizd, dm) == ["think hard"]
        if how == "Ctrl-C":
            chat.type("never sent")
            chat.expect("never sent", streaming.end())
            chat.type("\x03")  # clears the line...
            chat.type("kept\r")
            chat.expect(f"{me}.*: kept\r\n", streaming.end())
            chat.type("\x03")  # ...and on an empty line leaves
        else:
            chat.proc.send_signal(signal.SIGINT)
        assert chat.wait() == 0
        assert cooked(chat)
        out = chat.out
    assert "Traceback" not in chat.text
    # Left as a shell wants it: the cursor shown, bracketed paste off, and the
    # streaming lines erased (nothing but resets after the last erase).
    assert out.rfind("\x1b[?25l") < out.rfind("\x1b[?25h")
    assert out.rfind("\x1b[?2004h") < out.rfind("\x1b[?2004l")
    assert "Thinking" not in ANSI.sub("", out[out.rfind("\x1b[J"):])
    assert contents(wizd, dm) == ["think hard"] + ["kept"] * (how == "Ctrl-C")


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_the_screen_in_a_real_terminal_emulator(
        wizd: Wizd, srv: ThreadedOpenAIServer, tmp_path: Path) -> None:
    """What a person sees, read back from tmux: messages from elsewhere above the
    prompt with the half-typed line intact, a reply streaming just above the
    prompt, and after Ctrl-C a shell's terminal again (stty run after chat)."""
    me = wizd.call("user.me")["name"]
    _, dm = streaming_agent(wizd, srv)
    env = wizctl_env(wizd)
    tmux = ["tmux", "-S", str(tmp_path / "tmux.sock")]
    subprocess.run([*tmux, "new-session", "-d", "-x", "100", "-y", "16",
                    "env", *(f"{k}={v}" for k, v in env.items() if k.startswith(("WIZ", "XDG"))),
                    "sh", "-c", '"$0" chat ada; echo "exit $?"; stty -a; exec sleep 600', WIZCTL],
                   check=True, timeout=DEADLINE)

    def keys(*typed: str) -> None:
        subprocess.run([*tmux, "send-keys", *typed], check=True, timeout=DEADLINE)

    def screen(done: Callable[[list[str]], bool]) -> list[str]:
        """The screen's non-empty lines, once ``done`` says they are as awaited."""
        deadline = time.monotonic() + DEADLINE
        while True:
            shown = subprocess.run([*tmux, "capture-pane", "-p"], capture_output=True,
                                   text=True, check=True, timeout=DEADLINE).stdout
            # Padded at the top, so that done() may look at the last few lines.
            lines = [""] * 4 + [line.rstrip() for line in shown.splitlines() if line.strip()]
            if done(lines):
                return lines
            assert time.monotonic() < deadline, "\n".join(lines)
            time.sleep(0.05)

    try:
        screen(lambda lines: lines[-1:] == [f"{me}>"])
        keys("half typed")
        screen(lambda lines: lines[-1:] == [f"{me}> half typed"])
        srv.enqueue(Reply(text="pong"))
        wizd.call("message.send", conversation_id=dm, content="from elsewhere")
        lines = screen(lambda lines: lines[-2].endswith(" ada: pong"))
        assert lines[-3].endswith(f" {me}: from elsewhere")
        assert lines[-1] == f"{me}> half typed"

        srv.enqueue(Reply(chunks=["Thinking", " it", " over"], stall=True))
        keys(" more", "Enter")
        screen(lambda lines: lines[-3].endswith(f" {me}: half typed more")
               and lines[-2].endswith(" ada: Thinking it over") and lines[-1] == f"{me}>")
        keys("abc")
        screen(lambda lines: lines[-1] == f"{me}> abc"
               and lines[-2].endswith(" ada: Thinking it over"))
        keys("C-c")
        screen(lambda lines: lines[-1] == f"{me}>")
        keys("C-c")
        lines = screen(lambda lines: any(line.startswith("speed ") for line in lines))
        assert "exit 0" in lines
        assert not any("Thinking" in line for line in lines)  # the live lines were erased
        flags = " ".join(lines).split()
        assert "icanon" in flags and "echo" in flags  # cooked, as a shell left it
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True, timeout=DEADLINE)


def test_chat_with_piped_input_prints_each_reply(wizd: Wizd) -> None:
    """Not on a terminal: no prompt, no history, one line per reply; the DM is
    created on first use and used again after."""
    wizd.call("agent.create", name="ada", role="Researcher", backstory="b", goal="g")
    for lines in (["one", "", "two"], ["three"]):
        proc = run([WIZCTL, "chat", "ada"], env=wizctl_env(wizd), capture_output=True, text=True,
                   input="\n".join(lines) + "\n", timeout=DEADLINE)
        assert (proc.returncode, proc.stderr) == (0, "")
        assert [line.split(" ", 1)[1] for line in proc.stdout.splitlines()] == [
            f"ada: {OFFLINE.format(text)}" for text in lines if text]
    [dm] = wizd.call("dm.list")["conversations"]
    assert len(wizd.call("message.list", conversation_id=dm["id"])["messages"]) == 6


def test_chat_commands_with_piped_input(wizd: Wizd) -> None:
    wizd.call("agent.create", name="ada", role="Researcher", backstory="b", goal="g")
    wizd.call("agent.create", name="bob", role="Critic", backstory="b", goal="g")
    script = ["hi", "/history 1", "/agent bob", "//slash", "/what", "/quit", "never sent"]
    proc = run([WIZCTL, "chat", "ada"], env=wizctl_env(wizd), capture_output=True, text=True,
               input="\n".join(script) + "\n", timeout=DEADLINE)
    assert proc.returncode == 0
    said = [line.split(" ", 1)[1] for line in proc.stdout.splitlines()]
    assert said == [f"ada: {OFFLINE.format('hi')}", f"ada: {OFFLINE.format('hi')}",
                    'bob: [offline demo] I\'m bob (Critic). You said: "/slash"']
    assert proc.stderr.startswith("wizctl: unknown command /what")
    assert sorted(len(contents(wizd, d["id"]))
                  for d in wizd.call("dm.list")["conversations"]) == [2, 2]


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
