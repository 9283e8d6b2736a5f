"""The provider entry point and the pure helpers: Retry-After parsing, secret scrubbing."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest

from wizd.errors import ProviderBadRequest
from wizd.llm import ChatMessage, ChatRequest, ProviderConfig, complete, known_types
from wizd.llm.base import parse_retry_after, scrub_secret

NOW = 1_700_000_000.0


def http_date(timestamp: float) -> str:
    return format_datetime(datetime.fromtimestamp(timestamp, UTC), usegmt=True)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "12"}, 12.0),
        ({"retry-after": " 1.5 "}, 1.5),
        ({"Retry-After-Ms": "250"}, 0.25),
        ({"retry-after-ms": "bogus", "retry-after": "3"}, 3.0),
        ({"Retry-After": http_date(NOW + 90)}, 90.0),
        ({"Retry-After": http_date(NOW - 90)}, 0.0),
        ({"Retry-After": http_date(NOW + 60).replace("GMT", "-0000")}, 60.0),
        ({"Retry-After": "-5"}, None),
        ({"Retry-After": "nan"}, None),
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, now=NOW) == expected


@pytest.mark.parametrize(
    ("text", "secret", "expected"),
    [
        ("key my-secret-key was wrong", "my-secret-key", "key [redacted] was wrong"),
        (
            "Incorrect API key provided: sk-abc***wxyz. See docs",
            None,
            "Incorrect API key provided: [redacted]. See docs",
        ),
        ("Authorization: Bearer abc.def", None, "Authorization: [redacted]"),
        ("nothing to hide", "", "nothing to hide"),
        ("ask-me and desk-top are words", None, "ask-me and desk-top are words"),
    ],
)
def test_scrub_secret(text: str, secret: str | None, expected: str) -> None:
    assert scrub_secret(text, secret) == expected


def test_known_types() -> None:
    assert known_types() == ("openai", "offline")


@pytest.mark.anyio
async def test_an_unknown_type_is_a_bad_request(deltas: Any) -> None:
    provider = ProviderConfig("p", "weird", "carrier-pigeon", None, "m", api_key="sk-secret")
    with pytest.raises(ProviderBadRequest) as info:
        await complete(provider, ChatRequest("m", (ChatMessage("user", "hi"),)), deltas)
    assert "carrier-pigeon" in str(info.value)
    assert not info.value.retryable
