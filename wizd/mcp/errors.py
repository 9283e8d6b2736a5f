"""What goes wrong with an MCP server, said in one sentence naming the server."""

from __future__ import annotations

from ..errors import WizError


class McpServerError(WizError):
    """An MCP server could not be started, answered nothing in time, or failed.

    The message names the server and says what happened; a server that could
    not start also shows its command (never its environment).
    """

    def __init__(self, server: str, problem: str) -> None:
        super().__init__(f"MCP server {server}: {problem}",
                         data={"server": server, "problem": problem})
        self.server = server
        self.problem = problem
