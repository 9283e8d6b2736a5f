"""``wizctl usage`` (tokens summed per agent and model) and the ``--usage``
form of ``wizctl log`` (each reply with its model and tokens)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .. import table, text, view
from ..objects import ReplyTokens, UsageSummary
from ..since import HELP as SINCE_HELP
from .base import Json, State, color, emit, state
from .search import since_option


def usage(ctx: typer.Context,
          agent: Annotated[str | None, typer.Option(help="Only this agent's replies.")] = None,
          since: Annotated[str | None, typer.Option(help=SINCE_HELP)] = None,
          json: Json = False) -> None:
    """Tokens the providers counted for the agents' replies, per agent and model."""
    st = state(ctx)
    since_ms = since_option(since)
    agent_id = st.lookup.agent(agent)["id"] if agent is not None else None
    emit(st.call("usage.summary", agent=agent_id, since=since_ms), json, _table)


def _table(result: UsageSummary) -> str:
    rows = result.get("usage") or []
    if not rows:
        return "no replies with usage yet"
    cells = [(r["agent_name"], r["model"], r["replies"], r["prompt_tokens"],
              r["completion_tokens"], r["unreported"] or "") for r in rows]
    if len(rows) > 1:
        cells.append(("total", "", sum(r["replies"] for r in rows),
                      sum(r["prompt_tokens"] for r in rows),
                      sum(r["completion_tokens"] for r in rows),
                      sum(r["unreported"] for r in rows) or ""))
    return table.table(("agent", "model", "replies", "prompt", "completion", "unreported"),
                        cells, color=color())


def log_with_usage(st: State, conversation: str, n: int, json: bool) -> None:
    """``wizctl log --usage``: the last ``n`` messages, each reply followed by its
    model and tokens (with ``json``: ``usage`` added to each message, null if none)."""
    cid = st.lookup.conversation(conversation)["id"]
    msgs = st.call("message.list", conversation_id=cid, limit=n)["messages"]
    found = st.call("usage.messages", message_ids=[m["id"] for m in msgs])["usage"]
    if json:
        emit({"messages": [{**m, "usage": found.get(m["id"])} for m in msgs]}, True, str)
        return
    paint = color()
    for msg in msgs:
        line = view.message_line(msg, st.lookup.user_name(msg.get("author_id")), color=paint)
        tokens = found.get(msg["id"])
        if tokens is not None:
            line += "\n" + text.paint(f"  [{_tokens(tokens)}]", "dim", paint)
        sys.stdout.write(line + "\n")


def _tokens(t: ReplyTokens) -> str:
    if t.get("prompt_tokens") is None and t.get("completion_tokens") is None:
        return f"{t['model']}: no usage reported"
    return (f"{t['model']}: {t.get('prompt_tokens') or 0} prompt + "
            f"{t.get('completion_tokens') or 0} completion tokens")
