"""``wizctl chat`` on a terminal: live while you type.

Messages of the DM (yours, the agent's, anyone's) are printed above the
prompt as they are stored, in ``seq`` order; a reply being generated streams
in the lines just above the prompt until it is stored. What you are typing
stays where it is.

Why prompt_toolkit: printing above a prompt while someone types means saving
the line being edited, erasing the prompt, writing, and redrawing the prompt
with the line and the cursor where they were, for every terminal size and
wide characters, and putting the terminal back as it was however the chat
ends; its ``StdoutProxy`` (what ``patch_stdout`` installs) and
``PromptSession`` do exactly that, with line editing and history besides. It
is imported only here: no other command of wizctl pays for it.

Threads: the main thread runs the prompt and makes calls on a connection of
its own; a ``Feed`` thread owns one subscription to everything (resumed by
seq across reconnects) and hands each notification to the ``Screen``, which
keeps the current DM's messages in order and its streaming replies.
"""

from __future__ import annotations

import os
import signal
import sys
import termios
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO, cast

from prompt_toolkit import PromptSession
from prompt_toolkit.formatted_text import ANSI
from prompt_toolkit.history import FileHistory
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.patch_stdout import StdoutProxy

from .chat import COMMANDS, HISTORY_LINES, Session, parse
from .client import Client, Notification, RpcError, WizClientError
from .follow import Follower, daemon_last_seq
from .live import fit
from .objects import Message, MessageDelta
from .replies import send_message
from .resolve import Lookup, ResolveError
from .text import clean, use_color
from .view import TOOL_EVENTS, message_line, tool_line

# A user id -> the name to show.
Names = Callable[[object], str]


class _Stopped(Exception):
    """The chat is ending: the feed stops reconnecting."""


@dataclass
class _Stream:
    """A reply being streamed: who writes it and what its pieces said so far."""

    author_id: str | None
    author: str
    text: str = ""
    index: int = -1
    started_ms: int = 0


class Screen:
    """The current DM as shown: messages printed in seq order (each once), and
    the replies still streaming. Thread-safe: the feed and the prompt share it."""

    def __init__(self, write: Callable[[str], None], *, color: bool,
                 invalidate: Callable[[], None]) -> None:
        self.write = write
        self.color = color
        self.invalidate = invalidate
        self.lock = threading.RLock()
        self.current: str | None = None
        self.last_seq = 0
        self.streams: dict[str | None, _Stream] = {}  # by job id

    def say(self, text: str) -> None:
        with self.lock:
            self.write(text + "\n")

    def show(self, conversation_id: str, recent: Callable[[], list[Message]],
             names: Names) -> None:
        """Make ``conversation_id`` the one shown, printing ``recent()`` first.
        Under the lock, so a message stored after ``recent()`` read is printed
        after them and one it returned is not printed twice."""
        with self.lock:
            self.current = conversation_id
            self.streams.clear()
            msgs = recent()
            for msg in msgs:
                self._print(msg, names)
            self.last_seq = msgs[-1]["seq"] if msgs else 0
        self.invalidate()

    def history(self, msgs: list[Message], names: Names) -> None:
        with self.lock:
            for msg in msgs:
                self._print(msg, names)

    def note(self, note: Notification, names: Names) -> None:
        """Take one notification of the feed."""
        p = note.params
        with self.lock:
            if note.method == "message.created":
                msg = cast(Message, p.get("message") or {})
                seq = msg.get("seq")
                if msg.get("conversation_id") != self.current or \
                        (isinstance(seq, int) and seq <= self.last_seq):
                    return
                self._settle(msg)
                self._print(msg, names)
                self.last_seq = seq if isinstance(seq, int) else self.last_seq
            elif note.method == "message.delta":
                if p.get("conversation_id") != self.current:
                    return
                self._delta(cast(MessageDelta, p), names)
            elif note.method in TOOL_EVENTS:
                if p.get("conversation_id") != self.current:
                    return
                self.write(tool_line(note, color=self.color) + "\n")
            else:
                return
        self.invalidate()

    def live(self) -> str:
        """The replies being streamed, one ``HH:MM:SS name: text`` block each."""
        with self.lock:
            return "\n".join(
                message_line({"created_at": s.started_ms, "content": s.text}, s.author,
                             color=self.color)
                for s in self.streams.values())

    def _print(self, msg: Message, names: Names) -> None:
        self.write(message_line(msg, names(msg.get("author_id")), color=self.color) + "\n")

    def _settle(self, msg: Message) -> None:
        for job, stream in list(self.streams.items()):
            if stream.author_id == msg.get("author_id"):
                del self.streams[job]
                return

    def _delta(self, p: MessageDelta, names: Names) -> None:
        job, index = p.get("job_id"), p.get("index")
        stream = self.streams.get(job)
        if stream is None or index == 0:  # index 0 again: a retry starts over
            author = p.get("author_id")
            stream = self.streams[job] = _Stream(author, names(author),
                                                 started_ms=int(time.time() * 1000))
        elif isinstance(index, int) and index <= stream.index:
            return
        stream.text += str(p.get("delta") or "")
        stream.index = index if isinstance(index, int) else stream.index + 1


