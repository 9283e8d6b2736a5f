"""What wizd needs from systemd: readiness and health notification, socket activation."""

from .activation import InheritedSocket, inherited_socket, take_listen_fds
from .notify import Notifier, notify_address, watchdog_interval

__all__ = [
    "InheritedSocket",
    "Notifier",
    "inherited_socket",
    "notify_address",
    "take_listen_fds",
    "watchdog_interval",
]
