"""Notification lines: an event encoded once, whatever the number of subscribers.

A ``message.created`` sent to 50 subscribers is JSON-encoded once (its params,
kept in ``Event.memo``); each subscriber only puts its line head, with its
subscription id, in front.
"""

from __future__ import annotations

import json
from typing import Any

from .hub import Event

# The same encoding as wizd.rpc.dispatch.encode: compact, UTF-8. One encoder
# for every event (json.dumps with these options builds one per call).
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def encode(value: Any) -> bytes:
    return _COMPACT.encode(value).encode()


def head(method: str, subscription: str) -> bytes:
    """A notification line up to its subscription id (the part one subscriber owns)."""
    return (b'{"jsonrpc":"2.0","method":' + encode(method)
            + b',"params":{"subscription":' + encode(subscription))


def params_tail(params: dict[str, Any]) -> bytes:
    """What follows the subscription id in a notification line with ``params``."""
    if not params:
        return b"}}\n"
    return b"," + encode(params)[1:] + b"}\n"


def event_tail(event: Event) -> bytes:
    """``params_tail`` of the event, computed by its first subscriber, reused by the others."""
    tail = event.memo.get("tail")
    if tail is None:
        tail = event.memo["tail"] = params_tail(event.params)
    return tail


def lagged_line(subscription: str, last_seq: int) -> bytes:
    return encode({"jsonrpc": "2.0", "method": "events.lagged",
                   "params": {"subscription": subscription, "last_seq": last_seq}}) + b"\n"
