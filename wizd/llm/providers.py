"""The entry point for completions: picks the provider implementation by type."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..errors import ProviderBadRequest
from . import offline, openai_provider
from .base import ChatRequest, Completion, OnDelta, ProviderConfig

__all__ = ["complete", "known_types"]

Complete = Callable[[ProviderConfig, ChatRequest, OnDelta], Awaitable[Completion]]

_IMPLEMENTATIONS: dict[str, Complete] = {
    "openai": openai_provider.complete,
    "offline": offline.complete,
}


def known_types() -> tuple[str, ...]:
    """The provider types ``complete`` accepts, e.g. for validating ``provider.create``."""
    return tuple(_IMPLEMENTATIONS)


async def complete(provider: ProviderConfig, request: ChatRequest, on_delta: OnDelta) -> Completion:
    """Stream a chat completion; awaits ``on_delta(piece)`` for every non-empty text piece,
    in order, and returns the whole reply.

    Raises ``wizd.errors.ProviderError`` subclasses only, never an SDK exception
    (what ``on_delta`` itself raises passes through untouched):

    - 401/403: ``ProviderAuthError``; 400/404/422 (bad request, unknown model),
      or an unknown provider type: ``ProviderBadRequest`` (neither is retried);
    - 429: ``ProviderRateLimited`` with ``retry_after`` seconds from
      ``retry-after-ms`` or ``Retry-After`` (delta-seconds or HTTP-date);
    - 5xx, connection refused or lost: ``ProviderError`` (retryable);
    - transport timeouts: ``ProviderTimeout``;
    - invalid JSON or shapes in the stream, or a stream that ended with no
      content and no finish reason: ``ProviderProtocolError``.

    Messages name the provider, the HTTP status and the provider's own error text;
    the API key is scrubbed from them. No retries and no time limit here: the
    caller wraps the call in ``anyio.fail_after`` and decides about retrying.
    """
    try:
        implementation = _IMPLEMENTATIONS[provider.type]
    except KeyError:
        raise ProviderBadRequest(
            f"unknown provider type {provider.type!r} (known: {', '.join(known_types())})",
            provider=provider.name,
        ) from None
    return await implementation(provider, request, on_delta)
