"""Reusable OpenAI-compatible clients, one per (base URL, key), for one event loop.

A client per call pays for a new HTTP connection pool and client setup each
time (event-loop CPU, and a new TCP/TLS connection); a shared one
keeps connections alive between replies. The cache belongs to the daemon's
run: it is created at start and closed at shutdown, on the loop that used it.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    import openai

CLOSE_SECONDS = 1.0


def _key(base_url: str | None, api_key: str | None) -> tuple[str, str]:
    # The key itself is not kept in the cache's keys: a digest tells them apart.
    digest = hashlib.sha256((api_key or "").encode()).hexdigest()
    return (base_url or "", digest)


class ClientCache:
    def __init__(self) -> None:
        self._clients: dict[tuple[str, str], Any] = {}

    def get(self, base_url: str | None, api_key: str | None,
            make: Any) -> openai.AsyncOpenAI:
        """The cached client for (base_url, api_key), made with ``make()`` if new."""
        key = _key(base_url, api_key)
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = make()
        return client  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        """Close every client (shielded, bounded): at shutdown."""
        clients, self._clients = list(self._clients.values()), {}
        with anyio.CancelScope(shield=True):
            for client in clients:
                with anyio.move_on_after(CLOSE_SECONDS):
                    await client.close()
