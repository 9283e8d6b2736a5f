"""message.search's service over a real database: ranked FTS5 hits with
their conversation and a snippet, filtered by conversation, agent and time;
the user's words are searched as words, never as query syntax."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from wizd.errors import InvalidInput, NotFound
from wizd.llm.base import ChatMessage
from wizd.replies import storing
from wizd.services import agents, conversations, messages, projects, search
from wizd.services.agents import AgentCreate
from wizd.services.runtime import Runtime

pytestmark = pytest.mark.anyio


async def agent(rt: Runtime, name: str) -> dict[str, Any]:
    return await agents.create(rt, AgentCreate(name=name, role="r", backstory="", goal=""))


async def say(rt: Runtime, conversation_id: str, content: str) -> dict[str, Any]:
    return (await messages.send(rt, conversation_id=conversation_id, content=content))["message"]


async def reply(rt: Runtime, ada: dict[str, Any], to: dict[str, Any], content: str) -> None:
    now = rt.clock.now_ms()
    await rt.db.write(lambda conn: storing.store_reply(
        conn, conversation={"id": to["conversation_id"], "type": "dm"},
        agent_user_id=ada["user_id"], trigger_id=to["id"], content=content,
        trigger_llm=ChatMessage("user", to["content"]), now_ms=now))


def contents(found: dict[str, Any]) -> list[str]:
    return [hit["message"]["content"] for hit in found["results"]]


async def test_hits_are_ranked_and_carry_their_conversation_and_a_snippet(
    rt: Runtime,
) -> None:
    ada = await agent(rt, "ada")
    dm = await conversations.create_dm(rt, participants=["ada"])
    await say(rt, dm["id"], "the weather is fine today")
    await say(rt, dm["id"], "kangaroo " * 3 + "kangaroo everywhere, a kangaroo party")
    await say(rt, dm["id"], "one kangaroo in a long sentence about many other things")
    found = await search.search(rt, query="kangaroo")
    assert contents(found) == ["kangaroo " * 3 + "kangaroo everywhere, a kangaroo party",
                               "one kangaroo in a long sentence about many other things"]
    hit = found["results"][1]
    # A DM with no name is named for its participants other than the local user.
    assert hit["conversation"] == {"id": dm["id"], "type": "dm", "name": ada["name"]}
    assert "[kangaroo]" in hit["snippet"]
    assert hit["message"]["id"] and hit["author_name"] not in ("", "ada")  # the local user
    assert isinstance(hit["score"], float)


async def test_plain_words_with_query_syntax_in_them_just_work(rt: Runtime) -> None:
    await agent(rt, "ada")
    dm = await conversations.create_dm(rt, participants=["ada"])
    await say(rt, dm["id"], 'she said "hello AND goodbye" (NEAR the door)')
    await say(rt, dm["id"], "goodbye")
    long = 'she said "hello AND goodbye" (NEAR the door)'
    for query in ['"hello', "hello AND", "NEAR(", "door)", "AND goodbye", "hel*"]:
        assert contents(await search.search(rt, query=query)) == [long], query
    # Punctuation is no word: "-goodbye" is goodbye; "*" and '""' hold no word.
    assert set(contents(await search.search(rt, query="-goodbye"))) == {long, "goodbye"}
    for query in ["*", '""', "-"]:
        assert contents(await search.search(rt, query=query)) == [], query
    # Every word must be there, in any order.
    assert contents(await search.search(rt, query="door hello")) == [
        'she said "hello AND goodbye" (NEAR the door)']
    assert contents(await search.search(rt, query="door nowhere")) == []


async def test_raw_fts5_syntax_on_request_and_its_errors_are_invalid_input(
    rt: Runtime,
) -> None:
    await agent(rt, "ada")
    dm = await conversations.create_dm(rt, participants=["ada"])
    await say(rt, dm["id"], "apples and pears")
    await say(rt, dm["id"], "apples and plums")
    assert contents(await search.search(rt, query="apples NOT plums", raw=True)) == [
        "apples and pears"]
    assert len((await search.search(rt, query="app*", raw=True))["results"]) == 2
    with pytest.raises(InvalidInput) as info:
        await search.search(rt, query='"apples', raw=True)
    assert info.value.field == "query" and "syntax" in info.value.message


async def test_filters_by_conversation_agent_and_time(rt: Runtime) -> None:
    ada, bob = await agent(rt, "ada"), await agent(rt, "bob")
    with_ada = await conversations.create_dm(rt, participants=["ada"])
    with_bob = await conversations.create_dm(rt, participants=["bob"])
    await projects.create_project(rt, name="p")
    general = await projects.create_channel(rt, project_id="p", name="general")
    to_ada = await say(rt, with_ada["id"], "topic one from me to ada")
    await reply(rt, ada, to_ada, "topic reply from ada")
    await say(rt, with_bob["id"], "topic two from me to bob")
    in_channel = await say(rt, general["id"], "topic in the channel, @ada")
    await reply(rt, ada, {**in_channel, "conversation_id": general["id"]},
                "topic answer by ada in the channel")
    everything = contents(await search.search(rt, query="topic"))
    assert len(everything) == 5

    only_bob_dm = await search.search(rt, query="topic", conversation_id=with_bob["id"])
    assert contents(only_bob_dm) == ["topic two from me to bob"]
    # By ada: what she wrote anywhere, and everything in her DMs.
    by_ada = set(contents(await search.search(rt, query="topic", agent="ada")))
    assert by_ada == {"topic one from me to ada", "topic reply from ada",
                      "topic answer by ada in the channel"}
    assert set(contents(await search.search(rt, query="topic", agent=bob["id"]))) == {
        "topic two from me to bob"}

    later = in_channel["created_at"]
    # Messages stored in the same millisecond as in_channel count as "since" too.
    hits = (await search.search(rt, query="topic"))["results"]
    since_later = {h["message"]["content"] for h in hits if h["message"]["created_at"] >= later}
    assert set(contents(await search.search(rt, query="topic", since=later))) == since_later
    assert {"topic in the channel, @ada", "topic answer by ada in the channel"} <= since_later
    assert contents(await search.search(rt, query="topic", since=later + 10**9)) == []
    assert len((await search.search(rt, query="topic", limit=2))["results"]) == 2


async def test_bad_params(rt: Runtime) -> None:
    for kwargs in ({"query": "  "}, {"query": "x", "limit": 0}, {"query": "x", "limit": 101},
                   {"query": "x", "since": -1}):
        with pytest.raises(InvalidInput):
            await search.search(rt, **kwargs)
    with pytest.raises(NotFound):
        await search.search(rt, query="x", agent="nobody")
    with pytest.raises(NotFound):
        await search.search(rt, query="x", conversation_id="nowhere")


async def test_a_channel_hit_names_project_and_channel(rt: Runtime) -> None:
    await projects.create_project(rt, name="apollo")
    general = await projects.create_channel(rt, project_id="apollo", name="general")
    await say(rt, general["id"], "liftoff")
    [hit] = (await search.search(rt, query="liftoff"))["results"]
    assert hit["conversation"] == {"id": general["id"], "type": "channel",
                                   "name": "apollo#general"}


async def test_deleted_messages_are_not_found(rt: Runtime) -> None:
    await agent(rt, "ada")
    dm = await conversations.create_dm(rt, participants=["ada"])
    gone = await say(rt, dm["id"], "secret plans")

    def delete(conn: Any) -> None:
        conn.execute(text("UPDATE messages SET deleted_at = 1 WHERE id = :id"), {"id": gone["id"]})

    await rt.db.write(delete)
    assert contents(await search.search(rt, query="plans")) == []