class Feed(threading.Thread):
    """Reads the subscription and hands notifications to the screen until stopped."""

    def __init__(self, connect: Callable[[], Client], screen: Screen) -> None:
        super().__init__(name="wizctl-chat-feed", daemon=True)
        self.screen = screen
        self.stopping = threading.Event()
        self._lost = False
        self.follower = Follower(connect, sleep=self._sleep, on_reconnect=self._notice)

    def begin(self, after_seq: int | None) -> None:
        """Subscribe (on the calling thread: live before anything is sent), then run."""
        self.follower.last_seq = after_seq
        self.follower.start()
        self.start()

    def stop(self) -> None:
        self.stopping.set()
        self.join(timeout=5)
        self.follower.close()

    def run(self) -> None:
        names = Lookup(self.follower.call).user_name
        try:
            while not self.stopping.is_set():
                # A short wait, so that stop() is seen soon.
                note = self.follower.next(0.2)
                if note is not None:
                    self.screen.note(note, names)
        except _Stopped:
            pass
        except WizClientError as exc:
            self.screen.say(f"wizctl: error: {exc}; new messages are no longer shown")

    def _sleep(self, seconds: float) -> None:
        if self.stopping.wait(seconds):
            raise _Stopped

    def _notice(self, text: str) -> None:
        if self.stopping.is_set():
            raise _Stopped
        lost = text.startswith("lost")
        if not (lost and self._lost):  # once per outage, however often it retries
            self.screen.say(f"wizctl: {text}")
        self._lost = lost


class Calls:
    """The prompt's calls on a connection of its own, made again after one is lost
    (the call that met the loss fails: it may have been carried out)."""

    def __init__(self, connect: Callable[[], Client]) -> None:
        self.connect = connect
        self.client = connect()

    def __call__(self, method: str, /, **params: Any) -> Any:
        if self.client.closed:
            self.client = self.connect()
        return self.client.call(method, **params)

    def close(self) -> None:
        self.client.close()


def _keys() -> KeyBindings:
    keys = KeyBindings()

    @keys.add("c-c")
    def _interrupt(event: KeyPressEvent) -> None:
        """Ctrl-C clears what is typed; on an empty line it leaves."""
        buffer = event.app.current_buffer
        if buffer.text:
            buffer.reset()
        else:
            event.app.exit(exception=KeyboardInterrupt, style="class:aborting")

    return keys


@contextmanager
def _keys_not_signals(stream: TextIO) -> Iterator[None]:
    """The terminal of ``stream`` without ISIG (Ctrl-C, Ctrl-Z and Ctrl-\\ are
    read as keys) for the block; as it was after, however the block ends."""
    fd = stream.fileno()
    saved = termios.tcgetattr(fd)
    changed = list(saved)
    changed[3] &= ~termios.ISIG
    termios.tcsetattr(fd, termios.TCSANOW, changed)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSANOW, saved)


