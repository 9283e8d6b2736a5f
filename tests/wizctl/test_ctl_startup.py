"""``wizctl status`` starts fast: it imports only what it needs (no typer, and
nothing of the daemon), and says exactly what the typer path says.

The fast path (``wizctl.quick``) is checked against the typer app for every
form it takes, and for forms close to them that it must leave to typer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.support.daemon import Wizd
from tests.wizctl.fakewizd import Fail, FakeWizd
from wizctl import main as entry
from wizctl import quick

Capsys = pytest.CaptureFixture[str]
STATUS = {"version": "0.1", "pid": 42, "uptime_ms": 3_723_000, "db": "/d", "socket": "/s",
          "queue": {"waiting": 1, "active": 0}}
# What `wizctl status` must not import: the daemon's stack, and the CLI framework
# with what it loads (typer builds pydantic TypeAdapters for option values).
HEAVY = {"wizd", "trio", "anyio", "sqlalchemy", "aiosqlite", "openai", "httpx", "pydantic",
         "rich", "prompt_toolkit", "typer"}
IMPORTS = (
    "import sys\n"
    "from wizctl.main import main\n"
    "code = main(sys.argv[1:])\n"
    f"heavy = {sorted(HEAVY)!r}\n"
    "print(sorted({m.split('.')[0] for m in sys.modules} & set(heavy)))\n"
    "sys.exit(code)\n"
)


@pytest.mark.parametrize("args", [["status"], ["status", "--json"]])
def test_status_against_a_real_wizd_imports_nothing_heavy(wizd: Wizd, args: list[str]) -> None:
    env = dict(os.environ, WIZ_SOCKET=str(wizd.socket))
    done = subprocess.run([sys.executable, "-c", IMPORTS, *args], env=env, capture_output=True,
                          text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    *shown, imported = done.stdout.splitlines()
    assert imported == "[]"
    assert str(wizd.socket) in "\n".join(shown)


def test_status_with_socket_option_imports_nothing_heavy(wizd: Wizd) -> None:
    env = {k: v for k, v in os.environ.items() if k != "WIZ_SOCKET"}
    done = subprocess.run([sys.executable, "-c", IMPORTS, f"--socket={wizd.socket}", "status"],
                          env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "[]"


def both(capsys: Capsys, args: list[str]) -> tuple[tuple[int, str, str], tuple[int, str, str]]:
    """(exit code, stdout, stderr) of ``args`` through the fast path, then through typer."""
    fast = entry.run(args)
    fast_out = capsys.readouterr()
    slow = entry.run(args, fast=False)
    slow_out = capsys.readouterr()
    return (fast, fast_out.out, fast_out.err), (slow, slow_out.out, slow_out.err)


FORMS = [["status"], ["status", "--json"], ["--socket", "{sock}", "status"],
         ["--socket={sock}", "status", "--json"], ["--socket", "{sock}", "status", "--json"]]


@pytest.mark.parametrize("form", FORMS)
def test_fast_path_says_what_typer_says(fake: FakeWizd, capsys: Capsys,
                                        monkeypatch: pytest.MonkeyPatch, form: list[str]) -> None:
    monkeypatch.setenv("WIZ_SOCKET", str(fake.path))
    fake.on("daemon.status", STATUS)
    args = [a.format(sock=fake.path) for a in form]
    assert quick.match(args) is not None
    fast, slow = both(capsys, args)
    assert fast == slow
    assert fast[0] == 0 and ("--json" not in args or json.loads(fast[1]) == STATUS)


@pytest.mark.parametrize("as_json", [False, True])
def test_fast_path_fails_as_typer_does(fake: FakeWizd, capsys: Capsys,
                                       monkeypatch: pytest.MonkeyPatch, as_json: bool) -> None:
    args = ["status", "--json"] if as_json else ["status"]
    monkeypatch.setenv("WIZ_SOCKET", str(fake.path.with_name("nobody.sock")))
    fast, slow = both(capsys, args)
    assert fast == slow and fast[0] == 5  # wizd is not running

    monkeypatch.setenv("WIZ_SOCKET", str(fake.path))
    def broken(params: dict, peer: object) -> None:
        raise Fail(-32004, "storage unavailable: disk full")
    fake.on("daemon.status", fn=broken)
    fast, slow = both(capsys, args)
    assert fast == slow and fast[0] == 7


def test_empty_environment_socket_is_unset_as_for_typer(fake: FakeWizd,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WIZ_SOCKET", "")
    assert quick.match(["status"]) == (None, False)
    monkeypatch.setenv("WIZ_SOCKET", str(fake.path))
    assert quick.match(["status", "--json"]) == (str(fake.path), True)
    assert quick.match(["--socket", "/x", "status"]) == ("/x", False)


@pytest.mark.parametrize("args", [
    [], ["--help"], ["status", "--help"], ["--help", "status"], ["status", "--json", "--json"],
    ["status", "extra"], ["--json", "status"], ["--socket"], ["--socket", "status"],
    ["--socket=", "status"], ["--socket", "--json", "status"], ["--socket", "/a", "--socket",
    "/b", "status"], ["stat"], ["status", "-h"], ["ask", "ada", "hi"],
])
def test_everything_else_goes_to_typer(args: list[str]) -> None:
    assert quick.match(args) is None
