"""Queries over the steps of tool-using replies: ``llm_messages`` rows with
no message of their own (migration 12).

A step is the model's assistant turn that asked for tools (``position`` 0,
``tool_calls`` the calls as JSON) and one ``tool`` row per call (``position``
1.., in the calls' order). A tool row is written with ``tool_state``
'started' right before its call runs and becomes 'done' with the result, so
that a resumed job can tell a call in flight (started, not done) from one
never started (no row). A call that needs the user's approval is 'waiting'
until ``job.approve`` makes it 'approved' (then it runs) or ``job.deny``
'done' with a refusal. Rows are found by the trigger (``reply_to``) and the
agent's user (``author_id``): one reply per (trigger, agent), whichever
attempt or job wrote them.

Plain SQL through ``raw``, as the other statements of a reply job.
"""

from __future__ import annotations

import json
from typing import NamedTuple

from sqlalchemy import Connection

from .database import is_pg, raw
from .jobs import THIS_NODE


class StepRow(NamedTuple):
    """One row of a step (the columns of ``_COLUMNS``)."""

    id: str
    job_id: str | None
    reply_to: str
    step: int
    position: int
    role: str
    content: str
    tool_calls: str | None  # JSON: [{"id", "name", "arguments"}], on position 0
    tool_call_id: str | None
    tool_name: str | None
    tool_state: str | None
    created_at: int
    updated_at: int
    prompt_tokens: int | None  # on position 0: what the model call cost
    completion_tokens: int | None


_COLUMNS = ("id, job_id, reply_to, step, position, role, content, tool_calls, tool_call_id,"
            " tool_name, tool_state, created_at, updated_at, prompt_tokens, completion_tokens")
_OF_REPLY = (f"SELECT {_COLUMNS} FROM llm_messages WHERE reply_to = :reply_to"
             " AND author_id = :author_id ORDER BY step, position")
_OF_JOB = f"SELECT {_COLUMNS} FROM llm_messages WHERE job_id = :job_id ORDER BY step, position"
_INSERT = (
    "INSERT INTO llm_messages (id, message_id, role, content, created_at, updated_at, model,"
    " prompt_tokens, completion_tokens, job_id, reply_to, author_id, step, position,"
    " tool_calls, tool_call_id, tool_name, tool_state) VALUES (:id, NULL, :role, :content,"
    " :now, :now, :model, :prompt_tokens, :completion_tokens, :job_id, :reply_to, :author_id,"
    " :step, :position, :tool_calls, :tool_call_id, :tool_name, :tool_state)")
_FINISH = ("UPDATE llm_messages SET content = :content, tool_state = 'done', updated_at = :now,"
           " job_id = :job_id WHERE reply_to = :reply_to AND author_id = :author_id"
           " AND tool_call_id = :tool_call_id AND role = 'tool'")


_SET_STATE = ("UPDATE llm_messages SET tool_state = :state, updated_at = :now, job_id = :job_id"
              " WHERE reply_to = :reply_to AND author_id = :author_id"
              " AND tool_call_id = :tool_call_id AND role = 'tool'")


def set_state(conn: Connection, *, job_id: str, reply_to: str, author_id: str,
              tool_call_id: str, state: str, now_ms: int) -> bool:
    """Move a call's row to ``state``; False if it has no row."""
    cursor = raw(conn).execute(_SET_STATE, {
        "state": state, "now": now_ms, "job_id": job_id, "reply_to": reply_to,
        "author_id": author_id, "tool_call_id": tool_call_id})
    return bool(cursor.rowcount)


_DECIDE = ("UPDATE llm_messages SET tool_state = :state, content = :content, updated_at = :now"
           " WHERE job_id = :job_id AND role = 'tool' AND tool_state = 'waiting'")


def decide(conn: Connection, job_id: str, *, approved: bool, content: str, now_ms: int) -> int:
    """Approve (or deny, storing ``content`` as the result) every call of job
    ``job_id`` waiting for approval; how many there were."""
    cursor = raw(conn).execute(_DECIDE, {
        "state": "approved" if approved else "done", "content": "" if approved else content,
        "now": now_ms, "job_id": job_id})
    return int(cursor.rowcount)


# A reply job waiting for approval is parked: status waiting, due never (so
# no claim takes it), until job.approve or job.deny makes it due now. The
# attempt it was in is given back: waiting for a person is not a failure.
PARKED_RUN_AT = 2**53 - 1
_PARK = ("UPDATE jobs SET status = 'waiting', run_at = :run_at, failure_reason = :reason,"
         " progress = 0, attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END,"
         " updated_at = :now"
         " WHERE id = :job_id AND status = 'active'")
