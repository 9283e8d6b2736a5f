"""Every method's real results match the result schema that rpc.discover publishes,
and the notifications on the way match their params' schemas.

One scenario calls every registered method on a real wizd (real socket, real
database, the built-in offline provider answering), and each result is checked
against the schema from that daemon's own OpenRPC document. The check is
stricter than the document: an object may carry no field beyond those
declared (the document allows more, since the protocol lets a later version
add fields), so a field added to a result but not to its shape in
``wizd.objects`` fails here. A method the scenario does not call fails too.
"""

from __future__ import annotations

import copy
import sys
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from tests.mcp.helpers import SERVER as MCP_SERVER
from tests.rpc.shared import shared_wizd, unique
from tests.support.daemon import Conn, Wizd
from tests.support.engines import ENGINES


@pytest.fixture(scope="module", params=ENGINES)
def daemon(tmp_path_factory: pytest.TempPathFactory,
           request: pytest.FixtureRequest) -> Iterator[Wizd]:
    """One wizd per engine for the module's tests."""
    with shared_wizd(tmp_path_factory.mktemp("schemas"), request.param) as w:
        yield w


def closed(components: dict[str, Any]) -> dict[str, Any]:
    """``components`` with every object that lists its properties allowing no other."""
    strict = copy.deepcopy(components)
    for schema in strict["schemas"].values():
        if "properties" in schema:
            schema.setdefault("additionalProperties", False)
    return strict


class Checker:
    """Validates values against schemas of one OpenRPC document, strictly."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.components = closed(document["components"])
        self.results = {m["name"]: m["result"]["schema"] for m in document["methods"]}
        self.notifications = document["x-notification-params"]
        # One validator per schema, its schema checked once: checking the
        # schema against the metaschema again for every value cost the test
        # more than the daemon's work.
        self._validators: dict[tuple[str, str], jsonschema.Draft202012Validator] = {}

    def _validator(self, kind: str, name: str,
                   schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
        key = (kind, name)
        if key not in self._validators:
            root = {**schema, "components": self.components}
            jsonschema.Draft202012Validator.check_schema(root)
            self._validators[key] = jsonschema.Draft202012Validator(root)
        return self._validators[key]

    def result(self, method: str, value: Any) -> None:
        """Raises jsonschema.ValidationError."""
        self._validator("result", method, self.results[method]).validate(value)

    def notification(self, method: str, params: Any) -> None:
        """Raises jsonschema.ValidationError."""
        self._validator("notification", method, self.notifications[method]).validate(params)


class Recorder:
    """A connection that keeps every result and every notification, by method."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self.results: dict[str, list[Any]] = defaultdict(list)
        self.notifications: dict[str, list[Any]] = defaultdict(list)

    def __call__(self, method: str, **params: Any) -> Any:
        result = self.conn.call(method, **params)
        self.results[method].append(result)
        return result

    def notification(self) -> dict[str, Any]:
        note = self.conn.notification()
        self.notifications[note["method"]].append(note["params"])
        return note

    def until_job(self, job_id: str, status: str) -> dict[str, Any]:
        """The job of the ``job.updated`` notification that shows job ``job_id`` in ``status``."""
        while True:
            note = self.notification()
            job: dict[str, Any] = note["params"].get("job", {})
            if note["method"] == "job.updated" and (job["id"], job["status"]) == (job_id, status):
                return job


