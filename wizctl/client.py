"""A small blocking JSON-RPC 2.0 client for wizd, usable from scripts too.

    from wizctl.client import Client

    with Client() as wiz:                      # WIZ_SOCKET or the default path
        me = wiz.call("user.me")
        sub = wiz.subscribe(conversation_id=conv_id)
        for note in wiz.notifications():       # message.created, message.delta, ...
            print(note.method, note.params)

Transport: one Unix stream socket, one JSON message per line. Calls are
blocking and one at a time; responses are matched by ``id`` and the
notifications that arrive meanwhile are kept, in order, for
``notifications()`` / ``next_notification()``. A Client is not thread-safe:
use one per thread.

Only the standard library is imported here: ``wizctl`` must start fast.

Exceptions (all ``WizClientError``):

    WizClientError
    ├── DaemonNotRunning   nothing at the socket path, or nobody listening
    ├── UnsafeSocket       another user could have put the socket there: not used
    ├── ConnectionLost     the daemon closed or broke an open connection
    ├── ProtocolError      the daemon sent something that is not JSON-RPC
    ├── RpcTimeout         no answer within the timeout (also a TimeoutError)
    └── RpcError           the daemon answered with an error object
"""

from __future__ import annotations

import collections
import errno
import itertools
import json
import os
import socket
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

# JSON-RPC error codes of the protocol (wizd's errors.py holds the same table;
# wizctl never imports wizd).
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
NOT_FOUND = -32001
CONFLICT = -32002
PROVIDER_ERROR = -32003
STORAGE_UNAVAILABLE = -32004
TOOL_SERVER_ERROR = -32005

_DEFAULT: Any = object()  # "use the client's timeout"

# Linux sun_path holds 108 bytes including the terminating NUL.
_SUN_PATH_MAX = 107


class WizClientError(Exception):
    """Base of every error this client raises."""


class DaemonNotRunning(WizClientError):
    """Connecting failed because no daemon listens at ``path``."""

    def __init__(self, path: str, reason: str = "no socket at") -> None:
        super().__init__(
            f"wizd is not running ({reason} {path}); start it with `wizd` "
            "or `systemctl --user start wizd` (or point --socket / WIZ_SOCKET at it)"
        )
        self.path = path
        self.reason = reason


class UnsafeSocket(WizClientError):
    """The socket's folder could be changed by another user, who could have put
    an impostor there; the client refuses to connect."""

    def __init__(self, folder: str, problem: str) -> None:
        super().__init__(
            f"refusing to connect: the socket folder {folder} {problem}, so another user "
            "could have replaced wizd's socket. Remove it, or set XDG_RUNTIME_DIR "
            "(or --socket / WIZ_SOCKET) to a folder of your own"
        )
        self.folder = folder
        self.problem = problem


class ConnectionLost(WizClientError):
    """An open connection was closed or broken by the daemon's side."""

    def __init__(self, detail: str = "wizd closed the connection") -> None:
        super().__init__(detail)


class ProtocolError(WizClientError):
    """The daemon sent a line that is not a JSON-RPC message."""


class RpcTimeout(WizClientError, TimeoutError):
    """No response arrived in time."""


