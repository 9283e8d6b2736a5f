"""Name and prefix resolution, against scripted list results (no daemon)."""

from __future__ import annotations

from typing import Any

import pytest

from wizctl.client import NOT_FOUND, RpcError
from wizctl.resolve import Lookup, ResolveError, pick

ME = {"id": "u-me", "name": "me", "type": "human"}
USERS = [ME, {"id": "u-alice", "name": "alice", "type": "agent"},
         {"id": "u-bob", "name": "bob", "type": "agent"},
         {"id": "u-carol", "name": "carol", "type": "agent"}]
AGENTS = [{"id": "a1f0", "user_id": "u-alice", "name": "alice"},
          {"id": "a1f9", "user_id": "u-bob", "name": "bob"},
          {"id": "b777", "user_id": "u-carol", "name": "carol"}]
DMS: list[dict[str, Any]] = [
    {"id": "d-100", "type": "dm", "name": None, "participants": ["u-me", "u-alice"],
     "created_at": 5},
    {"id": "d-200", "type": "dm", "name": "team", "participants": ["u-me", "u-alice", "u-bob"],
     "created_at": 6},
    {"id": "d-300", "type": "dm", "name": None, "participants": ["u-me", "u-alice"],
     "created_at": 9},
    {"id": "e-400", "type": "dm", "name": None, "participants": ["u-me", "u-bob"], "created_at": 1,
     "archived_at": 7},
]
PROJECTS = [{"id": "p-1", "name": "wiz"}, {"id": "p-2", "name": "other"}]
CHANNELS = {"p-1": [{"id": "c-1", "type": "channel", "name": "general", "project_id": "p-1"},
                    {"id": "c-2", "type": "channel", "name": "dev", "project_id": "p-1"}],
            "p-2": [{"id": "c-3", "type": "channel", "name": "general", "project_id": "p-2"}]}