# On PostgreSQL, only by the node that holds the job (see store.jobs._move).
_PARK_PG = _PARK + f" AND locked_by IS NOT DISTINCT FROM {THIS_NODE}"
_UNPARK = ("UPDATE jobs SET run_at = :now, failure_reason = NULL, updated_at = :now"
           " WHERE id = :job_id AND status IN ('waiting', 'paused') AND run_at = :run_at")


def park_job(conn: Connection, job_id: str, reason: str, now_ms: int) -> bool:
    """Park active job ``job_id`` until a decision; False if it was not active."""
    params = {"run_at": PARKED_RUN_AT, "reason": reason, "now": now_ms, "job_id": job_id}
    cursor = raw(conn).execute(_PARK_PG if is_pg(conn) else _PARK, params)
    return bool(cursor.rowcount)


def unpark_job(conn: Connection, job_id: str, now_ms: int) -> bool:
    """Make a parked job due now; False if it was not parked."""
    cursor = raw(conn).execute(_UNPARK, {"now": now_ms, "job_id": job_id,
                                         "run_at": PARKED_RUN_AT})
    return bool(cursor.rowcount)


def of_reply(conn: Connection, reply_to: str, author_id: str) -> list[StepRow]:
    """The steps stored so far of ``author_id``'s reply to ``reply_to``, in order."""
    rows = raw(conn).execute(_OF_REPLY, {"reply_to": reply_to, "author_id": author_id})
    return [StepRow(*row) for row in rows]


# One statement for a reply's whole history (one look-up of the index per
# reply_to): a statement per reply costs a round trip each on PostgreSQL.
_OF_REPLIES = (f"SELECT {_COLUMNS} FROM llm_messages WHERE reply_to IN"
               " (SELECT value FROM json_each(:reply_tos)) AND author_id = :author_id"
               " ORDER BY reply_to, step, position")
_OF_REPLIES_PG = (f"SELECT {_COLUMNS} FROM llm_messages WHERE reply_to = ANY(:reply_tos)"
                  " AND author_id = :author_id ORDER BY reply_to, step, position")


def of_replies(conn: Connection, reply_tos: list[str], author_id: str
               ) -> dict[str, list[StepRow]]:
    """The steps of ``author_id``'s replies to each of ``reply_tos`` (those with any)."""
    if is_pg(conn):
        rows = raw(conn).execute(_OF_REPLIES_PG, {"reply_tos": reply_tos,
                                                  "author_id": author_id})
    else:
        rows = raw(conn).execute(_OF_REPLIES, {"reply_tos": json.dumps(reply_tos),
                                               "author_id": author_id})
    found: dict[str, list[StepRow]] = {}
    for row in rows:
        step = StepRow(*row)
        found.setdefault(step.reply_to, []).append(step)
    return found


def of_job(conn: Connection, job_id: str) -> list[StepRow]:
    """The steps job ``job_id`` wrote (an earlier job's, for the same reply, are not)."""
    return [StepRow(*row) for row in raw(conn).execute(_OF_JOB, {"job_id": job_id})]


def add_assistant(
    conn: Connection, *, id: str, job_id: str, reply_to: str, author_id: str, step: int,
    content: str, tool_calls: str, model: str | None, prompt_tokens: int | None,
    completion_tokens: int | None, now_ms: int,
) -> None:
    """The model's turn that asked for the calls in ``tool_calls`` (JSON)."""
    raw(conn).execute(_INSERT, {
        "id": id, "role": "assistant", "content": content, "now": now_ms, "model": model,
        "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
        "job_id": job_id, "reply_to": reply_to, "author_id": author_id, "step": step,
        "position": 0, "tool_calls": tool_calls, "tool_call_id": None, "tool_name": None,
        "tool_state": None})


def add_tool(
    conn: Connection, *, id: str, job_id: str, reply_to: str, author_id: str, step: int,
    position: int, tool_call_id: str, tool_name: str, state: str, content: str, now_ms: int,
) -> None:
    """A tool call's row: ``state`` 'started' (before it runs) or 'done' (its result)."""
    raw(conn).execute(_INSERT, {
        "id": id, "role": "tool", "content": content, "now": now_ms, "model": None,
        "prompt_tokens": None, "completion_tokens": None, "job_id": job_id,
        "reply_to": reply_to, "author_id": author_id, "step": step, "position": position,
        "tool_calls": None, "tool_call_id": tool_call_id, "tool_name": tool_name,
        "tool_state": state})


def finish_tool(
    conn: Connection, *, job_id: str, reply_to: str, author_id: str, tool_call_id: str,
    content: str, now_ms: int,
) -> bool:
    """Store a started call's result; False if it has no row (never marked started)."""
    cursor = raw(conn).execute(_FINISH, {
        "content": content, "now": now_ms, "job_id": job_id, "reply_to": reply_to,
        "author_id": author_id, "tool_call_id": tool_call_id})
    return bool(cursor.rowcount)
