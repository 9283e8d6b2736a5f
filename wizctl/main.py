"""``wizctl``: the command line of wizd. Parses, calls the client, renders.

One sub-app per noun. Every command takes ``--json`` for scripts; people get
tables and names. ``main()`` is the one place where errors become a single
``wizctl: error: ...`` line on stderr and an exit code — never a traceback.

Imports stay light (stdlib + typer): ``wizctl --help`` must be quick.
"""

from __future__ import annotations

import getpass
import importlib.util
import sys
from collections.abc import Callable
from typing import Annotated, Any, Literal

import typer

from . import follow, render
from .client import Client, RpcError, WizClientError
from .resolve import Lookup, ResolveError

_APP = dict(no_args_is_help=True, rich_markup_mode=None, pretty_exceptions_enable=False,
            add_completion=False)
app = typer.Typer(name="wizctl", help="Talk to wizd, the local LLM agents daemon.", **_APP)  # type: ignore[arg-type]


def _sub(name: str, help: str) -> typer.Typer:
    sub = typer.Typer(help=help, **_APP)  # type: ignore[arg-type]
    app.add_typer(sub, name=name)
    return sub


provider_app = _sub("provider", "LLM providers (OpenAI-compatible endpoints).")
agent_app = _sub("agent", "Agents: an LLM persona with a role, a backstory and a goal.")
dm_app = _sub("dm", "Direct-message conversations.")
project_app = _sub("project", "Projects, which hold channels.")
channel_app = _sub("channel", "Channels of a project.")
job_app = _sub("job", "One job of the queue.")
queue_app = _sub("queue", "The job queue as a whole.")

Json = Annotated[bool, typer.Option("--json", help="Print the raw result as JSON.")]


class State:
    """Per-run context: where the daemon is, one connection, one Lookup."""

    def __init__(self, socket: str | None) -> None:
        self.socket = socket
        self._client: Client | None = None
        self._lookup: Lookup | None = None

    def connect(self) -> Client:
        return Client(self.socket)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = self.connect()
        return self._client

    def call(self, method: str, /, **params: Any) -> Any:
        """``method`` with the params that are not None (unset options are not sent)."""
        return self.client.call(method, **{k: v for k, v in params.items() if v is not None})

    @property
    def lookup(self) -> Lookup:
        if self._lookup is None:
            self._lookup = Lookup(self.call)
        return self._lookup


def _state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    assert isinstance(obj, State)
    return obj


def _emit(result: Any, as_json: bool, human: Callable[[Any], str]) -> None:
    """Print ``result`` as JSON for scripts, else as ``human(result)``."""
    sys.stdout.write((render.pretty_json(result) if as_json else human(result)) + "\n")


def _color() -> bool:
    return render.use_color(sys.stdout)


def _status_style(column: int) -> Callable[[int, Any], str | None]:
    return lambda i, v: render.STATUS_COLORS.get(v) if i == column else None


def _by_ref(sub: typer.Typer, name: str, method: str, kind: str, help: str,
            human: Callable[[State], Callable[[Any], str]]) -> None:
    """Register ``<noun> NAME REF``: resolve REF as a ``kind``, call ``method(id=...)``,
    print ``human(state)(result)``."""
    def command(ctx: typer.Context,
                ref: str = typer.Argument(..., metavar=kind.upper(), help="Name, id or id prefix."),
                json: bool = typer.Option(False, "--json", help="Print the raw result as JSON."),
                ) -> None:
        st = _state(ctx)
        ident = st.lookup.job_id(ref) if kind == "job" else getattr(st.lookup, kind)(ref)["id"]
        _emit(st.call(method, id=ident), json, human(st))
    command.__doc__ = help
    sub.command(name)(command)


@app.callback()
def _root(ctx: typer.Context,
          socket: Annotated[str | None, typer.Option(
              "--socket", envvar="WIZ_SOCKET", metavar="PATH",
              help="wizd's socket [default: $XDG_RUNTIME_DIR/wiz/wizd.sock]")] = None) -> None:
    ctx.obj = State(socket)
    ctx.call_on_close(ctx.obj.close)


# -- status --------------------------------------------------------------------

