"""Every user, provider, agent, dm, project, channel and message method over a real
socket to a real wizd, as PROTOCOL.md describes them."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.rpc.shared import shared_wizd, unique
from tests.support.daemon import Conn, RpcFailure, Wizd
from tests.support.engines import ENGINES
from wizd.rpc.methods import registry


@pytest.fixture(scope="module", params=ENGINES)
def daemon(tmp_path_factory: pytest.TempPathFactory,
           request: pytest.FixtureRequest) -> Iterator[Wizd]:
    """One wizd per engine for the module's tests."""
    with shared_wizd(tmp_path_factory.mktemp("methods"), request.param) as w:
        yield w


@pytest.fixture
def c(daemon: Wizd) -> Iterator[Conn]:
    with daemon.connect() as conn:
        yield conn


def error_of(c: Conn, method: str, **params: object) -> RpcFailure:
    with pytest.raises(RpcFailure) as info:
        c.call(method, **params)
    return info.value


def agent(c: Conn, name: str | None = None, **kwargs: object) -> dict:
    return c.call("agent.create", name=name or unique("agent"), role="tester",
                  backstory="Tests things.", goal="Find bugs.", **kwargs)


def test_users(c: Conn) -> None:
    me = c.call("user.me")
    assert set(me) >= {"id", "name", "type", "created_at"} and me["type"] == "human"
    assert isinstance(me["created_at"], int)
    a = agent(c)
    users = c.call("user.list")["users"]
    assert users[0] == me
    assert {"id": a["user_id"], "name": a["name"], "type": "agent"}.items() <= {
        u["id"]: u for u in users}[a["user_id"]].items()
    assert c.call("user.get", id=a["user_id"])["type"] == "agent"
    assert error_of(c, "user.get", id="nobody").code == -32001


def test_builtin_provider_and_lifecycle(c: Conn) -> None:
    listed = c.call("provider.list")["providers"]
    offline = next(p for p in listed if p["name"] == "offline")
    assert (offline["type"], offline["default_model"], offline["has_api_key"]) == (
        "offline", "offline-demo", False)
    name = unique("prov")
    p = c.call("provider.create", name=name, type="openai", default_model="gpt-test",
               api_key="sk-x")
    try:
        assert set(p) >= {"id", "name", "type", "base_url", "default_model", "is_default",
                          "has_api_key"}
        assert (p["base_url"], p["has_api_key"], p["is_default"]) == (
            "https://api.openai.com/v1", True, False)
        assert c.call("provider.get", id=name) == p
        assert c.call("provider.set_default", id=p["id"])["is_default"] is True
        assert [q["name"] for q in c.call("provider.list")["providers"] if q["is_default"]] == [
            name]
        p2 = c.call("provider.update", id=name, base_url="http://127.0.0.1:9/v1",
                    default_model="m2", api_key="")
        assert (p2["base_url"], p2["default_model"], p2["has_api_key"]) == (
            "http://127.0.0.1:9/v1", "m2", False)
        a = agent(c)  # on the default: this provider
        assert a["provider_id"] == p["id"]
        err = error_of(c, "provider.delete", id=name)
        assert err.code == -32002 and err.data == {"agents": [a["name"]]}
        assert error_of(c, "provider.create", name=name, type="offline",
                        default_model="m").code == -32002
        bad = error_of(c, "provider.create", name=unique("p"), type="nope", default_model="m")
        assert (bad.code, bad.data["field"]) == (-32602, "type")
        c.call("agent.update", id=a["id"], provider_id="offline")
        deleted = c.call("provider.delete", id=p["id"])
        assert deleted["deleted"] is True
        assert error_of(c, "provider.get", id=p["id"]).code == -32001
    finally:
        c.call("provider.set_default", id="offline")
    assert [q["name"] for q in c.call("provider.list")["providers"] if q["is_default"]] == [
        "offline"]


def test_agent_lifecycle(c: Conn) -> None:
    name = unique("ada")
    a = agent(c, name, model="m1", temperature=0.5, max_tokens=99)
    assert set(a) >= {"id", "user_id", "name", "role", "backstory", "goal", "system_prompt",
                      "provider_id", "model", "status", "created_at"}
    assert a["status"] == "active" and name in a["system_prompt"]
    assert (a["model"], a["temperature"], a["max_tokens"]) == ("m1", 0.5, 99)
    assert c.call("agent.get", id=a["id"]) == a
    assert c.call("agent.get", name=name) == a
    assert c.call("agent.get", id=name) == a  # an id param takes a name too
    assert error_of(c, "agent.get").data["field"] == "id"
    assert error_of(c, "agent.get", name="no-such-agent").code == -32001
    assert error_of(c, "agent.create", name=name, role="r", backstory="",
                    goal="").code == -32002
    assert a["id"] in [x["id"] for x in c.call("agent.list")["agents"]]
    updated = c.call("agent.update", id=name, goal="A brand new goal.")
    assert "brand new goal" in updated["system_prompt"]
    assert updated["system_prompt"] != a["system_prompt"]
    assert c.call("agent.deactivate", name=name)["status"] == "inactive"
    assert a["id"] in [x["id"] for x in c.call("agent.list", status="inactive")["agents"]]
    assert c.call("agent.activate", id=a["id"])["status"] in ("active", "busy")


