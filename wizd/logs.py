"""Operator logs: one line per event on stderr.

Under systemd (``JOURNAL_STREAM`` set) each line starts with the syslog
priority ``<N>`` that journald turns into the entry's level, and carries no
timestamp (journald adds its own); on a terminal it gets a time and a level.
"""

from __future__ import annotations

import logging
import os
import sys

_PRIORITY = {
    logging.DEBUG: 7,
    logging.INFO: 6,
    logging.WARNING: 4,
    logging.ERROR: 3,
    logging.CRITICAL: 2,
}


class JournalFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record).replace("\n", " | ")
        return f"<{_PRIORITY.get(record.levelno, 6)}>{text}"


def setup(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("JOURNAL_STREAM"):
        handler.setFormatter(JournalFormatter("%(name)s: %(message)s"))
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Libraries log every HTTP request at INFO; an operator wants ours.
    for noisy in ("httpx", "httpcore", "openai", "jsonrpcserver"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
