"""The daemon's life as its supervisor sees it: one instance, its socket, its health.

``app.serve`` runs inside ``lifecycle(config)``::

    with lifecycle(config) as life:          # locks; the socket systemd passed, if any
        ...open the database...
        listener = await life.open_listener()  # inherited, or created at config.socket
        tg.start_soon(life.watchdog)           # WATCHDOG=1 while the event loop runs
        await tg.start(server.run)
        life.ready()                           # READY=1
        tg.start_soon(life.report_status, rt)  # STATUS=<queue counts>
        await stop.wait()
        await life.stop_accepting()            # STOPPING=1; new clients are refused
        ...let jobs finish or requeue them, cancel the rest...
        await life.close()                     # (shielded) the socket file goes, if ours

Stopping accepts no new connection but keeps serving the open ones until the
grace period is over; then they are closed (a client resumes its
subscriptions with ``after_seq`` after the restart).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import socket
from collections.abc import Iterator, Mapping
from typing import Any

import anyio
from anyio.abc import SocketAttribute, SocketListener, SocketStream

from .config import Config
from .lock import instance_locks
from .private_dir import ensure_private_dir
from .rpc.server import open_listener
from .services.runtime import Runtime
from .systemd import InheritedSocket, Notifier, inherited_socket, watchdog_interval

log = logging.getLogger(__name__)

STATUS_EVERY = 5.0
# Seconds systemd should wait for the last writes after the grace period.
STOP_MARGIN = 15.0


class GatedListener(SocketListener):
    """A listener that can stop accepting while its server keeps serving open connections.

    After ``stop_accepting`` the listening socket is closed (so a new client is
    refused at once instead of waiting in the backlog) and ``accept`` waits
    until the caller is cancelled.
    """

    def __init__(self, inner: SocketListener) -> None:
        self._inner = inner
        self._stopped = False
        self._accepting: anyio.CancelScope | None = None

    async def accept(self) -> SocketStream:
        if not self._stopped:
            with anyio.CancelScope() as scope:
                self._accepting = scope
                try:
                    return await self._inner.accept()
                except anyio.ClosedResourceError:
                    if not self._stopped:
                        raise
                finally:
                    self._accepting = None
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def stop_accepting(self) -> None:
        self._stopped = True
        if self._accepting is not None:
            self._accepting.cancel()
        await self._inner.aclose()

    async def aclose(self) -> None:
        self._stopped = True
        await self._inner.aclose()

    @property
    def _raw_socket(self) -> socket.socket:
        return self._inner.extra(SocketAttribute.raw_socket)

    @property
    def extra_attributes(self) -> Mapping[Any, Any]:
        return self._inner.extra_attributes


class Lifecycle:
    """The instance locks are held, the notifier is open; see the module docstring."""

    def __init__(self, config: Config, notifier: Notifier,
                 inherited: InheritedSocket | None) -> None:
        self.config = config
        self.notifier = notifier
        self.inherited = inherited
        self.listener: GatedListener | None = None
        self._phase = "serving"
        self._status = ""

    @property
    def activated(self) -> bool:
        """True when the service manager passed the socket (and owns its file)."""
        return self.inherited is not None

    async def open_listener(self) -> GatedListener:
        """The inherited socket, or a new one at ``config.socket`` (a stale file is replaced).

        Raises DaemonBusy if something else answers at the path.
        """
        if self.inherited is not None:
            inner = await SocketListener.from_socket(self.inherited.sock)
        else:
            inner = await open_listener(self.config.socket)
        self.listener = GatedListener(inner)
        return self.listener

    def ready(self) -> None:
        self.notifier.ready(f"serving {self.config.socket}")

    async def watchdog(self) -> None:
        """Send ``WATCHDOG=1`` at half of ``$WATCHDOG_USEC`` for as long as the loop runs."""
        interval = watchdog_interval(os.environ)
        if interval is None or not self.notifier.enabled:
            return
        log.debug("watchdog ping every %.3f s", interval)
        while True:
            self.notifier.watchdog()
            await anyio.sleep(interval)

    async def report_status(self, rt: Runtime, *, every: float = STATUS_EVERY) -> None:
        """Keep ``systemctl status`` showing the queue counts (kept in memory:
        no table is read). A report that fails is logged and skipped: it never
        ends the daemon."""
        if not self.notifier.enabled:
            return
        failing = False
        while True:
            try:
                self._send_status(status_line(self._phase, rt.tallies.queue()))
                failing = False
            except Exception:
                if not failing:  # one traceback, not one every few seconds
                    log.exception("STATUS= report failed; trying again every %.0f s", every)
                failing = True
            await anyio.sleep(every)

    def _send_status(self, text: str) -> None:
        if text != self._status:
            self._status = text
            self.notifier.status(text)

    async def stop_accepting(self) -> None:
        """``STOPPING=1``, refuse new connections, and remove the socket file if ours."""
        grace = self.config.shutdown_grace
        self._phase = "stopping"
        self.notifier.send(
            "STOPPING=1",
            "STATUS=stopping",
            # Make systemd wait for the configured grace, whatever TimeoutStopSec says.
            f"EXTEND_TIMEOUT_USEC={int((grace + STOP_MARGIN) * 1_000_000)}",
        )
        if self.listener is not None:
            await self.listener.stop_accepting()
        self._remove_socket_file()

    async def close(self) -> None:
        """Close the listener and remove the socket file we created (never an inherited one)."""
        if self.listener is not None:
            await self.listener.aclose()
        elif self.inherited is not None:
            self.inherited.sock.close()
        self._remove_socket_file()

    def _remove_socket_file(self) -> None:
        if self.listener is not None and not self.activated:
            self.config.socket.unlink(missing_ok=True)


def status_line(phase: str, counts: Mapping[str, int]) -> str:
    """``serving: 2 active, 5 waiting, 1 delayed, 0 failed`` (what systemctl status shows)."""
    order = ("active", "waiting", "delayed", "failed")
    return f"{phase}: " + ", ".join(f"{counts.get(k, 0)} {k}" for k in order)


@contextlib.contextmanager
def lifecycle(config: Config) -> Iterator[Lifecycle]:
    """Take the socket passed by the service manager (if any) and the instance locks.

    Under socket activation the effective socket is the inherited one, so
    ``life.config.socket`` names it. Raises UnsafePath if another user could
    change the socket's folder, DaemonBusy if another wizd holds the database
    or the socket, WizError if the inherited socket is unusable.
    """
    inherited = inherited_socket()
    try:
        if inherited is not None and inherited.path != config.socket:
            log.info("socket %s from the service manager replaces %s",
                     inherited.path, config.socket)
            config = dataclasses.replace(config, socket=inherited.path)
        # Before the lock file goes into it: a folder another user controls
        # is refused, not used.
        ensure_private_dir(config.socket.parent)
        with instance_locks(config.db_path, config.socket), \
                Notifier.from_environ() as notifier:
            yield Lifecycle(config, notifier, inherited)
    finally:
        if inherited is not None:
            inherited.sock.close()

