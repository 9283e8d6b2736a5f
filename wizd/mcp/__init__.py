"""MCP servers run by wizd: the manager that starts them on first use, keeps
them running in the daemon's task group, restarts one that died and stops
them all on shutdown (``manager``); the connection through the ``mcp``
package (``connect``); their failures are ``wizd.errors.McpServerError``.
Imports nothing above ``wizd.errors`` and ``wizd.objects``."""

from ..errors import McpServerError
from .manager import McpManager, ServerSpec, ToolInfo

__all__ = ["McpManager", "McpServerError", "ServerSpec", "ToolInfo"]
