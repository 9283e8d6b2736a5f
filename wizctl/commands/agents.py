"""``wizctl agent ...``: agents, an LLM persona with a role, a backstory and a goal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from .. import table, text
from ..objects import Agent, AgentList
from .base import Json, State, by_ref, color, emit, state, status_style, sub_app

app = sub_app("Agents: an LLM persona with a role, a backstory and a goal.")


def _line(verb: str) -> Callable[[Agent], str]:
    return lambda a: (f"{verb} agent {a.get('name')} ({text.short_id(a.get('id'))}), "
                      f"{a.get('status')}")


TOOLS_HELP = ("The MCP tools it may call: server.tool patterns, comma-separated "
              "('fs.*,git.status').")


def _patterns(tools: str | None, no_tools: bool = False) -> list[str] | None:
    if no_tools:
        if tools is not None:
            raise typer.BadParameter("give --tools or --no-tools, not both",
                                     param_hint="'--no-tools'")
        return []
    if tools is None:
        return None
    return [p.strip() for p in tools.split(",") if p.strip()]


def _fields(st: State, a: Agent) -> str:
    keys = ("id", "name", "status", "role", "goal", "backstory", "model", "temperature",
            "max_tokens", "tools", "max_steps", "system_prompt")
    pairs = [(k, a.get(k)) for k in keys if k in a]
    pairs = [(k, (", ".join(v) or "-") if k == "tools" and isinstance(v, list) else v)
             for k, v in pairs]
    pairs.insert(4, ("provider", st.lookup.provider_name(a.get("provider_id"))))
    pairs.append(("created", text.when(a.get("created_at"))))
    return text.fields(pairs, color=color())


@app.command("create")
def create(
    ctx: typer.Context, name: str,
    role: Annotated[str, typer.Option()] = ...,  # type: ignore[assignment]
    backstory: Annotated[str, typer.Option()] = ...,  # type: ignore[assignment]
    goal: Annotated[str, typer.Option()] = ...,  # type: ignore[assignment]
    provider: Annotated[str | None, typer.Option(help="Name or id [default: the default]")] = None,
    model: Annotated[str | None, typer.Option(help="[default: the provider's]")] = None,
    temperature: Annotated[float | None, typer.Option()] = None,
    max_tokens: Annotated[int | None, typer.Option()] = None,
    tools: Annotated[str | None, typer.Option(metavar="PATTERNS", help=TOOLS_HELP)] = None,
    max_steps: Annotated[int | None, typer.Option(
        help="The most tool steps in one reply [default: 10]")] = None,
    json: Json = False,
) -> None:
    """Create an agent."""
    st = state(ctx)
    pid = st.lookup.provider(provider)["id"] if provider else None
    result = st.call("agent.create", name=name, role=role, backstory=backstory, goal=goal,
                     provider_id=pid, model=model, temperature=temperature, max_tokens=max_tokens,
                     tools=_patterns(tools), max_steps=max_steps)
    emit(result, json, _line("created"))


@app.command("list")
def list_(ctx: typer.Context, json: Json = False) -> None:
    """List agents."""
    st = state(ctx)

    def human(r: AgentList) -> str:
        rows = [(a.get("name"), a.get("status"), text.one_line(a.get("role"), 40),
                 st.lookup.provider_name(a.get("provider_id")), a.get("model"),
                 text.short_id(a.get("id"))) for a in r["agents"]]
        return table.table(("name", "status", "role", "provider", "model", "id"), rows,
                            color=color(), styles=status_style(1))
    emit(st.call("agent.list"), json, human)


@app.command("update")
def update(
    ctx: typer.Context, agent: str,
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    role: Annotated[str | None, typer.Option()] = None,
    backstory: Annotated[str | None, typer.Option()] = None,
    goal: Annotated[str | None, typer.Option()] = None,
    provider: Annotated[str | None, typer.Option()] = None,
    model: Annotated[str | None, typer.Option()] = None,
    temperature: Annotated[float | None, typer.Option()] = None,
    max_tokens: Annotated[int | None, typer.Option()] = None,
    tools: Annotated[str | None, typer.Option(metavar="PATTERNS", help=TOOLS_HELP)] = None,
    no_tools: Annotated[bool, typer.Option("--no-tools", help="Take every tool away.")] = False,
    max_steps: Annotated[int | None, typer.Option(
        help="The most tool steps in one reply.")] = None,
    json: Json = False,
) -> None:
    """Change an agent.

    \b
      wizctl agent update ada --tools 'fs.*,git.status'
      wizctl agent update ada --no-tools"""
    st = state(ctx)
    aid = st.lookup.agent(agent)["id"]
    pid = st.lookup.provider(provider)["id"] if provider else None
    result = st.call("agent.update", id=aid, name=name, role=role, backstory=backstory,
                     goal=goal, provider_id=pid, model=model, temperature=temperature,
                     max_tokens=max_tokens, tools=_patterns(tools, no_tools),
                     max_steps=max_steps)
    emit(result, json, _line("updated"))


by_ref(app, "show", "agent.get", "agent", "Show one agent.",
       lambda st: lambda a: _fields(st, a))
by_ref(app, "activate", "agent.activate", "agent", "Let an agent reply again.",
       lambda st: _line("activated"))
by_ref(app, "deactivate", "agent.deactivate", "agent", "Stop an agent from replying.",
       lambda st: _line("deactivated"))