class RpcError(WizClientError):
    """An error response: ``code``, ``message`` and optional ``data``."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        self.code = code
        self.message = message
        self.data = data
        super().__init__(self.describe())

    def describe(self) -> str:
        """One line for a person: the message, then what ``data`` adds to it."""
        text = self.message
        data = self.data
        if isinstance(data, dict):
            # data.field / data.problem (invalid params), data.message (provider).
            extra = [str(data[k]) for k in ("field", "problem", "message") if data.get(k)]
            extra = [e for e in extra if e not in text]
            if extra:
                text = f"{text} ({': '.join(extra)})"
        elif data not in (None, "") and str(data) not in text:
            text = f"{text} ({data})"
        return text


@dataclass(frozen=True)
class Notification:
    """A JSON-RPC notification: ``method`` and by-name ``params``."""

    method: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def subscription(self) -> Any:
        return self.params.get("subscription")

    def to_json(self) -> dict[str, Any]:
        return {"method": self.method, "params": self.params}


def default_socket_path() -> str:
    """The socket wizd listens on: ``WIZ_SOCKET``, else ``$XDG_RUNTIME_DIR/wiz/wizd.sock``,
    else ``/tmp/wiz-$UID/wizd.sock``."""
    explicit = os.environ.get("WIZ_SOCKET")
    if explicit:
        return explicit
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        return os.path.join(runtime, "wiz", "wizd.sock")
    return f"/tmp/wiz-{os.getuid()}/wizd.sock"


def _check_folder(path: str) -> None:
    """Raise UnsafeSocket if the folder of socket ``path`` is a symbolic link,
    someone else's, or writable by other users (wizd refuses the same folders)."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        st = os.lstat(folder)
    except OSError:
        return  # missing: connecting says "not running"
    uid = os.geteuid()
    if stat.S_ISLNK(st.st_mode):
        problem = "is a symbolic link"
    elif st.st_uid != uid:
        problem = f"belongs to uid {st.st_uid}, not to you (uid {uid})"
    elif st.st_mode & 0o022:
        problem = f"can be written by other users (mode {stat.S_IMODE(st.st_mode):o})"
    else:
        return
    raise UnsafeSocket(folder, problem)


