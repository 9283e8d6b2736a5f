"""Operator logs: one line per event on stderr.

Under systemd (stderr is the journal stream named by ``JOURNAL_STREAM``)
each line starts with the syslog priority ``<N>`` that journald turns into
the entry's level, and carries no timestamp (journald adds its own); on a
terminal it gets a time and a level. Tracebacks are folded onto the same
line, and other control characters are escaped (a client's input must not
forge a line). Whatever looks like an API key or a bearer token is masked on
the way out, as a last line of defence: no code should log one in the first
place.
"""

from __future__ import annotations

import logging
import os
import re
import sys

_PRIORITY = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}

# OpenAI-style keys (sk-..., sk-proj-...) and Authorization header values.
_SECRET = re.compile(r"\bsk-[A-Za-z0-9_-]{8,}|(?<=Bearer )[^\s'\",]+", re.IGNORECASE)


def mask_secrets(text: str) -> str:
    return _SECRET.sub("***", text)


# Control characters other than the newline (folded to " | " first): a NUL, an
# escape sequence or a carriage return from a client's input must not reach
# the journal or a terminal raw, where it could forge or hide a line.
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def escape_controls(text: str) -> str:
    """``text`` with each control character written as a visible escape (``\\x00``)."""
    return _CONTROL.sub(_escape, text)


def _escape(match: re.Match[str]) -> str:
    code = ord(match[0])
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


class LineFormatter(logging.Formatter):
    """One line per record, secrets masked; with a ``<N>`` prefix for journald."""

    def __init__(self, fmt: str, datefmt: str | None = None, *, journal: bool = False) -> None:
        super().__init__(fmt, datefmt)
        self.journal = journal

    def format(self, record: logging.LogRecord) -> str:
        text = escape_controls(mask_secrets(super().format(record)).replace("\n", " | "))
        if self.journal:
            return f"<{_PRIORITY.get(record.levelno, 6)}>{text}"
        return text


def stderr_is_journal(environ: dict[str, str] | None = None) -> bool:
    """True when stderr is the journal stream systemd connected (sd_journal_stream_fd(3)).

    ``JOURNAL_STREAM`` is ``<device>:<inode>`` of that stream; comparing it
    with stderr's avoids prefixes when a child of a service redirects stderr.
    """
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    try:
        dev, ino = (int(part) for part in value.split(":"))
        st = os.fstat(sys.stderr.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


def setup(level: str) -> None:
    """Send every log record at ``level`` or above to stderr, one line each."""
    handler = logging.StreamHandler(sys.stderr)
    if stderr_is_journal():
        handler.setFormatter(LineFormatter("%(name)s: %(message)s", journal=True))
    else:
        handler.setFormatter(
            LineFormatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Libraries log every HTTP request at INFO; an operator wants ours.
    for noisy in ("httpx", "httpcore", "httpx2", "httpcore2", "openai", "jsonrpcserver",
                  "aiosqlite"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
