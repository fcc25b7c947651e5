from __future__ import annotations

import pytest

from verbatim.models import Job, JobStatus, JobType
from verbatim.models.job import ALLOWED_TRANSITIONS, InvalidTransition


def make_job(status: JobStatus) -> Job:
    return Job(type=JobType.transcription, status=status, attempts=0, progress=0.0, payload={})


@pytest.mark.parametrize("current", list(JobStatus))
@pytest.mark.parametrize("target", list(JobStatus))
def test_only_allowed_transitions_happen(current: JobStatus, target: JobStatus) -> None:
    job = make_job(current)
    if target in ALLOWED_TRANSITIONS[current]:
        job.transition(target)
        assert job.status is target
    else:
        with pytest.raises(InvalidTransition):
            job.transition(target)
        assert job.status is current


def test_timestamps_follow_the_lifecycle() -> None:
    job = make_job(JobStatus.pending)
    job.transition(JobStatus.running)
    assert job.started_at is not None and job.finished_at is None
    first_start = job.started_at
    job.transition(JobStatus.running)  # a stalled job picked up again keeps its first start
    assert job.started_at == first_start
    job.transition(JobStatus.completed)
    assert job.finished_at is not None
    assert not ALLOWED_TRANSITIONS[JobStatus.completed]
