"""The entry point for completions: picks the provider implementation by type."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Awaitable, Callable
from typing import cast

import anyio
import anyio.to_thread

from ..errors import ProviderAuthError, ProviderBadRequest
from .base import ChatRequest, Completion, OnDelta, ProviderConfig
from .clients import ClientCache
from .keyfile import KeyFileError, read_key_file

__all__ = ["complete", "known_types"]

Complete = Callable[
    [ProviderConfig, ChatRequest, OnDelta, ClientCache | None], Awaitable[Completion]
]

# Provider type -> the module implementing it. Imported on first use: the
# openai SDK takes about a second to import, which every daemon start (and a
# socket-activated client's first call) would otherwise wait for.
_IMPLEMENTATIONS: dict[str, str] = {
    "openai": "openai_provider",
    "offline": "offline",
}


_LOADED: dict[str, Complete] = {}


def known_types() -> tuple[str, ...]:
    """The provider types ``complete`` accepts, e.g. for validating ``provider.create``."""
    return tuple(_IMPLEMENTATIONS)


async def _implementation(provider_type: str) -> Complete:
    module_name = _IMPLEMENTATIONS[provider_type]  # KeyError: unknown type
    implementation = _LOADED.get(provider_type)
    if implementation is None:
        # First use: import in a worker thread, off the event loop. The import
        # system's own lock makes concurrent first calls wait for the finished
        # module (reading sys.modules directly could see a half-imported one).
        module = await anyio.to_thread.run_sync(
            importlib.import_module, f"{__package__}.{module_name}"
        )
        implementation = _LOADED[provider_type] = cast(Complete, module.complete)
    return implementation


async def complete(
    provider: ProviderConfig,
    request: ChatRequest,
    on_delta: OnDelta,
    clients: ClientCache | None = None,
) -> Completion:
    """Stream a chat completion; awaits ``on_delta(piece)`` for every non-empty text piece,
    in order, and returns the whole reply.

    Raises ``wizd.errors.ProviderError`` subclasses only, never an SDK exception
    (what ``on_delta`` itself raises passes through untouched):

    - 401/403, or a key file (``provider.api_key_file``, read now) that is
      missing or not private: ``ProviderAuthError``; 400/404/422 (bad request,
      unknown model), or an unknown provider type: ``ProviderBadRequest``
      (neither is retried);
    - 429: ``ProviderRateLimited`` with ``retry_after`` seconds from
      ``retry-after-ms`` or ``Retry-After`` (delta-seconds or HTTP-date);
    - 5xx, connection refused or lost: ``ProviderError`` (retryable);
    - transport timeouts: ``ProviderTimeout``;
    - invalid JSON or shapes in the stream, or a stream that ended with no
      content and no finish reason: ``ProviderProtocolError``.

    Messages name the provider, the HTTP status and the provider's own error text;
    the API key is scrubbed from them. No retries and no time limit here: the
    caller wraps the call in ``anyio.move_on_after`` and decides about retrying.
    """
    try:
        implementation = await _implementation(provider.type)
    except KeyError:
        raise ProviderBadRequest(
            f"unknown provider type {provider.type!r} (known: {', '.join(known_types())})",
            provider=provider.name,
        ) from None
    if provider.api_key_file is not None:
        key = await _key_from_file(provider.api_key_file, provider.name)
        provider = dataclasses.replace(provider, api_key=key)
    return await implementation(provider, request, on_delta, clients)


async def _key_from_file(path: str, provider: str) -> str:
    # Read at every call, so a rotated key is used at once; in a worker
    # thread, because the file may sit on a slow disk.
    try:
        return await anyio.to_thread.run_sync(read_key_file, path)
    except KeyFileError as exc:
        raise ProviderAuthError(str(exc), provider=provider) from None
