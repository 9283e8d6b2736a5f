"""The scripting examples in examples/ (Python with the standard library only,
Node.js with ``net`` only, bash with socat and jq), each run as a person
would run it, against a real wizd. Skipped, with the reason, only where the
interpreter or a tool it needs is not installed."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.daemon import Wizd

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
DEADLINE = 30.0
OFFLINE = '[offline demo] I\'m {} (helper). You said: "{}"'

# name -> (the command before its arguments, the tools it needs)
RUNS = {
    "python": ([sys.executable, str(EXAMPLES / "ask.py")], []),
    "node": (["node", str(EXAMPLES / "ask.mjs")], ["node"]),
    "bash": (["bash", str(EXAMPLES / "ask.sh")], ["bash", "socat", "jq"]),
}


@pytest.fixture(params=sorted(RUNS))
def example(request: pytest.FixtureRequest) -> list[str]:
    command, tools = RUNS[request.param]
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not installed: the {request.param} example "
                    "cannot run here")
    return command


def run(w: Wizd, command: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WIZ_SOCKET": str(w.socket)}
    return subprocess.run([*command, *args], env=env, capture_output=True, text=True,
                          timeout=DEADLINE)


def test_an_example_asks_and_prints_the_reply(wizd: Wizd, example: list[str]) -> None:
    first = run(wizd, example, "ada", "what is 6 x 7?")
    assert (first.returncode, first.stderr) == (0, ""), first.stderr
    assert first.stdout == OFFLINE.format("ada", "what is 6 x 7?") + "\n"
    # Again: the agent it made and the DM it opened are reused.
    text = 'quotes " and \\ and ünïcödé'
    again = run(wizd, example, "ada", text)
    assert (again.returncode, again.stdout) == (0, OFFLINE.format("ada", text) + "\n")
    [agent] = wizd.call("agent.list")["agents"]
    assert (agent["name"], agent["role"]) == ("ada", "helper")
    [dm] = wizd.call("dm.list")["conversations"]
    assert [m["content"] for m in wizd.call("message.list", conversation_id=dm["id"])
            ["messages"]][::2] == ["what is 6 x 7?", text]


def test_an_example_uses_an_existing_agent(wizd: Wizd, example: list[str]) -> None:
    wizd.call("agent.create", name="bob", role="Critic", backstory="b", goal="g")
    done = run(wizd, example, "bob", "hello")
    assert done.stdout == '[offline demo] I\'m bob (Critic). You said: "hello"\n'
    assert len(wizd.call("agent.list")["agents"]) == 1


def test_an_error_reply_exits_1(wizd: Wizd, example: list[str]) -> None:
    done = run(wizd, example, "ada", "please /fail-auth")
    assert (done.returncode, done.stdout) == (1, "")
    assert "Agent ada could not reply" in done.stderr and done.stderr.count("\n") == 1


def test_without_wizd_an_example_says_so(tmp_path: Path, example: list[str]) -> None:
    env = {**os.environ, "WIZ_SOCKET": str(tmp_path / "none.sock")}
    done = subprocess.run([*example, "ada", "hi"], env=env, capture_output=True, text=True,
                          timeout=DEADLINE)
    assert done.returncode == 1 and done.stdout == ""
    assert "Traceback" not in done.stderr and done.stderr.strip()
