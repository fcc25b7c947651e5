from __future__ import annotations

from fastapi import APIRouter, Response, status

from verbatim.deps import CurrentUser, SessionDep, SettingsDep
from verbatim.downloads import service
from verbatim.downloads.schemas import DownloadCreate
from verbatim.jobs import service as jobs
from verbatim.jobs.schemas import JobOut, JobPage
from verbatim.kit.pagination import PageQuery
from verbatim.models import JobStatus, JobType

router = APIRouter(prefix="/api/v1/audio", tags=["audio"])


@router.post(
    "/downloads",
    response_model=JobOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        422: {"description": "invalid_url, unsupported_url, blocked_destination, ..."},
        429: {"description": "rate_limited (with Retry-After)"},
    },
)
async def start_download(
    body: DownloadCreate,
    response: Response,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
) -> object:
    """Download media from a link into your library; follow the `download` job it returns."""
    job = await service.request_download(session, settings, user, body)
    response.headers["Location"] = f"/api/v1/jobs/{job.id}"
    return job


@router.get("/downloads", response_model=JobPage)
async def list_downloads(
    user: CurrentUser,
    session: SessionDep,
    page: PageQuery,
    status: JobStatus | None = None,
) -> object:
    """Your download jobs, newest first (the same records as /jobs?type=download), a keyset
    page at a time: follow `next_cursor`."""
    result = await jobs.list_jobs(session, user, status=status, type=JobType.download, page=page)
    return result.response()