def _duration(ms: Any) -> str:
    if not isinstance(ms, int | float):
        return "-"
    s = int(ms // 1000)
    d, h, m = s // 86400, s // 3600 % 24, s // 60 % 60
    parts = [f"{d}d"] * bool(d) + [f"{h}h"] * bool(h) + [f"{m}m"] * bool(m) + [f"{s % 60}s"]
    return " ".join(parts)


@app.command()
def status(ctx: typer.Context, json: Json = False) -> None:
    """Is wizd running, and how is its queue."""
    def human(r: dict[str, Any]) -> str:
        queue = r.get("queue") or {}
        return render.fields([
            ("wizd", f"{r.get('version')} (pid {r.get('pid')}, "
                     f"up {_duration(r.get('uptime_ms'))})"),
            ("socket", r.get("socket")), ("database", r.get("db")),
            ("queue", ", ".join(f"{k} {v}" for k, v in queue.items()) or "-"),
        ], color=_color())
    _emit(_state(ctx).call("daemon.status"), json, human)


# -- providers -------------------------------------------------------------------

def _api_key(value: str | None) -> str | None:
    """``-`` means: ask (hidden) on a terminal, else read one line from stdin."""
    if value != "-":
        return value
    if sys.stdin.isatty():
        return getpass.getpass("API key: ")
    return sys.stdin.readline().strip()


def _key(p: dict[str, Any]) -> str:
    """How a provider gets its key (never the key itself)."""
    if p.get("has_api_key"):
        return "stored"
    return f"${p['api_key_env']}" if p.get("api_key_env") else "none"


def _provider_table(providers: list[dict[str, Any]]) -> str:
    rows = [(p.get("name"), p.get("type"), p.get("default_model"), p.get("base_url"), _key(p),
             "*" if p.get("is_default") else "", render.short_id(p.get("id"))) for p in providers]
    return render.table(("name", "type", "model", "base url", "key", "default", "id"), rows,
                        color=_color())


def _provider_line(verb: str) -> Callable[[dict[str, Any]], str]:
    return lambda p: (f"{verb} provider {p.get('name')} ({render.short_id(p.get('id'))})"
                      + (", the default one" if p.get("is_default") else ""))


@provider_app.command("add")
def provider_add(
    ctx: typer.Context, name: str,
    type: Annotated[Literal["openai", "offline"], typer.Option("--type")] = "openai",
    base_url: Annotated[str | None, typer.Option(help="e.g. http://localhost:11434/v1")] = None,
    api_key_env: Annotated[str | None, typer.Option(
        metavar="VAR", help="Read the key from this environment variable (of wizd).")] = None,
    api_key: Annotated[str | None, typer.Option(help="The key; '-' to type it hidden.")] = None,
    model: Annotated[str, typer.Option(help="The default model.")] = ...,  # type: ignore[assignment]
    default: Annotated[bool, typer.Option("--default", help="Make it the default.")] = False,
    json: Json = False,
) -> None:
    """Add an LLM provider."""
    st = _state(ctx)
    result = st.call("provider.create", name=name, type=type, base_url=base_url,
                     api_key=_api_key(api_key), api_key_env=api_key_env, default_model=model,
                     is_default=default or None)
    _emit(result, json, _provider_line("added"))


@provider_app.command("list")
def provider_list(ctx: typer.Context, json: Json = False) -> None:
    """List providers."""
    _emit(_state(ctx).call("provider.list"), json, lambda r: _provider_table(r["providers"]))


@provider_app.command("update")
def provider_update(
    ctx: typer.Context, provider: str,
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    base_url: Annotated[str | None, typer.Option()] = None,
    api_key_env: Annotated[str | None, typer.Option(metavar="VAR")] = None,
    api_key: Annotated[str | None, typer.Option(help="'-' to type it hidden.")] = None,
    model: Annotated[str | None, typer.Option(help="The default model.")] = None,
    json: Json = False,
) -> None:
    """Change a provider."""
    st = _state(ctx)
    pid = st.lookup.provider(provider)["id"]
    result = st.call("provider.update", id=pid, name=name, base_url=base_url,
                     api_key=_api_key(api_key), api_key_env=api_key_env, default_model=model)
    _emit(result, json, _provider_line("updated"))


_by_ref(provider_app, "rm", "provider.delete", "provider", "Delete a provider.",
        lambda st: _provider_line("deleted"))
_by_ref(provider_app, "default", "provider.set_default", "provider",
        "Make a provider the default for new agents.", lambda st: _provider_line("set"))


# -- agents ----------------------------------------------------------------------

def _agent_line(verb: str) -> Callable[[dict[str, Any]], str]:
    return lambda a: (f"{verb} agent {a.get('name')} ({render.short_id(a.get('id'))}), "
                      f"{a.get('status')}")


def _agent_fields(st: State, a: dict[str, Any]) -> str:
    keys = ("id", "name", "status", "role", "goal", "backstory", "model", "temperature",
            "max_tokens", "system_prompt")
    pairs = [(k, a.get(k)) for k in keys if k in a]
    pairs.insert(4, ("provider", st.lookup.provider_name(a.get("provider_id"))))
    pairs.append(("created", render.when(a.get("created_at"))))
    return render.fields(pairs, color=_color())


@agent_app.command("create")
def agent_create(
    ctx: typer.Context, name: str,
    role: Annotated[str, typer.Option()] = ...,  # type: ignore[assignment]
    backstory: Annotated[str, typer.Option()] = ...,  # type: ignore[assignment]
    goal: Annotated[str, typer.Option()] = ...,  # type: ignore[assignment]
    provider: Annotated[str | None, typer.Option(help="Name or id [default: the default]")] = None,
    model: Annotated[str | None, typer.Option(help="[default: the provider's]")] = None,
    temperature: Annotated[float | None, typer.Option()] = None,
    max_tokens: Annotated[int | None, typer.Option()] = None,
    json: Json = False,
) -> None:
    """Create an agent."""
    st = _state(ctx)
    pid = st.lookup.provider(provider)["id"] if provider else None
    result = st.call("agent.create", name=name, role=role, backstory=backstory, goal=goal,
                     provider_id=pid, model=model, temperature=temperature, max_tokens=max_tokens)
    _emit(result, json, _agent_line("created"))


@agent_app.command("list")
def agent_list(ctx: typer.Context, json: Json = False) -> None:
    """List agents."""
    st = _state(ctx)

    def human(r: dict[str, Any]) -> str:
        rows = [(a.get("name"), a.get("status"), render.one_line(a.get("role"), 40),
                 st.lookup.provider_name(a.get("provider_id")), a.get("model"),
                 render.short_id(a.get("id"))) for a in r["agents"]]
        return render.table(("name", "status", "role", "provider", "model", "id"), rows,
                            color=_color(), styles=_status_style(1))
    _emit(st.call("agent.list"), json, human)


@agent_app.command("update")
def agent_update(
    ctx: typer.Context, agent: str,
    name: Annotated[str | None, typer.Option(help="A new name.")] = None,
    role: Annotated[str | None, typer.Option()] = None,
    backstory: Annotated[str | None, typer.Option()] = None,
    goal: Annotated[str | None, typer.Option()] = None,
    provider: Annotated[str | None, typer.Option()] = None,
    model: Annotated[str | None, typer.Option()] = None,
    temperature: Annotated[float | None, typer.Option()] = None,
    max_tokens: Annotated[int | None, typer.Option()] = None,
    json: Json = False,
) -> None:
    """Change an agent."""
    st = _state(ctx)
    aid = st.lookup.agent(agent)["id"]
    pid = st.lookup.provider(provider)["id"] if provider else None
    result = st.call("agent.update", id=aid, name=name, role=role, backstory=backstory,
                     goal=goal, provider_id=pid, model=model, temperature=temperature,
                     max_tokens=max_tokens)
    _emit(result, json, _agent_line("updated"))


_by_ref(agent_app, "show", "agent.get", "agent", "Show one agent.",
        lambda st: lambda a: _agent_fields(st, a))
_by_ref(agent_app, "activate", "agent.activate", "agent", "Let an agent reply again.",
        lambda st: _agent_line("activated"))
_by_ref(agent_app, "deactivate", "agent.deactivate", "agent", "Stop an agent from replying.",
        lambda st: _agent_line("deactivated"))


# -- conversations ---------------------------------------------------------------

def _conv_line(st: State, verb: str) -> Callable[[dict[str, Any]], str]:
    def line(c: dict[str, Any]) -> str:
        names = ", ".join(st.lookup.user_name(u) for u in c.get("participants", ()))
        return (f"{verb} {st.lookup.conversation_label(c)} ({render.short_id(c.get('id'))})"
                + (f" with {names}" if names else ""))
    return line


@dm_app.command("new")
def dm_new(ctx: typer.Context,
           participants: Annotated[list[str], typer.Argument(help="Agent or user names/ids.")],
           name: Annotated[str | None, typer.Option(help="A name for the DM.")] = None,
           json: Json = False) -> None:
    """Start a DM with agents (you are always in it)."""
    st = _state(ctx)
    ids = [st.lookup.participant(p) for p in participants]
    result = st.call("dm.create", participants=ids, name=name)
    _emit(result, json, _conv_line(st, "created DM"))


@dm_app.command("list")
def dm_list(ctx: typer.Context,
            all: Annotated[bool, typer.Option("--all", help="Archived ones too.")] = False,
            json: Json = False) -> None:
    """List DMs."""
    st = _state(ctx)

    def human(r: dict[str, Any]) -> str:
        me = st.lookup.me().get("id")
        rows = [(st.lookup.conversation_label(c) + (" (archived)" if c.get("archived_at") else ""),
                 ", ".join(st.lookup.user_name(u) for u in c.get("participants", ()) if u != me),
                 render.when(c.get("created_at")), render.short_id(c.get("id")))
                for c in r["conversations"]]
        return render.table(("name", "with", "created", "id"), rows, color=_color())
    _emit(st.call("dm.list", include_archived=all or None), json, human)


@dm_app.command("show")
def dm_show(ctx: typer.Context, conversation: str, json: Json = False) -> None:
    """Show one DM."""
    st = _state(ctx)
    conv = st.call("dm.get", id=st.lookup.conversation(conversation)["id"])

    def human(c: dict[str, Any]) -> str:
        return render.fields([
            ("id", c.get("id")), ("name", st.lookup.conversation_label(c)),
            ("participants", ", ".join(st.lookup.user_name(u) for u in c.get("participants", ()))),
            ("created", render.when(c.get("created_at"))),
        ] + ([("archived", render.when(c["archived_at"]))] if c.get("archived_at") else []),
            color=_color())
    _emit(conv, json, human)


def _dm_change(ctx: typer.Context, method: str, conversation: str, who: str, json: bool,
               verb: str) -> None:
    st = _state(ctx)
    cid = st.lookup.conversation(conversation)["id"]
    result = st.call(method, id=cid, participant=st.lookup.participant(who))
    _emit(result, json, _conv_line(st, verb))


@dm_app.command("add")
def dm_add(ctx: typer.Context, conversation: str, participant: str, json: Json = False) -> None:
    """Add a participant to a DM."""
    _dm_change(ctx, "dm.add_participant", conversation, participant, json, "updated")


@dm_app.command("rm")
def dm_rm(ctx: typer.Context, conversation: str, participant: str, json: Json = False) -> None:
    """Remove a participant from a DM."""
    _dm_change(ctx, "dm.remove_participant", conversation, participant, json, "updated")


_by_ref(dm_app, "archive", "dm.archive", "conversation", "Archive a DM (its history stays).",
        lambda st: _conv_line(st, "archived"))


@project_app.command("create")
def project_create(ctx: typer.Context, name: str,
                   description: Annotated[str | None, typer.Option()] = None,
                   json: Json = False) -> None:
    """Create a project."""
    result = _state(ctx).call("project.create", name=name, description=description)
    _emit(result, json,
          lambda p: f"created project {p.get('name')} ({render.short_id(p.get('id'))})")


@project_app.command("list")
def project_list(ctx: typer.Context, json: Json = False) -> None:
    """List projects."""
    def human(r: dict[str, Any]) -> str:
        rows = [(p.get("name"), render.one_line(p.get("description"), 50),
                 render.when(p.get("created_at")), render.short_id(p.get("id")))
                for p in r["projects"]]
        return render.table(("name", "description", "created", "id"), rows, color=_color())
    _emit(_state(ctx).call("project.list"), json, human)


@channel_app.command("create")
def channel_create(ctx: typer.Context, project: str, name: str, json: Json = False) -> None:
    """Create a channel in a project."""
    st = _state(ctx)
    result = st.call("channel.create", project_id=st.lookup.project(project)["id"], name=name)
    _emit(result, json, lambda c: f"created #{c.get('name')} ({render.short_id(c.get('id'))})")


@channel_app.command("list")
def channel_list(ctx: typer.Context, project: str, json: Json = False) -> None:
    """List the channels of a project."""
    st = _state(ctx)

    def human(r: dict[str, Any]) -> str:
        rows = [(f"#{c.get('name')}", render.when(c.get("created_at")),
                 render.short_id(c.get("id"))) for c in r["conversations"]]
        return render.table(("name", "created", "id"), rows, color=_color())
    _emit(st.call("channel.list", project_id=st.lookup.project(project)["id"]), json, human)


# -- messages ------------------------------------------------------------------

@app.command()
def send(ctx: typer.Context,
         conversation: Annotated[str, typer.Argument(
             help="A DM, an agent you have a DM with, #channel or project/channel.")],
         text: str,
         wait: Annotated[bool, typer.Option("--wait", help="Print the agents' replies.")] = False,
         timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait.")] = 300.0,
         json: Json = False) -> None:
    """Send a message; with --wait, print the agents' replies."""
    st = _state(ctx)
    code = follow.send(st.connect, conversation, text, wait=wait, timeout=timeout, json=json)
    raise typer.Exit(code)


@app.command()
def log(ctx: typer.Context, conversation: str,
        n: Annotated[int, typer.Option("-n", min=1, help="How many messages.")] = 20,
        json: Json = False) -> None:
    """Print the last messages of a conversation."""
    st = _state(ctx)
    if json:
        cid = st.lookup.conversation(conversation)["id"]
        _emit(st.call("message.list", conversation_id=cid, limit=n), True, str)
        return
    follow.tail(st.connect, conversation, limit=n, follow=False, json=False)


@app.command()
def tail(ctx: typer.Context, conversation: str,
         n: Annotated[int, typer.Option("-n", min=0, help="How many messages first.")] = 10,
         follow_: Annotated[bool, typer.Option("-f", "--follow", help="Keep following.")] = False,
         json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
         ) -> None:
    """Print the last messages; -f follows new ones."""
    follow.tail(_state(ctx).connect, conversation, limit=n, follow=follow_, json=json)


@app.command()
def events(ctx: typer.Context,
           json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
           ) -> None:
    """Print every notification of every conversation."""
    follow.events(_state(ctx).connect, json=json)


@app.command()
def chat(ctx: typer.Context, agent: str,
         json: Annotated[bool, typer.Option("--json", help="Print replies as JSON lines.")] = False,
         ) -> None:
    """Talk with an agent interactively (Ctrl-D leaves)."""
    from . import chat as chat_mod  # readline is loaded only for chat

    raise typer.Exit(chat_mod.run(_state(ctx).connect, agent, json=json))


# -- jobs ------------------------------------------------------------------------

def _job_fields(j: dict[str, Any]) -> str:
    return render.fields([
        ("id", j.get("id")), ("name", j.get("name")), ("status", j.get("status")),
        ("priority", j.get("priority")), ("progress", f"{j.get('progress', 0)}%"),
        ("attempts", f"{j.get('attempts')}/{j.get('max_attempts')}"),
        ("failure", j.get("failure_reason")), ("created", render.when(j.get("created_at"))),
        ("started", render.when(j.get("processed_on"))),
        ("finished", render.when(j.get("finished_on"))),
    ], color=_color())


@app.command()
def jobs(ctx: typer.Context,
         status: Annotated[str | None, typer.Option(help="Only jobs in this status.")] = None,
         n: Annotated[int | None, typer.Option("-n", min=1, help="At most this many.")] = None,
         json: Json = False) -> None:
    """List jobs of the queue."""
    def human(r: dict[str, Any]) -> str:
        rows = [(render.short_id(j.get("id")), j.get("name"), j.get("status"),
                 f"{j.get('attempts')}/{j.get('max_attempts')}", f"{j.get('progress', 0)}%",
                 render.when(j.get("created_at")), render.one_line(j.get("failure_reason"), 50))
                for j in r["jobs"]]
        return render.table(("id", "name", "status", "tries", "done", "created", "failure"),
                            rows, color=_color(), styles=_status_style(2))
    _emit(_state(ctx).call("job.list", status=status, limit=n), json, human)


_by_ref(job_app, "show", "job.get", "job", "Show one job.", lambda st: _job_fields)
_by_ref(job_app, "retry", "job.retry", "job", "Run a failed job again.", lambda st: _job_fields)
_by_ref(job_app, "cancel", "job.cancel", "job", "Cancel a job that has not finished.",
        lambda st: _job_fields)


@queue_app.command("pause")
def queue_pause(ctx: typer.Context, json: Json = False) -> None:
    """Stop starting jobs (running ones finish)."""
    _emit(_state(ctx).call("queue.pause"), json, lambda r: "queue paused")


@queue_app.command("resume")
def queue_resume(ctx: typer.Context, json: Json = False) -> None:
    """Start jobs again."""
    _emit(_state(ctx).call("queue.resume"), json, lambda r: "queue resumed")


# -- entry point ---------------------------------------------------------------

def _fail(text: str) -> None:
    sys.stderr.write(f"wizctl: error: {text}\n")


def main(argv: list[str] | None = None) -> int:
    """Run wizctl and return its exit code: 0 ok, 1 an error (one line on
    stderr), 2 a usage error or ``send --wait`` timing out, 130 interrupted."""
    try:
        app(args=argv, prog_name="wizctl")
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except follow.WaitTimeout as exc:
        _fail(str(exc))
        return 2
    except RpcError as exc:
        _fail(exc.describe())
        return 1
    except (WizClientError, ResolveError) as exc:
        _fail(str(exc))
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


# `wizctl service ...` lives in service.py, written separately; without it,
# wizctl simply has no such command (an error inside it still shows).
if importlib.util.find_spec(f"{__package__}.service") is not None:
    from . import service as _service

    app.add_typer(_service.app, name="service")
