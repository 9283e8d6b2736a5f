"""Naming things the way people do: names, id prefixes, ``#channel``,
``project/channel``, or the agent you have a DM with.

Resolution happens client-side from the daemon's list methods. ``pick`` is the
pure rule; ``Lookup`` fetches (once per run, cached) and applies it, and turns
ids back into names for display.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, cast

from .client import INVALID_PARAMS, NOT_FOUND, RpcError
from .objects import Agent, Channel, Conversation, Dm, OpenedDm, Project, Provider, User

# A call to the daemon: ``call(method, **params)`` -> the result (``Client.call``).
Call = Callable[..., Any]

# Anything named by an id and a name: a user, an agent, a conversation ...
Named = TypeVar("Named", bound=Mapping[str, object])
T = TypeVar("T")


class ListedChannel(Channel):
    """A channel as ``Lookup.channels`` lists it: with ``label``, its ``project/name``."""

    label: str


class ResolveError(Exception):
    """A reference matched nothing (``NoMatch``) or more than one thing
    (``Ambiguous``). The message is one line; ``kind`` is what ``ref`` was to name."""

    def __init__(self, message: str, *, kind: str, ref: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.ref = ref


class NoMatch(ResolveError):
    """Nothing is named ``ref``."""


class Ambiguous(ResolveError):
    """``ref`` names more than one thing."""


def _label(item: Mapping[str, object]) -> str:
    name = item.get("label") or item.get("name")
    ident = str(item.get("id", ""))[:8]
    return f"{name} ({ident})" if name else ident


def pick(kind: str, ref: str, items: Sequence[Named], *, prefix: bool = True) -> Named:
    """The one item ``ref`` names, trying in order: exact id, exact name,
    case-insensitive name, then (if ``prefix``) a unique id prefix.

    Raises ResolveError naming the candidates when a tier matches several,
    or saying nothing matched.
    """
    found = find(kind, ref, items, prefix=prefix)
    if found is None:
        extra = " or with that id prefix" if prefix else ""
        raise NoMatch(f"no {kind} named {ref!r}{extra}", kind=kind, ref=ref)
    return found


def find(kind: str, ref: str, items: Sequence[Named], *,
         prefix: bool = True) -> Named | None:
    """Like ``pick`` but None when nothing matches (still raises when ambiguous)."""
    tiers: list[Callable[[Named], bool]] = [
        lambda i: str(i.get("id")) == ref,
        lambda i: i.get("name") == ref,
        lambda i: str(i.get("name") or "").casefold() == ref.casefold(),
    ]
    if prefix and ref:
        tiers.append(lambda i: str(i.get("id", "")).startswith(ref))
    for matches in tiers:
        hits = [i for i in items if matches(i)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise Ambiguous(f"{ref!r} is ambiguous: it could be the {kind} "
                            + ", ".join(_label(h) for h in hits), kind=kind, ref=ref)
    return None


def archived(conv: Conversation) -> bool:
    return bool(conv.get("archived_at") or conv.get("archived") is True)


class Lookup:
    """Cached lists from the daemon, and the resolution and naming built on them.

    ``call(method, **params)`` reaches the daemon (a ``Client.call``).
    """

    def __init__(self, call: Call) -> None:
        self.call = call
        self._cache: dict[str, object] = {}
        self._missed: set[object] = set()

    def _get(self, key: str, fetch: Callable[[], T]) -> T:
        if key not in self._cache:
            self._cache[key] = fetch()
        return cast(T, self._cache[key])

    def forget(self, *keys: str) -> None:
        """Drop cached lists (all of them with no ``keys``) so they are fetched again."""
        for key in keys or list(self._cache):
            self._cache.pop(key, None)

    # -- lists ---------------------------------------------------------------
    def me(self) -> User:
        return self._get("me", lambda: cast(User, self.call("user.me")))

    def users(self) -> list[User]:
        return self._get("users", lambda: cast(list[User], self.call("user.list")["users"]))

    def agents(self) -> list[Agent]:
        return self._get("agents", lambda: cast(list[Agent], self.call("agent.list")["agents"]))

    def providers(self) -> list[Provider]:
        return self._get("providers", lambda: cast(list[Provider],
                                                    self.call("provider.list")["providers"]))

    def dms(self) -> list[Dm]:
        # Archived ones too: an exact id still names them; names and agents skip them.
        return self._get("dms", lambda: cast(list[Dm], self.call(
            "dm.list", include_archived=True)["conversations"]))

    def projects(self) -> list[Project]:
        return self._get("projects",
                         lambda: cast(list[Project], self.call("project.list")["projects"]))

    def channels(self) -> list[ListedChannel]:
        """Every channel of every project, each labelled ``project/name``."""
        def fetch() -> list[ListedChannel]:
            out = []
            for project in self.projects():
                listed = self.call("channel.list", project_id=project["id"])["conversations"]
                for ch in cast(list[Channel], listed):
                    out.append(ListedChannel(**ch, label=f"{project.get('name')}/{ch.get('name')}"))
            return out
        return self._get("channels", fetch)

    # -- resolution ------------------------------------------------------------
    def agent(self, ref: str) -> Agent:
        return pick("agent", ref, self.agents())

    def provider(self, ref: str) -> Provider:
        return pick("provider", ref, self.providers())

    def project(self, ref: str) -> Project:
        return pick("project", ref, self.projects())

    def participant(self, ref: str) -> str:
        """The user id of a person or agent named by name, user id, agent id or prefix."""
        user = find("user", ref, self.users())
        if user is not None:
            return str(user["id"])
        agent = find("agent", ref, self.agents())
        if agent is not None:
            return str(agent["user_id"])
        raise NoMatch(f"no user or agent named {ref!r} or with that id prefix",
                      kind="participant", ref=ref)

    def dm_with(self, agent: Agent) -> Dm | None:
        """The DM between the local user and exactly ``agent`` (the oldest if several),
        else None. Archived DMs do not count."""
        return self._oldest_dm_with({self.me()["id"], agent["user_id"]})

    def _oldest_dm_with(self, users: set[str]) -> Dm | None:
        dms = [c for c in self.dms() if not archived(c) and set(c.get("participants", ())) == users]
        return min(dms, key=lambda c: (c.get("created_at") or 0, str(c.get("id"))), default=None)

    def conversation(self, ref: str) -> Conversation:
        """The conversation ``ref`` names: ``#channel``, ``project/channel``, a DM's id
        or name, the name of an agent with whom a DM exists, ``@alice,bob`` (the DM
        with exactly them), or an id prefix of a DM or channel. Raises ResolveError."""
        if ref.startswith("#"):
            return pick("channel", ref[1:], self.channels(), prefix=False)
        if "/" in ref:
            proj_ref, _, chan_ref = ref.partition("/")
            project = self.project(proj_ref)
            chans = [c for c in self.channels() if c.get("project_id") == project["id"]]
            return pick(f"channel of {project.get('name')}", chan_ref, chans)
        if ref.startswith("@"):
            return self._dm_of(ref)
        dms = self.dms()
        for conv in dms:
            if str(conv.get("id")) == ref:
                return conv
        live = [d for d in dms if not archived(d)]
        named = [d for d in live if d.get("name") == ref]
        if len(named) == 1:
            return named[0]
        if len(named) > 1:
            raise Ambiguous(f"{ref!r} is ambiguous: it could be the DM "
                            + ", ".join(_label(d) for d in named), kind="conversation", ref=ref)
        agent = find("agent", ref, self.agents(), prefix=False)
        if agent is not None:
            with_agent = self.dm_with(agent)
            if with_agent is not None:
                return with_agent
        everything = dms + self.channels()
        hit = find("conversation", ref, everything)
        if hit is not None:
            return hit
        if agent is not None:
            raise NoMatch(f"you have no DM with {agent.get('name')}; "
                          f"start one with `wizctl dm new {agent.get('name')}`",
                          kind="conversation", ref=ref)
        raise NoMatch(f"no conversation matches {ref!r} (use a DM name, the name of an agent "
                      "you have a DM with, #channel, project/channel or an id prefix)",
                      kind="conversation", ref=ref)

    def _dm_of(self, ref: str) -> Dm:
        """``@alice`` or ``@alice,bob``: the DM of the local user with exactly these
        (the oldest if several) — how ``conversation_label`` shows an unnamed DM."""
        want = {self.me()["id"], *(self.participant(n) for n in ref[1:].split(",") if n)}
        found = self._oldest_dm_with(want)
        if found is None:
            raise NoMatch(f"you have no DM with exactly {ref[1:]}", kind="conversation",
                          ref=ref)
        return found

    def job_id(self, ref: str) -> str:
        """The full id of the job ``ref`` names (an id or a unique id prefix)."""
        try:
            return str(self.call("job.get", id=ref)["id"])
        except RpcError as exc:
            if exc.code not in (NOT_FOUND, INVALID_PARAMS):
                raise
        jobs = self.call("job.list", limit=1000)["jobs"]
        hits = [j for j in jobs if str(j.get("id", "")).startswith(ref)]
        if len(hits) == 1:
            return str(hits[0]["id"])
        if not hits:
            raise NoMatch(f"no job with id or id prefix {ref!r}", kind="job", ref=ref)
        raise Ambiguous(f"{ref!r} is ambiguous: it could be the job "
                        + ", ".join(str(j["id"])[:12] for j in hits[:10]), kind="job", ref=ref)

    # -- naming ----------------------------------------------------------------
    def user_name(self, user_id: object) -> str:
        """A user's name; the list is fetched again once for an id it does not know
        (an agent created after we started)."""
        names: dict[object, str] = {u["id"]: u.get("name") for u in self.users()}
        if user_id not in names and user_id not in self._missed:
            self._missed.add(user_id)
            self.forget("users")
            names = {u["id"]: u.get("name") for u in self.users()}
        return str(names.get(user_id) or str(user_id)[:8])

    def agent_name(self, agent_id: object) -> str:
        names: dict[object, str] = {a["id"]: a.get("name") for a in self.agents()}
        if agent_id not in names and f"agent:{agent_id}" not in self._missed:
            self._missed.add(f"agent:{agent_id}")
            self.forget("agents")
            names = {a["id"]: a.get("name") for a in self.agents()}
        return str(names.get(agent_id) or str(agent_id)[:8])

    def provider_name(self, provider_id: object) -> str:
        for p in self.providers():
            if p.get("id") == provider_id:
                return str(p.get("name"))
        return "-" if provider_id is None else str(provider_id)[:8]

    def conversation_label(self, conv: Conversation | OpenedDm) -> str:
        """How a person names a conversation: ``#channel``, a DM's name, or
        ``@alice,bob`` (the other participants of an unnamed DM)."""
        if conv.get("type") == "channel":
            return f"#{conv.get('name')}"
        if conv.get("name"):
            return str(conv["name"])
        me = self.me().get("id")
        others = [self.user_name(u) for u in conv.get("participants", ()) if u != me]
        return "@" + ",".join(others) if others else "@" + self.user_name(me)

    def label_for_id(self, conversation_id: object) -> str:
        """``conversation_label`` for an id (fetching the lists again once if unknown)."""
        for attempt in range(2):
            for conv in self.dms() + self.channels():
                if conv.get("id") == conversation_id:
                    return self.conversation_label(conv)
            if attempt == 0 and f"conv:{conversation_id}" not in self._missed:
                self._missed.add(f"conv:{conversation_id}")
                self.forget("dms", "channels", "projects")
            else:
                break
        return str(conversation_id)[:8]
