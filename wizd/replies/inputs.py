"""What an agent needs to answer a message, loaded when a reply attempt starts.

The processor loads its inputs with ``load_inputs`` (a read over the
caller's Connection). The job's data holds references only (see ``job``);
the provider's secret is resolved here, when the job runs, and never leaves
memory.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlalchemy import Connection

from ..llm.base import ChatMessage, ChatRequest, ProviderConfig
from ..llm.context import ContextMessage, build_context
from ..objects import Conversation
from ..services import conversations
from ..services.agents import DEFAULT_MAX_STEPS
from ..services.providers import provider_config
from ..store import replies as store
from ..store import steps as step_store
from .job import ReplyJobData
from .steps import Step, context_steps, read_steps


@dataclass(frozen=True)
class ReplyInputs:
    """Everything one reply attempt needs, loaded when the attempt starts."""

    agent_id: str
    agent_name: str
    agent_user_id: str
    conversation: Conversation
    trigger_id: str
    provider: ProviderConfig  # holds the secret: never log or store this
    request: ChatRequest
    # The trigger as the model saw it, stored with the reply if the trigger has
    # no llm_message yet; None when it has one.
    trigger_llm: ChatMessage | None
    # The agent's allow-list (server.tool patterns; empty: no tools) and step limit.
    tools: tuple[str, ...] = ()
    max_steps: int = DEFAULT_MAX_STEPS
    # The steps of this reply stored by an earlier attempt (a resumed job).
    steps: list[Step] = field(default_factory=list)


@dataclass(frozen=True)
class Skip:
    """The job has nothing to do any more (the agent or the message is gone)."""

    reason: str


def load_inputs(
    conn: Connection, data: ReplyJobData, *, default_context: int, max_context_bytes: int,
    max_reply_bytes: int,
) -> ReplyInputs | Skip:
    """The agent, its provider (secret resolved now), and the context up to and
    including the trigger message, within ``max_context_bytes`` (see
    ``build_context``); the request asks for at most ``max_reply_bytes`` of reply.

    Returns Skip if the agent was deleted or deactivated, or the trigger
    deleted. Raises NotFound if the conversation or the agent's provider is gone.
    """
    agent = store.reply_agent(conn, data["agent_id"])
    if agent is None or agent.deleted_at is not None:
        return Skip("the agent was deleted")
    if agent.status == "inactive":
        return Skip("the agent is inactive")
    trigger = store.trigger(conn, data["message_id"])
    if trigger is None or trigger.deleted_at is not None:
        return Skip("the message was deleted")
    trigger_id, trigger_seq = trigger.id, trigger.seq
    conversation = conversations.find(conn, data["conversation_id"])
    provider = provider_config(conn, agent.provider_id)
    limit = agent.context_messages or default_context
    history = _history(conn, conversation["id"], trigger_seq, limit, agent.user_id)
    context = build_context(agent_user_id=agent.user_id, system_prompt=agent.system_prompt,
                            history=history, limit=limit, max_bytes=max_context_bytes)
    request = ChatRequest(model=agent.model or provider.default_model, messages=context,
                          temperature=agent.temperature, max_tokens=agent.max_tokens,
                          max_reply_bytes=max_reply_bytes)
    last = context[-1] if len(context) > 1 else None
    trigger_llm = last if (
        last is not None and last.role == "user"
        and not trigger.has_llm_message) else None
    return ReplyInputs(
        agent_id=agent.id, agent_name=agent.name, agent_user_id=agent.user_id,
        conversation=conversation,
        trigger_id=trigger_id, provider=provider, request=request, trigger_llm=trigger_llm,
        tools=tuple(json.loads(agent.tools)) if agent.tools else (),
        max_steps=agent.max_steps or DEFAULT_MAX_STEPS,
        steps=read_steps(step_store.of_reply(conn, trigger_id, agent.user_id)),
    )


def _history(
    conn: Connection, conversation_id: str, upto_seq: int, limit: int, agent_user_id: str
) -> list[ContextMessage]:
    """The last ``limit`` non-error messages up to ``upto_seq``, oldest first,
    the agent's own replies with the tool steps that led to them."""
    history = []
    rows = store.newest_history(conn, conversation_id, upto_seq, limit)
    own_replies = [r.reply_to for r in rows if r.author_id == agent_user_id and r.reply_to]
    steps = step_store.of_replies(conn, own_replies, agent_user_id) if own_replies else {}
    for reply_to, author_id, content, kind, author_name, llm_role, llm_content in reversed(rows):
        # A stored LLM form is written from its author's side: another agent's
        # reply is stored as "assistant", but to this agent it is a "user"
        # turn, so only this agent's own forms and "user" forms are reused.
        reuse = llm_role is not None and (author_id == agent_user_id or llm_role == "user")
        history.append(ContextMessage(
            author_id=author_id, author_name=author_name, content=content,
            kind=kind, llm_role=llm_role if reuse else None,
            llm_content=llm_content if reuse else None,
            steps=context_steps(steps.get(reply_to, [])) if author_id == agent_user_id
            and reply_to else (),
        ))
    return history
