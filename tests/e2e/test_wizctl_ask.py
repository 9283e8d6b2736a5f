"""``wizctl ask AGENT QUESTION`` end to end: the real command against a real
wizd (offline provider, or the scripted OpenAI-compatible server where the
answer must stream in pieces)."""

from __future__ import annotations

import json

from tests.e2e.test_wizctl import (
    Running,
    ok,
    srv,  # noqa: F401  (a fixture)
    streaming_agent,
    wizctl,
)
from tests.support.daemon import Wizd
from tests.support.openai_server import Reply, ThreadedOpenAIServer

OFFLINE = '[offline demo] I\'m ada (Researcher). You said: "{}"'


def test_ask_opens_the_dm_once_and_prints_the_answer(wizd: Wizd) -> None:
    wizd.call("agent.create", name="ada", role="Researcher", backstory="b", goal="g")
    assert ok(wizctl(wizd, "ask", "ada", "what is 2+2?")) == OFFLINE.format("what is 2+2?") + "\n"
    assert ok(wizctl(wizd, "ask", "ada", "-", input="from stdin\n")) == (
        OFFLINE.format("from stdin") + "\n")
    [dm] = wizd.call("dm.list")["conversations"]  # made by the first ask, reused by the second
    assert [m["content"] for m in wizd.call("message.list", conversation_id=dm["id"])
            ["messages"]] == ["what is 2+2?", OFFLINE.format("what is 2+2?"),
                              "from stdin", OFFLINE.format("from stdin")]

    reply = json.loads(ok(wizctl(wizd, "ask", "ada", "and json?", "--json")))
    assert reply["content"] == OFFLINE.format("and json?") and reply["kind"] == "text"
    assert reply["conversation_id"] == dm["id"]


def test_ask_streams_the_answer_as_it_comes(wizd: Wizd, srv: ThreadedOpenAIServer) -> None:  # noqa: F811
    streaming_agent(wizd, srv)
    # Stalls half-way: what is printed came as pieces, not with the stored reply.
    srv.enqueue(Reply(chunks=["Thinking", " it", " over"], stall=True))
    with Running(wizd, "ask", "ada", "hm?") as ask:
        ask.read_until(lambda: ask.out == b"Thinking it over", "the streamed pieces")
        assert ask.proc.poll() is None
    [stalled] = wizd.call("job.list", status="active")["jobs"]
    wizd.call("job.cancel", id=stalled["id"])  # it holds the DM's place in the queue
    srv.enqueue(Reply(chunks=["Hel", "lo\twor", "ld"], chunk_delay=0.02))
    # To a pipe the text is written as it is (the tab stays a tab).
    assert ok(wizctl(wizd, "ask", "ada", "again")) == "Hello\tworld\n"


def test_ask_with_an_error_answer_exits_6(wizd: Wizd) -> None:
    wizd.call("agent.create", name="ada", role="Researcher", backstory="b", goal="g")
    proc = wizctl(wizd, "ask", "ada", "please /fail-auth")
    assert (proc.returncode, proc.stdout) == (6, "")
    assert proc.stderr.startswith("wizctl: ada: Agent ada could not reply")
    assert proc.stderr.count("\n") == 1

    proc = wizctl(wizd, "ask", "ada", "again /fail-auth", "--json")
    assert proc.returncode == 6
    reply = json.loads(proc.stdout)
    assert reply["kind"] == "error"
    err = json.loads(proc.stderr)
    assert err["code"] == -32003 and err["data"]["reply"] == reply
    assert err["message"] == f"ada: {reply['content']}"


def test_ask_an_inactive_or_unknown_agent(wizd: Wizd) -> None:
    wizd.call("agent.create", name="ada", role="Researcher", backstory="b", goal="g")
    wizd.call("agent.deactivate", id="ada")
    proc = wizctl(wizd, "ask", "ada", "hello?")
    assert (proc.returncode, proc.stdout) == (4, "")
    assert proc.stderr == ("wizctl: error: agent ada is inactive, so it will not answer "
                           "(`wizctl agent activate ada`)\n")
    proc = wizctl(wizd, "ask", "bob", "hello?")
    assert proc.returncode == 3 and "no agent named 'bob'" in proc.stderr
    assert wizd.call("dm.list")["conversations"] == []


def test_ask_times_out_with_8(wizd: Wizd) -> None:
    wizd.call("agent.create", name="ada", role="Researcher", backstory="b", goal="g")
    proc = wizctl(wizd, "ask", "ada", "slowly /hang", "--timeout", "0.3")
    # What came before the stall, ended with a newline; then the error.
    assert proc.returncode == 8 and proc.stdout.endswith("\n")
    assert OFFLINE.format("slowly /hang").startswith(proc.stdout.rstrip("\n"))
    assert proc.stderr.startswith("wizctl: error: no reply within 0.3 s")