def _history(path: Path) -> FileHistory:
    """Input history in ``path``, private to you: what you told an agent is
    nobody else's business."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    os.chmod(path, 0o600)
    return FileHistory(str(path))


def run(connect: Callable[[], Client], agent_ref: str, *, history: Path) -> int:
    """Chat on this terminal until /quit, Ctrl-D or Ctrl-C on an empty line;
    returns 0. Raises ResolveError (unknown agent) and WizClientError before
    the prompt first shows; later failures are said and the chat goes on."""
    calls = Calls(connect)
    lookup = Lookup(calls)
    session = Session(lookup)
    feed: Feed | None = None
    try:
        session.switch(agent_ref)
        me = clean(lookup.me().get("name") or "you")
        start_seq = daemon_last_seq(calls)
        color = use_color(sys.stdout)
        # What is written to the proxy goes above the prompt (stray prints too).
        # It batches writes: 20 ms, so that a message is printed about when the
        # first pieces of its reply show below it.
        out = StdoutProxy(raw=True, sleep_between_writes=0.02)
        with out, redirect_stdout(out), redirect_stderr(out):

            def write(text: str) -> None:
                out.write(text)
                out.flush()

            prompt: PromptSession[str] = PromptSession(
                history=_history(history), key_bindings=_keys(), erase_when_done=True)
            screen = Screen(write, color=color, invalidate=prompt.app.invalidate)

            def message() -> ANSI:
                live = screen.live()
                if live:
                    size = prompt.app.output.get_size()
                    live = fit(live, size.columns, max(size.rows - 2, 1)) + "\n"
                return ANSI(live + f"{me}> ")

            screen.say(f"chatting with {session.name} (/help for commands, Ctrl-D to leave)")
            screen.show(session.conversation_id, lambda: session.recent(HISTORY_LINES),
                        lookup.user_name)
            feed = Feed(connect, screen)
            feed.begin(start_seq)
            # Ctrl-C is a key at the prompt (the terminal is raw there). Between
            # two prompts the terminal would turn it into a SIGINT, raised in
            # whatever runs then (the event loop's cleanup, say): it stays a key
            # there too, read by the next prompt. A SIGINT sent from elsewhere
            # asks to leave once the call under way is done.
            interrupted = threading.Event()
            previous = signal.signal(signal.SIGINT, lambda *_: interrupted.set())
            try:
                with _keys_not_signals(sys.stdin):
                    while not interrupted.is_set():
                        try:
                            line = prompt.prompt(message)
                        except (EOFError, KeyboardInterrupt):
                            break
                        if interrupted.is_set() or not _do(line, session, screen, lookup):
                            break
            finally:
                signal.signal(signal.SIGINT, previous)
    finally:
        if feed is not None:
            feed.stop()
        calls.close()
    return 0


def _do(line: str, session: Session, screen: Screen, lookup: Lookup) -> bool:
    """Carry out one input line; False when the chat should end."""
    cmd = parse(line)
    if cmd is None:
        return True
    try:
        if cmd.name == "quit":
            return False
        if cmd.name == "send":
            result = send_message(lookup.call, session.conversation_id, cmd.arg)
            if not result.get("jobs"):
                screen.say(f"wizctl: {session.name} is inactive, so no reply will come "
                           f"(`wizctl agent activate {session.name}`)")
        elif cmd.name == "agent":
            session.switch(cmd.arg)
            screen.say(f"chatting with {session.name}")
            screen.show(session.conversation_id, lambda: session.recent(HISTORY_LINES),
                        lookup.user_name)
        elif cmd.name == "history":
            screen.history(session.recent(cmd.count), lookup.user_name)
        elif cmd.name == "help":
            screen.say(COMMANDS)
        else:
            screen.say(f"wizctl: {cmd.arg}")
    except (ResolveError, WizClientError) as exc:  # said; the chat goes on
        text = exc.describe() if isinstance(exc, RpcError) else str(exc)
        screen.say(f"wizctl: error: {text}")
    return True
