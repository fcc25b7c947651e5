from __future__ import annotations

import uuid

from fastapi import APIRouter

from verbatim.deps import CurrentUser, Reader, ReadSessionDep, SessionDep
from verbatim.jobs import service
from verbatim.jobs.schemas import JobOut, JobPage
from verbatim.kit.pagination import PageQuery
from verbatim.models import JobStatus, JobType

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


@router.get("", response_model=JobPage)
async def list_jobs(
    user: Reader,
    session: ReadSessionDep,
    page: PageQuery,
    status: JobStatus | None = None,
    type: JobType | None = None,
) -> object:
    """Your jobs, newest first. Follow `next_cursor` (pass it as `cursor`) for the next page;
    `total` is exact up to 10,000 jobs, then an estimate (`total_exact: false`)."""
    result = await service.list_jobs(session, user, status=status, type=type, page=page)
    return result.response()


@router.get("/{job_id}", response_model=JobOut)
async def get_job(job_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> object:
    return await service.get_job(session, user, job_id)


@router.post(
    "/{job_id}/cancel",
    response_model=JobOut,
    responses={409: {"description": "job_not_cancellable"}},
)
async def cancel_job(job_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> object:
    return await service.cancel_job(session, user, job_id)
