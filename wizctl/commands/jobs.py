"""``wizctl jobs``, ``wizctl job ...`` and ``wizctl queue ...``: the job queue."""

from __future__ import annotations

from typing import Annotated, cast

import typer

from .. import table, text
from ..objects import Job, JobDetail, JobList, JobStep
from .base import Json, by_ref, color, emit, state, status_style, sub_app

job_app = sub_app("One job of the queue.")
queue_app = sub_app("The job queue as a whole.")


def _steps(j: Job) -> str:
    """A reply's tool steps, one line each (``job.get`` gives them)."""
    lines = []
    steps: list[JobStep] = cast(JobDetail, j).get("steps") or []
    for s in steps:
        if s.get("role") == "assistant":
            calls = ", ".join(f"{c.get('name')}({text.one_line(c.get('arguments'), 60)})"
                              for c in s.get("tool_calls") or [])
            lines.append(f"step {s.get('step')}: calls {calls}")
        else:
            state = "" if s.get("state") == "done" else f" [{s.get('state')}]"
            lines.append(f"  {s.get('name')}{state}: {text.one_line(s.get('content'), 100)}")
    return "\n".join(lines)


def _fields(j: Job) -> str:
    steps = _steps(j)
    fields = _plain_fields(j)
    return f"{fields}\n{steps}" if steps else fields


def _plain_fields(j: Job) -> str:
    return text.fields([
        ("id", j.get("id")), ("name", j.get("name")), ("status", j.get("status")),
        ("priority", j.get("priority")), ("progress", f"{j.get('progress', 0)}%"),
        ("attempts", f"{j.get('attempts')}/{j.get('max_attempts')}"),
        ("failure", j.get("failure_reason")), ("created", text.when(j.get("created_at"))),
        ("started", text.when(j.get("processed_on"))),
        ("finished", text.when(j.get("finished_on"))),
    ], color=color())


def jobs(ctx: typer.Context,
         status: Annotated[str | None, typer.Option(help="Only jobs in this status.")] = None,
         n: Annotated[int | None, typer.Option("-n", min=1, help="At most this many.")] = None,
         json: Json = False) -> None:
    """List jobs of the queue."""
    def human(r: JobList) -> str:
        rows = [(text.short_id(j.get("id")), j.get("name"), j.get("status"),
                 f"{j.get('attempts')}/{j.get('max_attempts')}", f"{j.get('progress', 0)}%",
                 text.when(j.get("created_at")), text.one_line(j.get("failure_reason"), 50))
                for j in r["jobs"]]
        return table.table(("id", "name", "status", "tries", "done", "created", "failure"),
                            rows, color=color(), styles=status_style(2))
    emit(state(ctx).call("job.list", status=status, limit=n), json, human)


by_ref(job_app, "show", "job.get", "job", "Show one job.", lambda st: _fields)
by_ref(job_app, "retry", "job.retry", "job", "Run a failed job again.", lambda st: _fields)
by_ref(job_app, "cancel", "job.cancel", "job", "Cancel a job that has not finished.",
       lambda st: _fields)


@queue_app.command("pause")
def queue_pause(ctx: typer.Context, json: Json = False) -> None:
    """Stop starting jobs (running ones finish)."""
    emit(state(ctx).call("queue.pause"), json, lambda r: "queue paused")


@queue_app.command("resume")
def queue_resume(ctx: typer.Context, json: Json = False) -> None:
    """Start jobs again."""
    emit(state(ctx).call("queue.resume"), json, lambda r: "queue resumed")


def approve(ctx: typer.Context,
            job: Annotated[str, typer.Argument(metavar="JOB", help="Id or id prefix.")],
            json: Json = False) -> None:
    """Run the tool calls a reply job waits for (tools marked --confirm); it goes on."""
    st = state(ctx)
    result = st.call("job.approve", id=st.lookup.job_id(job))
    emit(result, json, lambda j: f"approved: job {text.short_id(j.get('id'))} goes on")


def deny(ctx: typer.Context,
         job: Annotated[str, typer.Argument(metavar="JOB", help="Id or id prefix.")],
         reason: Annotated[str | None, typer.Option(help="Told to the model.")] = None,
         json: Json = False) -> None:
    """Refuse the tool calls a reply job waits for: the model is told; the job goes on."""
    st = state(ctx)
    result = st.call("job.deny", id=st.lookup.job_id(job), reason=reason)
    emit(result, json, lambda j: f"denied: job {text.short_id(j.get('id'))} goes on")