class Script:
    """A stand-in for Client.call that answers list methods and counts calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.jobs = [{"id": "job-aaa1"}, {"id": "job-aaa2"}, {"id": "job-bbb"}]

    def __call__(self, method: str, **params: Any) -> Any:
        self.calls.append((method, params))
        if method == "job.get":
            for job in self.jobs:
                if job["id"] == params["id"]:
                    return job
            raise RpcError(NOT_FOUND, "job not found")
        return {
            "user.me": lambda: ME,
            "user.list": lambda: {"users": USERS},
            "agent.list": lambda: {"agents": AGENTS},
            "dm.list": lambda: {"conversations": DMS},
            "project.list": lambda: {"projects": PROJECTS},
            "channel.list": lambda: {"conversations": CHANNELS[params["project_id"]]},
            "job.list": lambda: {"jobs": self.jobs},
            "provider.list": lambda: {"providers": []},
        }[method]()


@pytest.fixture
def lookup() -> Lookup:
    return Lookup(Script())


ITEMS = [{"id": "abc123", "name": "alice"}, {"id": "abd456", "name": "Alice2"},
         {"id": "xyz", "name": "abc"}]


@pytest.mark.parametrize(("ref", "want"), [
    ("abc123", "abc123"),   # exact id
    ("abc", "xyz"),         # an exact name beats an id prefix
    ("ALICE", "abc123"),    # case-insensitive name
    ("abd", "abd456"),      # unique id prefix
])
def test_pick_tiers(ref: str, want: str) -> None:
    assert pick("agent", ref, ITEMS)["id"] == want


def test_pick_ambiguous_prefix_lists_candidates() -> None:
    with pytest.raises(ResolveError) as info:
        pick("agent", "ab", ITEMS)
    assert "ambiguous" in str(info.value)
    assert "alice (abc123)" in str(info.value) and "Alice2 (abd456)" in str(info.value)


def test_pick_nothing() -> None:
    with pytest.raises(ResolveError, match="no agent named 'zed'"):
        pick("agent", "zed", ITEMS)


def test_agent_by_name_or_prefix(lookup: Lookup) -> None:
    assert lookup.agent("bob")["id"] == "a1f9"
    assert lookup.agent("b7")["id"] == "b777"
    with pytest.raises(ResolveError, match="ambiguous"):
        lookup.agent("a1f")


def test_conversation_by_agent_name_is_the_oldest_one_to_one_dm(lookup: Lookup) -> None:
    assert lookup.conversation("alice")["id"] == "d-100"


def test_conversation_by_dm_name_id_and_prefix(lookup: Lookup) -> None:
    assert lookup.conversation("team")["id"] == "d-200"
    assert lookup.conversation("d-300")["id"] == "d-300"
    assert lookup.conversation("e-4")["id"] == "e-400"
    with pytest.raises(ResolveError, match="ambiguous"):
        lookup.conversation("d-")


def test_archived_dm_does_not_count_for_the_agent(lookup: Lookup) -> None:
    with pytest.raises(ResolveError, match="no DM with bob.*wizctl dm new bob"):
        lookup.conversation("bob")


def test_conversation_by_channel(lookup: Lookup) -> None:
    assert lookup.conversation("#dev")["id"] == "c-2"
    assert lookup.conversation("other/general")["id"] == "c-3"
    assert lookup.conversation("wiz/general")["id"] == "c-1"
    assert lookup.conversation("c-3")["id"] == "c-3"
    with pytest.raises(ResolveError) as info:
        lookup.conversation("#general")
    assert "wiz/general" in str(info.value) and "other/general" in str(info.value)


def test_unknown_conversation_explains_the_forms(lookup: Lookup) -> None:
    with pytest.raises(ResolveError, match="#channel, project/channel"):
        lookup.conversation("nothing-like-it")


def test_channels_are_not_fetched_for_a_dm(lookup: Lookup) -> None:
    lookup.conversation("alice")
    methods = [m for m, _ in lookup.call.calls]  # type: ignore[attr-defined]
    assert "channel.list" not in methods


def test_lists_are_fetched_once(lookup: Lookup) -> None:
    lookup.agent("bob")
    lookup.agent("carol")
    lookup.conversation("alice")
    methods = [m for m, _ in lookup.call.calls]  # type: ignore[attr-defined]
    assert methods.count("agent.list") == 1


def test_participant_accepts_user_and_agent_refs(lookup: Lookup) -> None:
    assert lookup.participant("alice") == "u-alice"
    assert lookup.participant("b777") == "u-carol"   # an agent id gives its user
    assert lookup.participant("u-bob") == "u-bob"
    with pytest.raises(ResolveError):
        lookup.participant("nobody")


def test_job_id_by_prefix(lookup: Lookup) -> None:
    assert lookup.job_id("job-bbb") == "job-bbb"
    assert lookup.job_id("job-b") == "job-bbb"
    with pytest.raises(ResolveError, match="ambiguous"):
        lookup.job_id("job-aaa")
    with pytest.raises(ResolveError, match="no job"):
        lookup.job_id("zzz")


def test_names_and_labels(lookup: Lookup) -> None:
    assert lookup.user_name("u-alice") == "alice"
    assert lookup.user_name("u-unknown-123") == "u-unknow"
    assert lookup.conversation_label(DMS[0]) == "@alice"
    assert lookup.conversation_label(DMS[1]) == "team"
    assert lookup.label_for_id("c-2") == "#dev"


def test_unknown_user_refetches_once(lookup: Lookup) -> None:
    lookup.user_name("u-new")
    lookup.user_name("u-new")
    methods = [m for m, _ in lookup.call.calls]  # type: ignore[attr-defined]
    assert methods.count("user.list") == 2


def test_conversation_by_label(lookup: Lookup) -> None:
    assert lookup.conversation("@alice")["id"] == "d-100"
    assert lookup.conversation("@bob,alice")["id"] == "d-200"
    with pytest.raises(ResolveError, match="no DM with exactly bob"):
        lookup.conversation("@bob")  # that one is archived