def test_dm_lifecycle(c: Conn) -> None:
    me = c.call("user.me")
    a, b = agent(c), agent(c)
    dm = c.call("dm.create", participants=[a["name"], b["id"]], name="pair")
    assert (dm["type"], dm["name"]) == ("dm", "pair")
    assert dm["participants"] == [me["id"], a["user_id"], b["user_id"]]
    assert dm.pop("existing") is False  # dm.create says whether it made the DM
    assert c.call("dm.get", id=dm["id"]) == dm
    assert dm["id"] in [d["id"] for d in c.call("dm.list")["conversations"]]
    third = agent(c)
    dm = c.call("dm.add_participant", id=dm["id"], participant=third["name"])
    assert dm["participants"][-1] == third["user_id"]
    dm = c.call("dm.remove_participant", id=dm["id"], participant=a["id"])
    assert a["user_id"] not in dm["participants"]
    assert error_of(c, "dm.remove_participant", id=dm["id"], participant=me["id"]).code == -32002
    assert error_of(c, "dm.create", participants=["no-such-agent"]).code == -32001
    assert error_of(c, "dm.get", id="no-such-dm").code == -32001
    archived = c.call("dm.archive", id=dm["id"])
    assert archived["archived"] is True
    assert dm["id"] not in [d["id"] for d in c.call("dm.list")["conversations"]]
    assert error_of(c, "message.send", conversation_id=dm["id"], content="hi").code == -32002


def test_projects_and_channels(c: Conn) -> None:
    name = unique("proj")
    project = c.call("project.create", name=name, description="d")
    assert (project["name"], project["description"]) == (name, "d")
    assert project["id"] in [p["id"] for p in c.call("project.list")["projects"]]
    assert error_of(c, "project.create", name=name).code == -32002
    ch = c.call("channel.create", project_id=project["id"], name="general")
    assert (ch["type"], ch["name"], ch["project_id"], ch["participants"]) == (
        "channel", "general", project["id"], [])
    assert c.call("channel.list", project_id=name)["conversations"] == [ch]
    assert c.call("channel.get", id=ch["id"]) == ch
    assert error_of(c, "channel.create", project_id="no-such-project", name="x").code == -32001


def test_messages_send_and_list(c: Conn) -> None:
    project = c.call("project.create", name=unique("proj"))
    ch = c.call("channel.create", project_id=project["id"], name="quiet")
    sent = [c.call("message.send", conversation_id=ch["id"], content=f"m{i}") for i in range(6)]
    assert all(s["jobs"] == [] for s in sent)  # no mention, no agent
    msg = sent[0]["message"]
    assert set(msg) >= {"id", "seq", "conversation_id", "source_type", "source_id", "author_id",
                        "content", "kind", "reply_to", "created_at"}
    assert (msg["source_type"], msg["source_id"], msg["kind"], msg["reply_to"]) == (
        "channel", ch["id"], "text", None)
    assert msg["author_id"] == c.call("user.me")["id"]
    seqs = [s["message"]["seq"] for s in sent]
    assert seqs == sorted(set(seqs))

    def listed(**kw: object) -> list[str]:
        return [m["content"] for m in
                c.call("message.list", conversation_id=ch["id"], **kw)["messages"]]

    assert listed() == [f"m{i}" for i in range(6)]
    assert listed(limit=2) == ["m4", "m5"]
    assert listed(after_seq=seqs[2], limit=2) == ["m3", "m4"]
    for bad in ({"limit": 0}, {"limit": 1001}):
        assert error_of(c, "message.list", conversation_id=ch["id"], **bad).data["field"] == "limit"
    assert error_of(c, "message.list", conversation_id="nope").code == -32001
    empty = error_of(c, "message.send", conversation_id=ch["id"], content="")
    assert (empty.code, empty.data["field"]) == (-32602, "content")
    long = error_of(c, "message.send", conversation_id=ch["id"], content="x" * 100_001)
    assert (long.code, long.data["field"]) == (-32602, "content")


def test_messages_trigger_agents(c: Conn) -> None:
    a, b = agent(c), agent(c)
    c.call("agent.deactivate", id=b["id"])
    dm = c.call("dm.create", participants=[a["id"], b["id"]])
    sent = c.call("message.send", conversation_id=dm["id"], content="hello")
    assert len(sent["jobs"]) == 1  # the inactive one is not triggered
    project = c.call("project.create", name=unique("proj"))
    ch = c.call("channel.create", project_id=project["id"], name="general")
    sent = c.call("message.send", conversation_id=ch["id"],
                  content=f"@{a['name']} and @{b['name']}, a question")
    assert len(sent["jobs"]) == 1


def test_rpc_discover_lists_every_method_with_params(c: Conn) -> None:
    doc = c.call("rpc.discover")
    served = {m["name"]: m for m in doc["methods"]}
    assert set(served) == set(registry.methods)
    for name in ("user.me", "user.list", "provider.create", "provider.list", "provider.update",
                 "provider.delete", "provider.set_default", "agent.create", "agent.list",
                 "agent.get", "agent.update", "agent.activate", "agent.deactivate", "dm.create",
                 "dm.list", "dm.get", "dm.add_participant", "dm.remove_participant",
                 "dm.archive", "project.create", "project.list", "channel.create",
                 "channel.list", "message.send", "message.list"):
        entry = served[name]
        assert entry["summary"], name
        sig = inspect.signature(registry.methods[name].func)
        expected = {p: sig.parameters[p].default is inspect.Parameter.empty
                    for p in list(sig.parameters)[1:]}
        assert {p["name"]: p["required"] for p in entry["params"]} == expected, name
    create = {p["name"]: p for p in served["provider.create"]["params"]}
    assert {n for n, p in create.items() if p["required"]} == {"name", "type", "default_model"}
    assert set(create) == {"name", "type", "base_url", "api_key", "api_key_env",
                           "api_key_file", "default_model", "is_default", "stream"}


def test_socket_is_private(daemon: Wizd) -> None:
    assert Path(daemon.socket).stat().st_mode & 0o777 == 0o600
    assert Path(daemon.socket).parent.stat().st_mode & 0o777 == 0o700
