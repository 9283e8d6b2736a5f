"""A tiny stdio MCP server that ships with wiz, to try tools on a fresh
machine: read-only access to one folder.

    wizctl mcp add files --idempotent '*' -- python3 -m wizd.mcp.demo_server ~/notes

Tools: ``list_dir`` (the entries of a folder, ``/`` after sub-folders) and
``read_file`` (a text file, at most 64 KiB of it). Paths are relative to the
folder given; a path that leads outside it (``..``, a symbolic link) is
refused. Written with the ``mcp`` package's server API; nothing of wizd's is
imported.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

MAX_READ = 64 * 1024


def build(root: Path) -> MCPServer[Any]:
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    root = root.resolve()
    server: MCPServer[Any] = MCPServer("wiz-demo-files")

    def inside(path: str) -> Path:
        found = (root / path).resolve()
        if found != root and root not in found.parents:
            raise ToolError(f"{path!r} is outside the folder this server shows")
        return found

    @server.tool()
    def list_dir(path: str = ".") -> str:
        """The entries of a folder (sub-folders end in /)."""
        folder = inside(path)
        try:
            return "\n".join(sorted(p.name + ("/" if p.is_dir() else "")
                                    for p in folder.iterdir()))
        except OSError as exc:
            raise ToolError(f"{path}: {exc.strerror}") from None

    @server.tool()
    def read_file(path: str) -> str:
        """A text file's content (at most 64 KiB)."""
        try:
            with inside(path).open("rb") as f:
                data = f.read(MAX_READ + 1)
        except OSError as exc:
            raise ToolError(f"{path}: {exc.strerror}") from None
        text = data[:MAX_READ].decode("utf-8", "replace")
        return text + ("\n[cut at 64 KiB]" if len(data) > MAX_READ else "")

    return server


def main() -> None:
    if len(sys.argv) != 2 or not Path(sys.argv[1]).is_dir():
        sys.exit("usage: python3 -m wizd.mcp.demo_server FOLDER")
    build(Path(sys.argv[1])).run("stdio")


if __name__ == "__main__":
    main()