def _connect(path: str, timeout: float | None) -> socket.socket:
    """A connected socket. Raises DaemonNotRunning, UnsafeSocket, or WizClientError
    for other failures."""
    _check_folder(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        if len(os.fsencode(path)) > _SUN_PATH_MAX and os.path.isdir("/proc/self/fd"):
            # A deep path (pytest's tmp dirs) does not fit in sun_path; reach it
            # through a directory descriptor instead, which Linux resolves.
            dirfd = os.open(os.path.dirname(path) or ".", os.O_RDONLY | os.O_DIRECTORY)
            try:
                sock.connect(f"/proc/self/fd/{dirfd}/{os.path.basename(path)}")
            finally:
                os.close(dirfd)
        else:
            sock.connect(path)
    except (FileNotFoundError, NotADirectoryError):
        sock.close()
        raise DaemonNotRunning(path) from None
    except ConnectionRefusedError:
        sock.close()
        raise DaemonNotRunning(path, "nobody listens on") from None
    except PermissionError:
        sock.close()
        raise WizClientError(f"permission denied connecting to {path}") from None
    except TimeoutError:
        sock.close()
        raise RpcTimeout(f"timed out connecting to {path}") from None
    except OSError as exc:
        sock.close()
        raise WizClientError(f"cannot connect to {path}: {exc.strerror or exc}") from None
    sock.settimeout(None)
    return sock


class Client:
    """A blocking connection to wizd.

    ``socket_path``: where to connect (default: ``default_socket_path()``).
    ``timeout``: seconds to wait for each response (None: forever).
    Connects immediately; raises DaemonNotRunning if nobody listens.
    """

    def __init__(self, socket_path: str | os.PathLike[str] | None = None, *,
                 timeout: float | None = 60.0) -> None:
        self.socket_path = os.fspath(socket_path) if socket_path else default_socket_path()
        self.timeout = timeout
        self._sock: socket.socket | None = _connect(self.socket_path, timeout)
        self._buf = bytearray()
        self._ids = itertools.count(1)
        self._notes: collections.deque[Notification] = collections.deque()

    # -- lifecycle ---------------------------------------------------------
    def close(self) -> None:
        """Close the connection; later calls raise ConnectionLost. Idempotent."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    @property
    def closed(self) -> bool:
        return self._sock is None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- calls -------------------------------------------------------------
    def call(self, method: str, /, **params: Any) -> Any:
        """Call ``method`` with by-name ``params``; returns the result.

        Raises RpcError for an error response, RpcTimeout, ConnectionLost.
        """
        return self.request(method, params)

    def request(self, method: str, params: dict[str, Any] | None = None, *,
                timeout: float | None = _DEFAULT) -> Any:
        """Like ``call``, with params as a dict and a per-call ``timeout`` in seconds
        (None: wait forever; absent: the client's)."""
        rid = next(self._ids)
        msg: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params:
            msg["params"] = params
        self._send(msg)
        wait = self.timeout if timeout is _DEFAULT else timeout
        deadline = None if wait is None else time.monotonic() + wait
        while True:
            reply = self._read(deadline)
            if reply is None:
                raise RpcTimeout(f"no answer to {method} within {wait:g} s")
            if isinstance(reply, Notification):
                self._notes.append(reply)
                continue
            # A null id answers a request the daemon could not read (too long,
            # unparsable): with one call in flight, that is this one.
            if reply.get("id") not in (rid, None):
                continue  # a late answer to an earlier call that timed out
            if "error" in reply:
                err = reply["error"] if isinstance(reply["error"], dict) else {}
                raise RpcError(int(err.get("code", INTERNAL_ERROR)),
                               str(err.get("message", "unknown error")), err.get("data"))
            return reply.get("result")

    def subscribe(self, conversation_id: str | None = None,
                  after_seq: int | None = None) -> Any:
        """``events.subscribe``; returns the subscription id."""
        params: dict[str, Any] = {}
        if conversation_id is not None:
            params["conversation_id"] = conversation_id
        if after_seq is not None:
            params["after_seq"] = after_seq
        return self.request("events.subscribe", params)["subscription"]

    # -- notifications -----------------------------------------------------
    def next_notification(self, timeout: float | None = None) -> Notification | None:
        """The next notification, oldest first; None if none came within ``timeout``
        seconds (None: wait forever). Raises ConnectionLost when the daemon goes."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._notes:
                return self._notes.popleft()
            msg = self._read(deadline)
            if msg is None:
                return None
            if isinstance(msg, Notification):
                return msg
            # A response nobody waits for (its call timed out): drop it.

    def notifications(self) -> Iterator[Notification]:
        """Every notification, blocking; ends with ConnectionLost when the daemon goes."""
        while True:
            note = self.next_notification()
            if note is not None:
                yield note

    # -- framing -----------------------------------------------------------
    def _send(self, msg: dict[str, Any]) -> None:
        if self._sock is None:
            raise ConnectionLost("the connection is closed")
        line = json.dumps(msg, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
        try:
            self._sock.sendall(line)
        except OSError as exc:
            self.close()
            raise ConnectionLost(f"lost the connection to wizd ({exc.strerror or exc})") from None

    def _read(self, deadline: float | None) -> dict[str, Any] | Notification | None:
        """The next message (a response dict or a Notification), or None at the deadline."""
        while True:
            end = self._buf.find(b"\n")
            if end >= 0:
                line = bytes(self._buf[:end])
                del self._buf[: end + 1]
                msg = self._parse(line) if line.strip() else None
                if msg is not None:
                    return msg
                continue
            if self._sock is None:
                raise ConnectionLost("the connection is closed")
            if deadline is None:
                self._sock.settimeout(None)
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._sock.settimeout(remaining)
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                return None
            except OSError as exc:
                self.close()
                if exc.errno in (errno.ECONNRESET, errno.EPIPE):
                    raise ConnectionLost() from None
                raise ConnectionLost(f"lost the connection to wizd ({exc})") from None
            if not chunk:
                self.close()
                raise ConnectionLost()
            self._buf += chunk

    def _parse(self, line: bytes) -> dict[str, Any] | Notification | None:
        try:
            msg = json.loads(line)
        except ValueError:
            raise ProtocolError(f"wizd sent a line that is not JSON: {line[:80]!r}") from None
        if isinstance(msg, list):
            # Batch replies only come back for batch requests, which this
            # client never sends; keep the notifications of a stray batch.
            for item in msg:
                if isinstance(item, dict) and "method" in item and "id" not in item:
                    self._notes.append(_note(item))
            return None
        if not isinstance(msg, dict):
            raise ProtocolError(f"wizd sent a line that is not a JSON-RPC message: {line[:80]!r}")
        if "method" in msg and "id" not in msg:
            return _note(msg)
        return msg


def _note(msg: dict[str, Any]) -> Notification:
    params = msg.get("params")
    return Notification(str(msg["method"]), params if isinstance(params, dict) else {})
