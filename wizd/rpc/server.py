"""The JSON-RPC server: one task per client connection on a Unix socket.

Each connection reads newline-framed lines (at most ``max_line_bytes``) and
hands every line to a task of its own, so a slow call never holds up the
next one: a task that has answered its line waits for the next, and a new
one starts only when all are busy; responses are written whole, in the
order they finish (clients match them by id). Notifications for the connection's subscriptions are
written by tasks in the same connection scope and end with it.

Two bounds per connection: at most ``MAX_IN_FLIGHT`` lines read and not yet
answered (past that, reading waits: a client that sends without reading its
answers holds a bounded amount of the daemon's memory), and at most
``MAX_IN_FLIGHT`` calls running, whether pipelined or in batches (of at most
``max_batch`` calls): a batch waits for places like the same calls sent one by
one would, instead of starting all its calls at once.

Lines that become ready while a write is under way go out together in the
next one: one system call for many responses and notifications, where a
client with many calls in flight would otherwise cost a write (and a wake-up
of the client) per line.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import SocketAttribute, SocketStream
from anyio.streams.buffered import BufferedByteReceiveStream

from ..errors import DaemonBusy
from ..private_dir import ensure_private_dir
from ..services.runtime import Runtime
from .answering import Answerers
from .dispatch import dispatch, encode, line_too_long
from .registry import Registry

log = logging.getLogger(__name__)

_BROKEN = (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError)
# Per connection: calls running at once, and lines read but not yet answered.
MAX_IN_FLIGHT = 64


@dataclass(eq=False)
class ClientConnection:
    """One connected client, as RPC methods see it."""

    stream: SocketStream
    peer: str
    task_group: anyio.abc.TaskGroup | None = None
    subscriptions: dict[str, Any] = field(default_factory=dict)
    # fast_acquire: a free lock is taken without a trip through the scheduler;
    # the write right after it is the call's checkpoint.
    _send_lock: anyio.Lock = field(default_factory=lambda: anyio.Lock(fast_acquire=True))
    # Lines waiting for the next write, in the order send_line got them.
    _outbox: list[bytes] = field(default_factory=list)
    closed: bool = False

    async def send_line(self, line: bytes) -> bool:
        """Write one framed line (or several, joined); True once it is written,
        False (and closed) if the client has gone."""
        if self.closed:
            return False
        self._outbox.append(line)
        async with self._send_lock:
            # Whoever holds the lock writes everything queued so far; ours may
            # have gone out with an earlier holder's write already.
            if self._outbox and not self.closed:
                data = b"".join(self._outbox)
                self._outbox.clear()
                try:
                    await self.stream.send(data)
                except _BROKEN:
                    self.closed = True
        return not self.closed

    async def notify(self, method: str, params: dict[str, Any]) -> bool:
        return await self.send_line(encode({"jsonrpc": "2.0", "method": method, "params": params}))


@dataclass(frozen=True)
class Call:
    """The context of one RPC call (one request line): the daemon's runtime and
    the calling connection."""

    rt: Runtime
    conn: ClientConnection
    # Run once the response line has been written (or the client has gone):
    # e.g. a subscription's notifications must follow the response naming it.
    after_response: list[Callable[[], None]] = field(default_factory=list)


def peer_credentials(stream: SocketStream) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end of a Unix socket."""
    raw: socket.socket = stream.extra(SocketAttribute.raw_socket)
    creds = raw.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", creds)


def prepare_socket_path(path: Path) -> None:
    """Make the private folder and clear a stale socket left by a crashed daemon.

    Raises UnsafePath if another user could change the folder, DaemonBusy if a
    live daemon answers on ``path``.
    """
    ensure_private_dir(path.parent)
    if not path.exists() and not path.is_symlink():
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except OSError as exc:
        if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT, errno.ENOTSOCK):
            raise
        log.info("removing stale socket %s", path)
        path.unlink(missing_ok=True)
        return
    finally:
        probe.close()
    raise DaemonBusy(f"another wizd is already serving {path}")


async def open_listener(path: Path) -> anyio.abc.SocketListener:
    prepare_socket_path(path)
    listener = await anyio.create_unix_listener(path, mode=0o600)
    return listener


class RpcServer:
    def __init__(self, rt: Runtime, registry: Registry, listener: anyio.abc.SocketListener) -> None:
        self.rt = rt
        self.registry = registry
        self.listener = listener
        self.max_line = rt.config.max_line_bytes
        self.max_batch = rt.config.max_batch
        self.connections: set[ClientConnection] = set()

    async def run(
        self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve until cancelled. ``started`` once the listener accepts."""
        async with anyio.create_task_group() as tg:
            task_status.started()
            while True:
                try:
                    stream = await self.listener.accept()
                except OSError as exc:  # e.g. EMFILE: log and keep serving others
                    log.error("accept failed: %s", exc)
                    await anyio.sleep(0.1)
                    continue
                tg.start_soon(self._serve, stream)

    async def _serve(self, stream: SocketStream) -> None:
        async with stream:
            try:
                pid, uid, _gid = peer_credentials(stream)
            except OSError:
                return
            if uid not in (os.getuid(), 0):
                log.warning("refused connection from pid %d uid %d", pid, uid)
                return
            conn = ClientConnection(stream, peer=f"pid {pid}")
            self.connections.add(conn)
            try:
                async with anyio.create_task_group() as conn_tg:
                    conn.task_group = conn_tg
                    await self._read_requests(conn)
                    # Reading has ended and every request was answered:
                    # subscriptions end with the connection.
                    conn_tg.cancel_scope.cancel()
            finally:
                conn.closed = True
                self.connections.discard(conn)
                for sub in list(conn.subscriptions.values()):
                    self.rt.hub.detach(sub)

    async def _read_requests(self, conn: ClientConnection) -> None:
        reader = BufferedByteReceiveStream(conn.stream)
        # Calls running, pipelined or in batches (a batch holds its line's
        # answering task while its calls wait for places of their own).
        # fast_acquire: a free place is taken without a trip through the
        # scheduler, which every lone call would otherwise pay.
        calls = anyio.Semaphore(MAX_IN_FLIGHT, fast_acquire=True)
        # Lines go to answering tasks (answering.py), at most MAX_IN_FLIGHT
        # of them: past that, reading waits.
        async with anyio.create_task_group() as requests:
            answerers = Answerers(lambda line: self._answer(conn, line, calls), requests,
                                  MAX_IN_FLIGHT)
            try:
                while not conn.closed:
                    try:
                        line = await reader.receive_until(b"\n", self.max_line)
                    except anyio.DelimiterNotFound:
                        log.warning("%s sent a line over %d bytes; closing", conn.peer,
                                    self.max_line)
                        await conn.send_line(line_too_long(self.max_line))
                        break
                    except (anyio.EndOfStream, anyio.IncompleteRead):
                        break
                    except _BROKEN:
                        break
                    if line.strip():
                        await answerers.put(line)
            finally:
                # Reading has ended: the answering tasks end after their call.
                answerers.close()

    async def _answer(self, conn: ClientConnection, line: bytes, calls: anyio.Semaphore) -> None:
        try:
            call = Call(self.rt, conn)
            response = await dispatch(self.registry, call, line, max_batch=self.max_batch,
                                      in_flight=calls)
            if response is not None:
                await conn.send_line(response)
            for hook in call.after_response:
                hook()
        except Exception:
            # A bug of ours must cost this connection at most, never the daemon.
            log.exception("%s: unexpected error answering a request; closing", conn.peer)
            conn.closed = True
            with anyio.CancelScope(shield=True):
                await conn.stream.aclose()
