"""The sd_notify protocol: tell the service manager how the daemon is doing.

systemd (``Type=notify``) passes the path of a datagram socket in
``$NOTIFY_SOCKET``; the daemon sends newline-separated ``KEY=value`` lines
to it: ``READY=1`` once it serves, ``STATUS=...`` as a one-line summary for
``systemctl status``, ``WATCHDOG=1`` at least every ``$WATCHDOG_USEC``, and
``STOPPING=1`` when it begins to shut down. See sd_notify(3).

Without ``$NOTIFY_SOCKET`` (a daemon started by hand) every call is a no-op.
Sends never block the event loop: the socket is non-blocking, and a message
the manager cannot take right now is dropped with a log line (the manager
drains its queue quickly; a lost STATUS is harmless, and the next WATCHDOG
ping follows at half the timeout).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


def notify_address(environ: Mapping[str, str]) -> str | None:
    """The socket address from ``$NOTIFY_SOCKET``, or None when there is none to use.

    A leading ``@`` names a socket in the abstract namespace (the ``@`` becomes
    a NUL byte). Other schemes (``vsock:``) are not supported and count as none.
    """
    raw = environ.get("NOTIFY_SOCKET", "")
    if raw.startswith("@"):
        return "\0" + raw[1:]
    if raw.startswith("/"):
        return raw
    if raw:
        log.warning("ignoring NOTIFY_SOCKET=%r: only Unix socket paths are supported", raw)
    return None


def watchdog_interval(environ: Mapping[str, str], pid: int | None = None) -> float | None:
    """Seconds between ``WATCHDOG=1`` pings (half of ``$WATCHDOG_USEC``), or None.

    None when the watchdog is off, or when ``$WATCHDOG_PID`` names another
    process (the watchdog is then meant for that one, e.g. a wrapper's child).
    """
    usec = environ.get("WATCHDOG_USEC", "")
    owner = environ.get("WATCHDOG_PID", "")
    if owner and owner != str(os.getpid() if pid is None else pid):
        return None
    try:
        value = int(usec)
    except ValueError:
        return None
    return value / 2_000_000 if value > 0 else None


class Notifier:
    """A sender of sd_notify messages; every method is a no-op when disabled."""

    def __init__(self, address: str | None) -> None:
        self.address = address
        self._sock: socket.socket | None = None
        if address is not None:
            self._sock = socket.socket(
                socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
            )

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        return cls(notify_address(os.environ if environ is None else environ))

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def send(self, *lines: str) -> bool:
        """Send one datagram of ``KEY=value`` lines; True if it was handed to the manager."""
        if self._sock is None or self.address is None:
            return False
        data = "\n".join(lines).encode()
        try:
            self._sock.sendto(data, self.address)
        except OSError as exc:  # EAGAIN (queue full), ECONNREFUSED (manager gone), ...
            log.warning("sd_notify %s not delivered: %s", lines[0].split("=")[0], exc)
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.send("READY=1", *_status(status))

    def status(self, text: str) -> bool:
        return self.send(*_status(text))

    def watchdog(self) -> bool:
        return self.send("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        return self.send("STOPPING=1", *_status(status))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> Notifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _status(text: str | None) -> tuple[str, ...]:
    # STATUS is one line: a newline would start a new KEY=value assignment.
    return () if text is None else ("STATUS=" + " ".join(text.split()),)
