"""The wizctl commands end to end against the scripted socket server: what
they send, what they print, and how errors end (one line, exit code)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from typing import Any

import pytest

from tests.wizctl.fakewizd import Fail, FakeWizd
from wizctl.main import main

Capsys = pytest.CaptureFixture[str]
ME = {"id": "u-me", "name": "me", "type": "human"}
USERS = [ME, {"id": "u-alice", "name": "alice", "type": "agent"}]
PROVIDER = {"id": "p-123456789", "name": "local", "type": "openai", "base_url": "http://x/v1",
            "default_model": "m", "is_default": True, "has_api_key": False}
ALICE = {"id": "a-123456789", "user_id": "u-alice", "name": "alice", "role": "tester",
         "backstory": "b", "goal": "g", "system_prompt": "s", "provider_id": "p-123456789",
         "model": None, "status": "active", "created_at": 1_700_000_000_000}


@pytest.fixture
def wiz(fake: FakeWizd, monkeypatch: pytest.MonkeyPatch) -> FakeWizd:
    monkeypatch.setenv("WIZ_SOCKET", str(fake.path))
    fake.on("user.me", ME)
    fake.on("user.list", {"users": USERS})
    fake.on("provider.list", {"providers": [PROVIDER]})
    fake.on("agent.list", {"agents": [ALICE]})
    fake.on("dm.list", {"conversations": []})
    return fake


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_status_json_is_the_raw_result(wiz: FakeWizd, capsys: Capsys) -> None:
    status = {"version": "0.1", "pid": 42, "uptime_ms": 3_723_000, "db": "/d", "socket": "/s",
              "queue": {"waiting": 1, "active": 0}}
    wiz.on("daemon.status", status)
    code, out, _ = run(capsys, "status", "--json")
    assert code == 0 and json.loads(out) == status
    code, out, _ = run(capsys, "status")
    assert "0.1 (pid 42, up 1h 2m 3s)" in out and "waiting 1, active 0" in out


def test_socket_option_beats_the_environment(fake: FakeWizd, capsys: pytest.CaptureFixture[str],
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WIZ_SOCKET", "/nonexistent/wizd.sock")
    fake.on("daemon.status", {"version": "v"})
    code, out, _ = run(capsys, "--socket", str(fake.path), "status", "--json")
    assert code == 0 and json.loads(out) == {"version": "v"}


def test_rpc_error_is_one_line(wiz: FakeWizd, capsys: Capsys) -> None:
    def conflict(params: dict, peer: object) -> None:
        raise Fail(-32002, "agent name already taken: alice", {"name": "alice"})
    wiz.on("agent.create", fn=conflict)
    code, _, err = run(capsys, "agent", "create", "alice", "--role", "r", "--backstory", "b",
                       "--goal", "g")
    assert (code, err) == (4, "wizctl: error: agent name already taken: alice\n")  # 4: conflict


def test_resolve_error_is_one_line(wiz: FakeWizd, capsys: Capsys) -> None:
    code, _, err = run(capsys, "agent", "show", "nobody")
    assert (code, err) == (3, "wizctl: error: no agent named 'nobody' or with that id prefix\n")


def test_connection_lost_is_one_line(wiz: FakeWizd, capsys: Capsys) -> None:
    def die(params: dict, peer: Any) -> None:
        peer.close()
        raise Fail(0, "never sent")
    wiz.on("daemon.status", fn=die)
    code, _, err = run(capsys, "status")
    assert (code, err) == (1, "wizctl: error: wizd closed the connection\n")


def test_ctrl_c_exits_130(wiz: FakeWizd, capsys: pytest.CaptureFixture[str],
                         monkeypatch: pytest.MonkeyPatch) -> None:
    from wizctl.client import Client

    def interrupted(self: object, method: str, **params: Any) -> Any:
        raise KeyboardInterrupt
    monkeypatch.setattr(Client, "call", interrupted)
    for args in (["status"], ["agent", "list"]):  # the fast path, and typer's
        code, _, err = run(capsys, *args)
        assert code == 130 and "Traceback" not in err


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "agent", "create")
    assert code == 2 and "Usage" in err


def test_agent_create_sends_only_given_options_and_resolves_the_provider(
        wiz: FakeWizd, capsys: pytest.CaptureFixture[str]) -> None:
    wiz.on("agent.create", fn=lambda p, peer: {**ALICE, **p})
    code, out, _ = run(capsys, "agent", "create", "bob", "--role", "r", "--backstory", "b",
                       "--goal", "g", "--provider", "local", "--temperature", "0.5")
    assert code == 0 and out == "created agent bob (a-123456), active\n"
    assert wiz.calls("agent.create") == [{"name": "bob", "role": "r", "backstory": "b", "goal": "g",
                                          "provider_id": "p-123456789", "temperature": 0.5}]


def test_agent_list_is_a_table_with_provider_names(
        wiz: FakeWizd, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "agent", "list")
    assert code == 0
    header, row = out.splitlines()
    assert header.split() == ["NAME", "STATUS", "ROLE", "PROVIDER", "MODEL", "ID"]
    assert row.split() == ["alice", "active", "tester", "local", "-", "a-123456"]
    assert header.index("STATUS") == row.index("active")


def test_agent_commands_accept_an_id_prefix(wiz: FakeWizd,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    wiz.on("agent.deactivate", fn=lambda p, peer: {**ALICE, "status": "inactive"})
    code, out, _ = run(capsys, "agent", "deactivate", "a-12")
    assert code == 0 and out == "deactivated agent alice (a-123456), inactive\n"
    assert wiz.calls("agent.deactivate") == [{"id": "a-123456789"}]


def test_provider_add_reads_a_hidden_key_from_stdin(
        wiz: FakeWizd, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("sk-secret\n"))
    wiz.on("provider.create", fn=lambda p, peer: {**PROVIDER, "name": p["name"]})
    code, out, _ = run(capsys, "provider", "add", "openai", "--api-key", "-", "--model", "gpt",
                       "--default")
    assert code == 0 and "sk-secret" not in out
    assert wiz.calls("provider.create") == [{"name": "openai", "type": "openai",
                                             "api_key": "sk-secret", "default_model": "gpt",
                                             "is_default": True}]


def test_provider_list_never_shows_a_key(wiz: FakeWizd, capsys: Capsys) -> None:
    code, out, _ = run(capsys, "provider", "list")
    assert out.splitlines()[1].split() == ["local", "openai", "m", "http://x/v1", "none", "*",
                                           "p-123456"]


def test_dm_new_resolves_names_to_user_ids(wiz: FakeWizd, capsys: Capsys) -> None:
    wiz.on("dm.create", fn=lambda p, peer: {"id": "dm-1", "type": "dm", "name": p.get("name"),
                                            "participants": ["u-me", *p["participants"]],
                                            "existing": False})
    code, out, _ = run(capsys, "dm", "new", "alice")
    assert code == 0 and out == "created DM @alice (dm-1) with me, alice\n"
    assert wiz.calls("dm.create") == [{"participants": ["u-alice"], "reuse": True}]


def test_jobs_table_and_job_show_by_prefix(wiz: FakeWizd, capsys: Capsys) -> None:
    job = {"id": "j-abcdef123", "name": "response_generator", "status": "failed", "priority": 0,
           "progress": 0, "attempts": 3, "max_attempts": 3, "failure_reason": "HTTP 500",
           "created_at": 1_700_000_000_000, "processed_on": None, "finished_on": None}
    wiz.on("job.list", {"jobs": [job]})

    def get(p: dict, peer: object) -> dict:
        if p["id"] != job["id"]:
            raise Fail(-32001, "job not found")
        return job
    wiz.on("job.get", fn=get)
    code, out, _ = run(capsys, "jobs", "--status", "failed", "-n", "5")
    assert code == 0 and wiz.calls("job.list")[0] == {"status": "failed", "limit": 5}
    assert out.splitlines()[1].split()[:4] == ["j-abcdef", "response_generator", "failed", "3/3"]
    code, out, _ = run(capsys, "job", "show", "j-abc")
    assert code == 0 and "failure:  HTTP 500" in out


def dm_with_alice(wiz: FakeWizd) -> None:
    wiz.on("dm.list", {"conversations": [{"id": "dm-1", "type": "dm", "name": None,
                                          "participants": ["u-me", "u-alice"]}]})
    wiz.on("message.send", fn=lambda p, peer: {
        "message": {"id": "m1", "seq": 1, "content": p["content"]}, "jobs": []})


@pytest.mark.parametrize(("stdin", "sent"), [
    ("hi\n", "hi"),
    ("two\nlines\n\n", "two\nlines"),  # inner newlines kept, final ones dropped
    ("no newline", "no newline"),
])
def test_send_dash_reads_the_text_from_stdin(wiz: FakeWizd, capsys: Capsys,
                                             monkeypatch: pytest.MonkeyPatch, stdin: str,
                                             sent: str) -> None:
    dm_with_alice(wiz)
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code, out, _ = run(capsys, "send", "alice", "-")
    assert (code, out) == (0, "sent m1 to @alice\n")
    assert wiz.calls("message.send") == [{"conversation_id": "dm-1", "content": sent}]


def test_send_dash_with_nothing_on_stdin_is_a_usage_error(
        wiz: FakeWizd, capsys: Capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    dm_with_alice(wiz)
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n"))
    code, _, err = run(capsys, "send", "alice", "-")
    assert code == 2 and "nothing to send: stdin was empty" in err
    assert wiz.calls("message.send") == []


def test_wizctl_imports_nothing_heavy() -> None:
    """Startup speed: wizctl must not pull in the daemon's stack (or rich)."""
    code = (
        "import sys, wizctl.main as m\n"
        "try:\n    m.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = {'trio', 'anyio', 'sqlalchemy', 'pydantic', 'openai', 'wizd', 'rich', 'httpx',\n"
        "         'prompt_toolkit'}\n"
        "print(sorted(n for n in sys.modules if n.split('.')[0] in heavy))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "[]"
