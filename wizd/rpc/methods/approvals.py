"""job.approve, job.deny: decide about the tool calls a reply job waits for."""

from __future__ import annotations

from ...objects import Job
from ...replies import approvals
from ..registry import registry
from ..server import Call


@registry.method("job.approve")
async def job_approve(call: Call, id: str) -> Job:
    """Run the tool calls reply job ``id`` waits for (tools marked ``confirm``);
    the job goes on. Conflict unless it waits for an approval."""
    return await approvals.decide(call.rt, id, approve=True)


@registry.method("job.deny")
async def job_deny(call: Call, id: str, reason: str | None = None) -> Job:
    """Refuse the tool calls reply job ``id`` waits for: the model is told they
    were denied (with ``reason``, if given) and the job goes on."""
    return await approvals.decide(call.rt, id, approve=False, reason=reason)
