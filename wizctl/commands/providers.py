"""``wizctl provider ...``: LLM providers (OpenAI-compatible endpoints).

A provider's key is never printed: only how it gets one (stored, ``$VAR``, a
file's path, none).
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable
from typing import Annotated, Literal

import typer

from .. import table, text
from ..objects import Provider
from .base import Json, by_ref, color, emit, state, sub_app

app = sub_app("LLM providers (OpenAI-compatible endpoints).")


def read_key(value: str | None) -> str | None:
    """``-`` means: ask (hidden) on a terminal, else read one line from stdin."""
    if value != "-":
        return value
    if sys.stdin.isatty():
        return getpass.getpass("API key: ")
    return sys.stdin.readline().strip()


def key_file_path(value: str | None) -> str | None:
    """``value`` with ``~`` expanded and made absolute, here: the daemon takes
    paths as given, and cannot know whose ``~`` or which working folder was
    meant. ``""`` (remove the setting) and None pass through."""
    if not value:
        return value
    return os.path.abspath(os.path.expanduser(value))


def _key(p: Provider) -> str:
    """How a provider gets its key (never the key itself)."""
    if p.get("has_api_key"):
        return "stored"
    if p.get("api_key_env"):
        return f"${p['api_key_env']}"
    return str(p["api_key_file"]) if p.get("api_key_file") else "none"


def _type(p: Provider) -> str:
    return f"{p.get('type')} (no stream)" if p.get("stream") is False else str(p.get("type"))


def _table(providers: list[Provider]) -> str:
    rows = [(p.get("name"), _type(p), p.get("default_model"), p.get("base_url"), _key(p),
             "*" if p.get("is_default") else "", text.short_id(p.get("id"))) for p in providers]
    return table.table(("name", "type", "model", "base url", "key", "default", "id"), rows,
                        color=color())


def _line(verb: str) -> Callable[[Provider], str]:
    return lambda p: (f"{verb} provider {p.get('name')} ({text.short_id(p.get('id'))})"
                      + (", the default one" if p.get("is_default") else ""))


KEY_FILE_HELP = ("Read the key from this file when a job runs (~ is expanded). It must "
                 "belong to wizd's user and be private: chmod 600 FILE.")
KEY_ENV_HELP = "Read the key from this environment variable of wizd when a job runs."
NO_STREAM_HELP = ("Ask the server for one answer instead of a stream (for servers that "
                  "cannot stream; the reply then shows up whole).")
KEY_HELP = ("The key itself ('-' to type it hidden); stored in wizd's database, so a copy "
            "of the database holds it. Prefer --api-key-file or --api-key-env.")


@app.command("add")
def add(
    ctx: typer.Context, name: str,
    type: Annotated[Literal["openai", "offline"], typer.Option("--type")] = "openai",
    base_url: Annotated[str | None, typer.Option(help="e.g. http://localhost:11434/v1")] = None,
    api_key_file: Annotated[str | None, typer.Option(metavar="FILE", help=KEY_FILE_HELP)] = None,
    api_key_env: Annotated[str | None, typer.Option(metavar="VAR", help=KEY_ENV_HELP)] = None,
    api_key: Annotated[str | None, typer.Option(help=KEY_HELP)] = None,
    model: Annotated[str, typer.Option(help="The default model.")] = ...,  # type: ignore[assignment]
    default: Annotated[bool, typer.Option("--default", help="Make it the default.")] = False,
    no_stream: Annotated[bool, typer.Option("--no-stream", help=NO_STREAM_HELP)] = False,
    json: Json = False,
) -> None:
    """Add an LLM provider.

    Give its key with at most one of --api-key-file (preferred), --api-key-env
    or --api-key: the first two keep the key out of the database, so a copy of
    the database file holds no key.
    """
    result = state(ctx).call("provider.create", name=name, type=type, base_url=base_url,
                             api_key=read_key(api_key), api_key_env=api_key_env,
                             api_key_file=key_file_path(api_key_file),
                             default_model=model, is_default=default or None,
                             stream=False if no_stream else None)
    emit(result, json, _line("added"))


@app.command("list")
def list_(ctx: typer.Context, json: Json = False) -> None:
    """List providers."""
    emit(state(ctx).call("provider.list"), json, lambda r: _table(r["providers"]))


@app.command("update")
def update(
    ctx: typer.Context, provider: str,
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    base_url: Annotated[str | None, typer.Option()] = None,
    api_key_file: Annotated[str | None, typer.Option(
        metavar="FILE", help=KEY_FILE_HELP + " '' removes it.")] = None,
    api_key_env: Annotated[str | None, typer.Option(
        metavar="VAR", help=KEY_ENV_HELP + " '' removes it.")] = None,
    api_key: Annotated[str | None, typer.Option(help=KEY_HELP + " '' removes it.")] = None,
    model: Annotated[str | None, typer.Option(help="The default model.")] = None,
    stream: Annotated[bool | None, typer.Option(
        "--stream/--no-stream", help=NO_STREAM_HELP, show_default=False)] = None,
    json: Json = False,
) -> None:
    """Change a provider. Setting one of --api-key-file, --api-key-env and
    --api-key removes the other two."""
    st = state(ctx)
    pid = st.lookup.provider(provider)["id"]
    result = st.call("provider.update", id=pid, name=name, base_url=base_url,
                     api_key=read_key(api_key), api_key_env=api_key_env,
                     api_key_file=key_file_path(api_key_file), default_model=model,
                     stream=stream)
    emit(result, json, _line("updated"))


by_ref(app, "rm", "provider.delete", "provider", "Delete a provider.",
       lambda st: _line("deleted"))
by_ref(app, "default", "provider.set_default", "provider",
       "Make a provider the default for new agents.", lambda st: _line("set"))
