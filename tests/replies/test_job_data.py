"""The reply job's data, read from the generic job through its one checked conversion."""

from __future__ import annotations

import pytest

from wizd.objects import Job, JsonObject
from wizd.replies.job import NAME, data_of


def job_with(data: JsonObject) -> Job:
    return {"id": "j1", "name": NAME, "data": data, "status": "active", "priority": 0,
            "progress": 0, "attempts": 1, "max_attempts": 3, "failure_reason": None,
            "result": None, "created_at": 1, "processed_on": 2, "finished_on": None,
            "run_at": 1, "group_key": "c1:a1"}


def test_data_of_reads_the_three_ids() -> None:
    data = {"conversation_id": "c1", "message_id": "m1", "agent_id": "a1"}
    assert data_of(job_with(data)) == data


@pytest.mark.parametrize("data", [
    {},
    {"conversation_id": "c1", "message_id": "m1"},
    {"conversation_id": "c1", "message_id": "m1", "agent_id": 7},
    {"conversation_id": None, "message_id": "m1", "agent_id": "a1"},
])
def test_data_of_refuses_data_that_is_not_a_reply_jobs(data: JsonObject) -> None:
    with pytest.raises(ValueError, match="j1: its data is not a reply job's"):
        data_of(job_with(data))
