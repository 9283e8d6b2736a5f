"""wizctl for scripts, end to end against a real wizd: the DM that ``dm new``
reuses, content over the size limit refused in the daemon's own words, and
errors as JSON with exit codes that tell kinds apart (issue 11)."""

from __future__ import annotations

import json

from tests.e2e.test_wizctl import ok, wizctl
from tests.support.daemon import Wizd


def test_dm_new_reuses_the_open_dm_unless_new(wizd: Wizd) -> None:
    wizd.call("agent.create", name="ada", role="Researcher", backstory="b", goal="g")
    ok(wizctl(wizd, "dm", "new", "ada"))
    [dm] = wizd.call("dm.list")["conversations"]

    again = wizctl(wizd, "dm", "new", "ada")
    assert (again.returncode, again.stdout) == (0, "")
    assert again.stderr == (f"wizctl: using the existing DM @ada ({dm['id'][:8]}) with "
                            f"{wizd.call('user.me')['name']}, ada (--new makes another)\n")
    doc = json.loads(ok(wizctl(wizd, "dm", "new", "ada", "--json")))
    assert (doc["id"], doc["existing"]) == (dm["id"], True)
    assert len(wizd.call("dm.list")["conversations"]) == 1

    other = json.loads(ok(wizctl(wizd, "dm", "new", "ada", "--new", "--json")))
    assert other["existing"] is False and other["id"] != dm["id"]
    # send still picks the oldest; an archived DM is not reused
    ok(wizctl(wizd, "send", "ada", "hi"))
    assert [m["content"] for m in wizd.call("message.list", conversation_id=dm["id"])
            ["messages"]][:1] == ["hi"]
    for d in (dm, other):
        wizd.call("dm.archive", id=d["id"])
    fresh = json.loads(ok(wizctl(wizd, "dm", "new", "ada", "--json")))
    assert fresh["existing"] is False and fresh["id"] not in (dm["id"], other["id"])
    # dm.create without reuse keeps making a new DM, as the protocol has it
    assert wizd.call("dm.create", participants=["ada"])["id"] != fresh["id"]


def test_content_over_the_limit_gets_the_daemons_words(wizd: Wizd) -> None:
    wizd.call("agent.create", name="ada", role="Researcher", backstory="b", goal="g")
    dm = wizd.call("dm.create", participants=["ada"])
    with wizd.connect() as conn:
        answer = conn.request("message.send", conversation_id=dm["id"], content="x" * 900_000)
    daemon = answer["error"]
    for size in (900_000, 1_100_000, 2_000_000):
        proc = wizctl(wizd, "send", "ada", "-", input="x" * size)
        assert (proc.returncode, proc.stdout) == (2, "")
        assert proc.stderr == f"wizctl: error: {daemon['message']}\n"
        proc = wizctl(wizd, "send", "ada", "-", "--json", input="x" * size)
        assert (proc.returncode, json.loads(proc.stderr)) == (2, daemon)
    assert wizd.call("message.list", conversation_id=dm["id"])["messages"] == []


def test_errors_under_json_are_one_object_with_an_exit_code_per_kind(wizd: Wizd) -> None:
    wizd.call("agent.create", name="ada", role="Researcher", backstory="b", goal="g")

    def fails(*args: str) -> tuple[int, dict]:
        proc = wizctl(wizd, *args, "--json")
        assert proc.stdout == "" and proc.stderr.count("\n") == 1, proc.stderr
        return proc.returncode, json.loads(proc.stderr)

    code, err = fails("agent", "create", "ada", "--role", "r", "--backstory", "b", "--goal", "g")
    assert (code, err["code"]) == (4, -32002) and "ada" in err["message"]
    code, err = fails("agent", "show", "nobody")
    assert (code, err["code"], err["data"]) == (3, -32001, {"kind": "agent", "ref": "nobody"})
    code, err = fails("agent", "update", "ada", "--temperature", "9")
    assert (code, err["code"], err["data"]["field"]) == (2, -32602, "temperature")
    code, err = fails("job", "retry", "no-such-job")
    assert code == 3
    wizd.stop()
    code, err = fails("status")
    assert (code, err["code"], err["data"]) == (5, -33001, {"socket": str(wizd.socket)})
