"""Talking to LLMs: provider types, the completion entry point, context building."""

from .base import ChatMessage, ChatRequest, Completion, OnDelta, ProviderConfig
from .context import ContextMessage, build_context, system_prompt
from .providers import complete, known_types

__all__ = [
    "ChatMessage",
    "ChatRequest",
    "Completion",
    "ContextMessage",
    "OnDelta",
    "ProviderConfig",
    "build_context",
    "complete",
    "known_types",
    "system_prompt",
]
