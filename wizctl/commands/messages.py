"""Messages: ``send``, ``log``, ``tail``, ``events`` and ``chat``.

These parse and hand over: following lives in ``wizctl.follow``, waiting for
replies in ``wizctl.replies``, the interactive loop in ``wizctl.chat``.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .. import follow, replies
from ..replies import check_content
from .base import Json, JsonLines, emit, state
from .usage import log_with_usage


def read_text(text: str) -> str:
    """``text``, or for ``-`` all of stdin without its final newline(s) (so
    ``echo hi | wizctl send ada -`` sends ``hi``). Raises BadParameter if stdin
    holds nothing, RpcError if it holds more than a message can (wizd's words)."""
    if text != "-":
        return check_content(text)
    read = sys.stdin.read().rstrip("\r\n")
    if not read:
        raise typer.BadParameter("nothing to send: stdin was empty", param_hint="'TEXT'")
    return check_content(read)


def send(ctx: typer.Context,
         conversation: Annotated[str, typer.Argument(
             help="A DM, an agent you have a DM with, #channel or project/channel.")],
         text: Annotated[str, typer.Argument(help="The message; '-' reads it from stdin.")],
         wait: Annotated[bool, typer.Option("--wait", help="Print the agents' replies.")] = False,
         timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait.")] = 300.0,
         json: Json = False) -> None:
    """Send a message; with --wait, print the agents' replies."""
    st = state(ctx)
    code = replies.send(st.connect, conversation, read_text(text), wait=wait, timeout=timeout,
                       json=json)
    raise typer.Exit(code)


def log(ctx: typer.Context, conversation: str,
        n: Annotated[int, typer.Option("-n", min=1, help="How many messages.")] = 20,
        usage: Annotated[bool, typer.Option(
            "--usage", help="Show each reply's model and tokens.")] = False,
        json: Json = False) -> None:
    """Print the last messages of a conversation."""
    st = state(ctx)
    if usage:
        log_with_usage(st, conversation, n, json)
        return
    if json:
        cid = st.lookup.conversation(conversation)["id"]
        emit(st.call("message.list", conversation_id=cid, limit=n), True, str)
        return
    follow.tail(st.connect, conversation, limit=n, follow=False, json=False)


def tail(ctx: typer.Context, conversation: str,
         n: Annotated[int, typer.Option("-n", min=0, help="How many messages first.")] = 10,
         follow_: Annotated[bool, typer.Option("-f", "--follow", help="Keep following.")] = False,
         json: JsonLines = False) -> None:
    """Print the last messages; -f follows new ones."""
    follow.tail(state(ctx).connect, conversation, limit=n, follow=follow_, json=json)


def events(ctx: typer.Context, json: JsonLines = False) -> None:
    """Print every notification of every conversation."""
    follow.events(state(ctx).connect, json=json)


def chat(ctx: typer.Context, agent: str,
         json: Annotated[bool, typer.Option("--json", help="Print replies as JSON lines.")] = False,
         ) -> None:
    """Talk with an agent: live on a terminal (/help lists commands, Ctrl-D leaves)."""
    from .. import chat as chat_mod  # and prompt_toolkit, on a terminal: only for chat

    raise typer.Exit(chat_mod.run(state(ctx).connect, agent, json=json))