def scenario(call: Recorder) -> None:
    """Call every method at least once, with real data."""
    call("rpc.discover")
    call("daemon.status")
    me = call("user.me")
    call("user.list")
    call("user.get", id=me["id"])

    provider = call("provider.create", name=unique("prov"), type="openai",
                    default_model="gpt-test", api_key_env="WIZ_TEST_KEY")
    call("provider.get", id=provider["id"])
    call("provider.list")
    call("provider.update", id=provider["id"], base_url="http://127.0.0.1:9/v1")
    call("provider.set_default", id=provider["id"])
    call("provider.set_default", id="offline")
    call("provider.delete", id=provider["id"])

    ada = call("agent.create", name=unique("ada"), role="tester", backstory="Tests.",
               goal="Find bugs.", provider_id="offline", temperature=0.5, max_tokens=99)
    bob = call("agent.create", name=unique("bob"), role="tester", backstory="Tests.",
               goal="Find bugs.", model="offline-demo")
    call("agent.get", name=ada["name"])
    call("agent.list")
    call("agent.update", id=ada["id"], goal="Find more bugs.")
    call("agent.deactivate", id=bob["id"])
    call("agent.activate", name=bob["name"])

    project = call("project.create", name=unique("proj"), description="A project.")
    call("project.create", name=unique("bare"))
    call("project.list")
    channel = call("channel.create", project_id=project["name"], name="general")
    call("channel.list", project_id=project["id"])
    call("channel.get", id=channel["id"])

    dm = call("dm.create", participants=[ada["name"]], name="pair")
    call("dm.create", participants=[ada["name"]], name="pair", reuse=True)
    call("dm.get", id=dm["id"])
    call("events.subscribe", conversation_id=dm["id"])
    sent = call("message.send", conversation_id=dm["id"], content="Hello there.")
    done = call.until_job(sent["jobs"][0], "completed")
    call("message.list", conversation_id=dm["id"])
    call("message.list", conversation_id=dm["id"], after_seq=0, limit=1)
    call("message.search", query="hello", agent=ada["name"])
    call("message.search", query="nothing-like-this")
    call("usage.summary")
    call("usage.summary", agent=ada["name"], since=0)
    call("usage.messages", message_ids=[done["result"]["message_id"]])
    call("job.get", id=done["id"])

    call("queue.pause")
    held = call("message.send", conversation_id=dm["id"], content="Wait for it.")["jobs"][0]
    call("job.cancel", id=held)
    call("job.retry", id=held)
    call("job.list")
    call("job.list", status="failed", limit=5)
    call("queue.resume")
    call.until_job(held, "completed")
    call("daemon.status")  # with jobs and messages counted

    server = call("mcp.add", name=unique("mcp"), command=[sys.executable, MCP_SERVER],
                  confirm=["count"])
    web = call("mcp.add", name=unique("web"), url="http://127.0.0.1:9/mcp")
    call("mcp.list")
    call("mcp.tools", server=server["name"])
    call("mcp.tools")  # with the failure of the one that cannot be reached
    # A tool call (tool.started, tool.finished), through the offline provider.
    cy = call("agent.create", name=unique("cy"), role="tester", backstory="Tests.",
              goal="Call tools.", tools=[f"{server['name']}.echo", f"{server['name']}.count"],
              max_steps=3)
    call("mcp.tools", agent=cy["name"])
    tool_dm = call("dm.create", participants=[cy["name"]])
    call("events.subscribe", conversation_id=tool_dm["id"])
    sent = call("message.send", conversation_id=tool_dm["id"],
                content=f"/tool {server['name']}.echo text=hi")
    call("job.get", id=call.until_job(sent["jobs"][0], "completed")["id"])
    for decide in ("job.approve", "job.deny"):  # a confirm tool: tool.approval_requested
        sent = call("message.send", conversation_id=tool_dm["id"],
                    content=f"/tool {server['name']}.count")
        while call.notification()["method"] != "tool.approval_requested":
            pass
        call(decide, id=sent["jobs"][0])
        call.until_job(sent["jobs"][0], "completed")
    call("mcp.remove", name=server["name"])
    call("mcp.remove", id=web["id"])

    call("dm.add_participant", id=dm["id"], participant=bob["name"])
    call("dm.remove_participant", id=dm["id"], participant=bob["id"])
    call("dm.archive", id=dm["id"])
    call("dm.list", include_archived=True)
    subscription = call("events.subscribe")["subscription"]
    call("events.unsubscribe", subscription=subscription)
    while call.conn.notifications:
        call.notification()


def test_every_methods_real_results_match_its_published_schema(daemon: Wizd) -> None:
    with daemon.connect() as conn:
        checker = Checker(conn.call("rpc.discover"))
        call = Recorder(conn)
        scenario(call)
    untested = sorted(set(checker.results) - set(call.results))
    assert not untested, f"no test call for {untested}: add one to scenario()"
    for method, results in call.results.items():
        for result in results:
            try:
                checker.result(method, result)
            except jsonschema.ValidationError as exc:
                pytest.fail(f"{method}: {exc.message} at {list(exc.absolute_path)}")
    # events.lagged needs a subscriber that falls behind: not provoked here.
    assert set(call.notifications) == set(checker.notifications) - {"events.lagged"}
    for method, notes in call.notifications.items():
        for params in notes:
            try:
                checker.notification(method, params)
            except jsonschema.ValidationError as exc:
                pytest.fail(f"{method}: {exc.message} at {list(exc.absolute_path)}")


def test_a_field_missing_from_the_shape_fails_the_check(daemon: Wizd) -> None:
    with daemon.connect() as conn:
        checker = Checker(conn.call("rpc.discover"))
        me = conn.call("user.me")
    checker.result("user.me", me)
    with pytest.raises(jsonschema.ValidationError, match="'nickname' was unexpected"):
        checker.result("user.me", me | {"nickname": "x"})
    with pytest.raises(jsonschema.ValidationError, match="'created_at' is a required"):
        checker.result("user.me", {k: v for k, v in me.items() if k != "created_at"})
    with pytest.raises(jsonschema.ValidationError):
        checker.result("user.list", {"users": [me | {"type": "robot"}]})
