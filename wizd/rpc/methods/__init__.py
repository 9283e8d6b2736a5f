"""Importing this package registers every RPC method with ``registry``."""

from ..registry import registry
from . import (
    agents,  # noqa: F401
    approvals,  # noqa: F401
    daemon,  # noqa: F401
    dms,  # noqa: F401
    events,  # noqa: F401
    jobs,  # noqa: F401
    mcp,  # noqa: F401
    messages,  # noqa: F401
    projects,  # noqa: F401
    providers,  # noqa: F401
    search,  # noqa: F401
    usage,  # noqa: F401
    users,  # noqa: F401
)

__all__ = ["registry"]
