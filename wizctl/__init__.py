"""wizctl: the command line of wizd, and a blocking JSON-RPC client for scripts."""

from .client import (
    Client,
    ConnectionLost,
    DaemonNotRunning,
    Notification,
    ProtocolError,
    RpcError,
    RpcTimeout,
    UnsafeSocket,
    WizClientError,
    default_socket_path,
)

__all__ = [
    "Client",
    "ConnectionLost",
    "DaemonNotRunning",
    "Notification",
    "ProtocolError",
    "RpcError",
    "RpcTimeout",
    "UnsafeSocket",
    "WizClientError",
    "default_socket_path",
]
