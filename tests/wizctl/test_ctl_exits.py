"""How wizctl fails, for scripts: exit codes that tell kinds apart, and under
``--json`` one JSON object on stderr (issue 11). Against the scripted socket
server; the real daemon's words are checked in tests/e2e/test_wizctl.py."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest
import typer

from tests.wizctl.fakewizd import Fail, FakeWizd
from wizctl.cli import app
from wizctl.main import main

Capsys = pytest.CaptureFixture[str]
ME = {"id": "u-me", "name": "me", "type": "human"}
ALICE = {"id": "a-123456789", "user_id": "u-alice", "name": "alice", "status": "active"}
USERS = [ME, {"id": "u-alice", "name": "alice", "type": "agent"}]
DM = {"id": "dm-1", "type": "dm", "name": None, "participants": ["u-me", "u-alice"]}


@pytest.fixture
def wiz(fake: FakeWizd, monkeypatch: pytest.MonkeyPatch) -> FakeWizd:
    monkeypatch.setenv("WIZ_SOCKET", str(fake.path))
    fake.on("user.me", ME)
    fake.on("user.list", {"users": USERS})
    fake.on("agent.list", {"agents": [ALICE, {**ALICE, "id": "a-123999", "name": "alina"}]})
    fake.on("dm.list", {"conversations": [DM]})
    return fake


def run(capsys: Capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def error_object(err: str) -> dict[str, Any]:
    """stderr under --json: exactly one line, one object with code, message, data."""
    assert err.endswith("\n") and err.count("\n") == 1, err
    obj = json.loads(err)
    assert set(obj) == {"code", "message", "data"}
    return dict(obj)


@pytest.mark.parametrize(("code", "exit"), [
    (-32602, 2), (-32001, 3), (-32002, 4), (-32003, 6), (-32004, 7), (-32005, 9),
    (-32603, 1), (-32601, 1),
])
def test_daemon_errors_exit_by_kind(wiz: FakeWizd, capsys: Capsys, code: int, exit: int) -> None:
    def fail(params: dict, peer: object) -> None:
        raise Fail(code, "it went wrong", {"why": "because"})
    wiz.on("daemon.status", fn=fail)
    assert run(capsys, "status") == (exit, "", "wizctl: error: it went wrong\n")
    status, out, err = run(capsys, "status", "--json")
    assert (status, out) == (exit, "")
    assert error_object(err) == {"code": code, "message": "it went wrong",
                                 "data": {"why": "because"}}


def test_daemon_not_running_exits_5(tmp_path: Path, capsys: Capsys) -> None:
    sock = str(tmp_path / "nobody.sock")
    code, _, err = run(capsys, "--socket", sock, "status")
    assert code == 5 and err.startswith("wizctl: error: wizd is not running (no socket at")
    code, _, err = run(capsys, "--socket", sock, "agent", "list", "--json")
    obj = error_object(err)
    assert code == 5 and (obj["code"], obj["data"]) == (-33001, {"socket": sock})
    assert obj["message"].startswith("wizd is not running")


def test_names_that_match_nothing_or_several(wiz: FakeWizd, capsys: Capsys) -> None:
    code, _, err = run(capsys, "agent", "show", "nobody", "--json")
    assert code == 3
    assert error_object(err) == {"code": -32001, "data": {"kind": "agent", "ref": "nobody"},
                                 "message": "no agent named 'nobody' or with that id prefix"}
    code, _, err = run(capsys, "agent", "show", "a-123")  # alice's and alina's ids
    assert code == 2 and err.startswith("wizctl: error: 'a-123' is ambiguous")
    code, _, err = run(capsys, "agent", "show", "a-123", "--json")
    assert code == 2 and error_object(err)["code"] == -32602


def test_usage_errors_exit_2(capsys: Capsys) -> None:
    code, out, err = run(capsys, "agent", "create", "x")
    assert (code, out) == (2, "") and "Usage: wizctl agent create" in err
    code, out, err = run(capsys, "agent", "create", "x", "--json")
    obj = error_object(err)
    assert (code, out, obj["code"]) == (2, "", -32602)
    assert "--role" in obj["message"]


def test_content_over_the_limit_is_refused_before_sending(
        wiz: FakeWizd, capsys: Capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    wiz.on("message.send", {"message": {"id": "m1"}, "jobs": []})
    words = "invalid content: longer than 100000 characters"
    for piped in ("x" * 100_001, "x" * 2_000_000):
        monkeypatch.setattr(sys, "stdin", io.StringIO(piped + "\n"))
        assert run(capsys, "send", "alice", "-") == (2, "", f"wizctl: error: {words}\n")
    monkeypatch.setattr(sys, "stdin", io.StringIO("x" * 100_001))
    code, _, err = run(capsys, "send", "alice", "-", "--json")
    assert code == 2 and error_object(err) == {
        "code": -32602, "message": words,
        "data": {"field": "content", "problem": "longer than 100000 characters"}}
    assert run(capsys, "ask", "alice", "y" * 100_001)[0] == 2
    assert wiz.calls("message.send") == []
    monkeypatch.setattr(sys, "stdin", io.StringIO("x" * 100_000 + "\n"))
    assert run(capsys, "send", "alice", "-")[0] == 0  # at the limit is fine
    assert [len(c["content"]) for c in wiz.calls("message.send")] == [100_000]


def test_the_limit_is_the_daemons() -> None:
    from wizctl.replies import MAX_CONTENT
    from wizd.services import messages
    assert MAX_CONTENT == messages.MAX_CONTENT


def commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = []
    for name, cmd in getattr(group, "commands", {}).items():
        if hasattr(cmd, "commands"):
            found += commands(cmd, (*path, name))
        else:
            found.append(((*path, name), cmd))
    return found


def test_every_command_takes_json() -> None:
    every = commands(typer.main.get_command(app))
    assert ("service", "install") in [p for p, _ in every] and len(every) > 30
    assert [" ".join(p) for p, cmd in every
            if not any("--json" in param.opts for param in cmd.params)] == []


def test_help_lists_the_exit_codes(capsys: Capsys) -> None:
    assert main(["--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    for words in ("2 usage", "3 not found", "4 conflict", "5 wizd is not running",
                  "6 provider error", "7 storage unavailable", "8 timed out", '"code"'):
        assert words in text


def test_dm_new_uses_the_open_dm_unless_new(wiz: FakeWizd, capsys: Capsys) -> None:
    def create(params: dict, peer: object) -> dict:
        return {**DM, "existing": bool(params.get("reuse"))}
    wiz.on("dm.create", fn=create)
    code, out, err = run(capsys, "dm", "new", "alice")
    assert (code, out) == (0, "")
    assert err == ("wizctl: using the existing DM @alice (dm-1) with me, alice "
                   "(--new makes another)\n")
    code, out, err = run(capsys, "dm", "new", "alice", "--json")
    assert (code, err) == (0, "") and json.loads(out)["existing"] is True
    code, out, err = run(capsys, "dm", "new", "alice", "--new")
    assert (code, out, err) == (0, "created DM @alice (dm-1) with me, alice\n", "")
    assert wiz.calls("dm.create") == [{"participants": ["u-alice"], "reuse": True}] * 2 + [
        {"participants": ["u-alice"]}]
