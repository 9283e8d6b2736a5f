"""Socket activation: serve the listening socket the service manager passed in.

systemd (or ``systemd-socket-activate``) opens the socket, starts wizd on the
first connection, and hands the socket over as file descriptor 3 with
``LISTEN_FDS=1``, ``LISTEN_PID=<our pid>`` and optionally
``LISTEN_FDNAMES``. See sd_listen_fds(3). The manager keeps the socket (and
its file) across restarts, so an activated wizd never unlinks it.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import WizError

log = logging.getLogger(__name__)

SD_LISTEN_FDS_START = 3
_VARIABLES = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


def take_listen_fds(environ: MutableMapping[str, str] | None = None) -> list[tuple[int, str]]:
    """The ``(fd, name)`` pairs passed to this process, and unset the variables.

    The variables are removed whatever they say, so that no child process
    takes them for its own. Variables meant for another pid yield nothing.
    """
    env = os.environ if environ is None else environ
    pid, count, names = (env.pop(name, "") for name in _VARIABLES)
    if not count:
        return []
    if pid != str(os.getpid()):
        log.warning("ignoring LISTEN_FDS meant for pid %s", pid or "(unset)")
        return []
    try:
        n = int(count)
    except ValueError as exc:
        raise WizError(f"LISTEN_FDS={count!r} is not a number") from exc
    labels = names.split(":") if names else []
    return [
        (SD_LISTEN_FDS_START + i, labels[i] if i < len(labels) else "unknown")
        for i in range(n)
    ]


@dataclass(frozen=True)
class InheritedSocket:
    """The listening socket from the manager and the path it is bound to."""

    sock: socket.socket
    path: Path


def inherited_socket(environ: MutableMapping[str, str] | None = None) -> InheritedSocket | None:
    """The listening Unix stream socket passed by the service manager, or None.

    Raises WizError if the manager passed anything but exactly one listening
    Unix stream socket (a unit that does not match what wizd serves).
    """
    fds = take_listen_fds(environ)
    if not fds:
        return None
    if len(fds) != 1:
        for fd, _name in fds:
            os.close(fd)
        raise WizError(
            f"the service manager passed {len(fds)} sockets; wizd serves exactly one "
            "(a single ListenStream= in wizd.socket)"
        )
    fd, name = fds[0]
    try:
        sock = socket.socket(fileno=fd)
    except OSError as exc:
        os.close(fd)
        raise WizError(f"inherited fd {fd} ({name}) is not a socket: {exc}") from exc
    listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    if sock.family != socket.AF_UNIX or sock.type != socket.SOCK_STREAM or not listening:
        sock.close()
        raise WizError(
            f"inherited fd {fd} ({name}) is not a listening Unix stream socket "
            "(wizd.socket needs ListenStream=<path>)"
        )
    # The manager passes it inheritable and blocking; ours stays with us, and a
    # blocking accept() would stall the event loop.
    sock.set_inheritable(False)
    sock.setblocking(False)
    address = sock.getsockname()
    path = Path(address if isinstance(address, str) else os.fsdecode(address))
    log.info("serving the socket passed by the service manager: %s (%s)", path, name)
    return InheritedSocket(sock, path)
