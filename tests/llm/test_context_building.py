"""build_context and system_prompt: pure functions, no I/O."""

from __future__ import annotations

from wizd.llm import ChatMessage, ContextMessage, build_context, system_prompt

AGENT = "u-agent"


def msg(author: str, content: str, kind: str = "text", **llm: str) -> ContextMessage:
    return ContextMessage(author, author.removeprefix("u-").title(), content, kind, **llm)


def build(history: list[ContextMessage], limit: int = 20) -> tuple[ChatMessage, ...]:
    return build_context(agent_user_id=AGENT, system_prompt="SYS", history=history, limit=limit)


def test_a_dm_maps_authors_to_roles_without_prefixes() -> None:
    history = [msg("u-ann", "hi"), msg(AGENT, "hello Ann"), msg("u-ann", "how are you?")]
    assert build(history) == (
        ChatMessage("system", "SYS"),
        ChatMessage("user", "hi"),
        ChatMessage("assistant", "hello Ann"),
        ChatMessage("user", "how are you?"),
    )


def test_error_messages_are_never_sent() -> None:
    history = [msg("u-ann", "hi"), msg(AGENT, "failed", kind="error"), msg("u-ann", "again")]
    assert build(history) == (
        ChatMessage("system", "SYS"),
        ChatMessage("user", "hi"),
        ChatMessage("user", "again"),
    )


def test_the_limit_keeps_the_newest_messages_after_dropping_errors() -> None:
    history = [msg("u-ann", f"m{i}") for i in range(5)]
    history.insert(4, msg(AGENT, "oops", kind="error"))
    assert [m.content for m in build(history, limit=2)] == ["SYS", "m3", "m4"]
    assert [m.content for m in build(history, limit=0)] == ["SYS"]
    assert len(build(history, limit=100)) == 6


def test_more_than_two_authors_prefix_user_messages_with_names() -> None:
    history = [
        msg("u-ann", "hi all"),
        msg("u-bob", "hey"),
        msg(AGENT, "hello both"),
        msg("u-ann", "@agent what now?"),
    ]
    assert build(history) == (
        ChatMessage("system", "SYS"),
        ChatMessage("user", "Ann: hi all"),
        ChatMessage("user", "Bob: hey"),
        ChatMessage("assistant", "hello both"),
        ChatMessage("user", "Ann: @agent what now?"),
    )


def test_authors_are_counted_over_the_whole_history_not_the_window() -> None:
    history = [msg("u-bob", "early"), msg("u-ann", "hi"), msg(AGENT, "hello")]
    assert build(history, limit=1)[-1] == ChatMessage("assistant", "hello")
    assert build(history, limit=2)[1] == ChatMessage("user", "Ann: hi")


def test_an_author_of_only_errors_does_not_count() -> None:
    history = [msg("u-ann", "hi"), msg("u-other", "boom", kind="error"), msg(AGENT, "hello")]
    assert build(history)[1] == ChatMessage("user", "hi")


def test_other_agents_speak_as_users() -> None:
    history = [msg("u-ann", "hi"), msg("u-bot2", "I am the other bot"), msg(AGENT, "me too")]
    assert [(m.role, m.content) for m in build(history)[1:]] == [
        ("user", "Ann: hi"),
        ("user", "Bot2: I am the other bot"),
        ("assistant", "me too"),
    ]


def test_a_stored_llm_message_is_used_as_is() -> None:
    history = [
        msg("u-ann", "hi", llm_role="user", llm_content="Ann said: hi"),
        msg("u-bob", "yo"),
        msg(AGENT, "shown text", llm_role="assistant", llm_content="what the model said"),
        msg("u-ann", "only content", llm_content="stored content"),
    ]
    assert build(history)[1:] == (
        ChatMessage("user", "Ann said: hi"),
        ChatMessage("user", "Bob: yo"),
        ChatMessage("assistant", "what the model said"),
        ChatMessage("user", "stored content"),
    )


def test_system_prompt_is_derived_from_the_profile() -> None:
    prompt = system_prompt("Ada", "Researcher.", "Grew up\namong books", "Find the truth!")
    lines = prompt.splitlines()
    assert lines[:4] == [
        "You are Ada.",
        "Your role: Researcher.",
        "Your backstory: Grew up among books.",
        "Your goal: Find the truth!",
    ]
    assert len(lines) == 5


def test_system_prompt_leaves_out_empty_fields() -> None:
    prompt = system_prompt("Bob", "", "  ", "Help")
    assert prompt.splitlines()[:2] == ["You are Bob.", "Your goal: Help."]


# -- the size cap (max_bytes, UTF-8) ------------------------------------------------


def capped(history: list[ContextMessage], max_bytes: int, system: str = "SYS"
           ) -> tuple[ChatMessage, ...]:
    return build_context(agent_user_id=AGENT, system_prompt=system, history=history,
                         limit=100, max_bytes=max_bytes)


def size(messages: tuple[ChatMessage, ...]) -> int:
    return sum(len(m.content.encode()) for m in messages)


def test_the_newest_messages_that_fit_are_kept_and_older_ones_dropped() -> None:
    history = [msg("u-ann", f"{i}" + "x" * 999) for i in range(10)]
    built = capped(history, 4096)
    assert [m.content[0] for m in built[1:]] == ["6", "7", "8", "9"]  # 3 + 4 * 1000 bytes
    assert built[0] == ChatMessage("system", "SYS")
    assert size(built) <= 4096


def test_sizes_are_utf8_bytes() -> None:
    history = [msg("u-ann", "é" * 600) for _ in range(5)]  # 1200 bytes each
    assert len(capped(history, 4096)) == 1 + 3


def test_an_older_message_that_does_not_fit_ends_the_window() -> None:
    # No gap: once one is left out, so is everything before it.
    history = [msg("u-ann", "small"), msg("u-ann", "y" * 3100), msg("u-ann", "z" * 1000)]
    assert [m.content[0] for m in capped(history, 4096)[1:]] == ["z"]


def test_a_newest_message_over_the_cap_is_cut_to_fit() -> None:
    history = [msg("u-ann", "older"), msg("u-ann", "€" * 5000)]
    built = capped(history, 4096)
    assert len(built) == 2
    assert built[1].content == "€" * 1364  # 4093 bytes left: 1364 whole characters
    assert size(built) <= 4096


def test_a_long_system_prompt_is_cut_to_half_the_cap() -> None:
    built = capped([msg("u-ann", "hello")], 4096, system="S" * 10_000)
    assert built == (ChatMessage("system", "S" * 2048), ChatMessage("user", "hello"))


def test_the_name_prefix_counts_too() -> None:
    history = [msg("u-bob", "b"), msg(AGENT, "a"), msg("u-ann", "x" * 4090)]
    built = capped(history, 4096)
    assert built[-1].content == "Ann: " + "x" * 4088  # 3 + 5 + 4088 = 4096
    assert len(built) == 2
