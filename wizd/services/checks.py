"""Input checks shared by the services: each raises InvalidInput naming the field.

The RPC layer already checks types; these check what a type cannot say (a
name that is only blanks, a number out of range).
"""

from __future__ import annotations

import re

from ..errors import InvalidInput

MAX_NAME = 100
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# What a one-line label must not hold: C0 and C1 controls (NUL, newline,
# escape ...), line and paragraph separators, and the bidirectional overrides
# that make text read differently from how it is stored ("Trojan Source").
# Names end up in logs, tables and terminals, where each of these misleads.
_NOT_IN_NAMES = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def name(field: str, value: str, *, max_len: int = MAX_NAME) -> str:
    """``value`` without surrounding blanks; refuses an empty or over-long one,
    and one holding a control character (see ``_NOT_IN_NAMES``)."""
    value = value.strip()
    if not value:
        raise InvalidInput(field, "must not be empty")
    if len(value) > max_len:
        raise InvalidInput(field, f"longer than {max_len} characters")
    bad = _NOT_IN_NAMES.search(value)
    if bad is not None:
        raise InvalidInput(field,
                           f"must not contain control characters (found U+{ord(bad[0]):04X})")
    return value


def text(field: str, value: str, *, max_len: int) -> str:
    """Free text (blanks kept); refuses an over-long one, and one holding NUL
    (no text column of PostgreSQL takes it; nothing a person writes needs it)."""
    if len(value) > max_len:
        raise InvalidInput(field, f"longer than {max_len} characters")
    if "\x00" in value:
        raise InvalidInput(field, "must not contain NUL (U+0000)")
    return value


def env_name(field: str, value: str) -> str:
    if not _ENV_NAME.match(value):
        raise InvalidInput(field, "must be an environment variable name such as OPENAI_API_KEY")
    return value


def base_url(field: str, value: str) -> str:
    value = value.strip().rstrip("/")
    if not value.startswith(("http://", "https://")) or len(value) <= len("https://"):
        raise InvalidInput(field, "must be an http:// or https:// URL")
    return value


def number_range(field: str, value: float, low: float, high: float) -> float:
    if not low <= value <= high:
        raise InvalidInput(field, f"must be between {low:g} and {high:g}")
    return value
