"""``/v1/jobs``: create a job, follow it (poll or SSE), cancel it, list them."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, status
from sse_starlette import EventSourceResponse

from server.auth.dependencies import CurrentTenant
from server.errors import BODY_ERRORS, COMMON_ERRORS, error_responses
from server.jobs.service import JobService
from server.middleware import TRACE_ID_STATE
from server.services import Services, get_services
from subtone.protocol import Job, JobCreate, JobList

__all__ = ["router"]

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

MAX_IDEMPOTENCY_KEY_CHARS = 200
KEEPALIVE_SECONDS = 15
"""A comment line this often keeps an idle event stream (and proxies) open."""


async def _jobs(services: Annotated[Services, Depends(get_services)]) -> JobService:
    return services.jobs


async def _trace_id(request: Request) -> str | None:
    trace_id = getattr(request.state, TRACE_ID_STATE, None)
    return trace_id if isinstance(trace_id, str) else None


Jobs = Annotated[JobService, Depends(_jobs)]
TraceId = Annotated[str | None, Depends(_trace_id)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=MAX_IDEMPOTENCY_KEY_CHARS,
        description="The same key and body return the same job instead of a second one.",
    ),
]


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(*COMMON_ERRORS, *BODY_ERRORS, 404, 409),
)
async def create_job(
    body: JobCreate,
    tenant: CurrentTenant,
    jobs: Jobs,
    trace_id: TraceId,
    idempotency_key: IdempotencyKey = None,
) -> Job:
    """Queue a job on uploaded objects; answers at once, the work happens in a worker. The
    job keeps the request's trace id (``traceparent``), and so does every log line about it."""
    return await jobs.create(tenant.id, body, idempotency_key, trace_id=trace_id)


@router.get("", responses=error_responses(*COMMON_ERRORS))
def list_jobs(tenant: CurrentTenant, jobs: Jobs) -> JobList:
    """This tenant's recent jobs, newest first."""
    return jobs.list(tenant.id)


@router.get("/{job_id}", responses=error_responses(*COMMON_ERRORS, 404))
def get_job(job_id: str, tenant: CurrentTenant, jobs: Jobs) -> Job:
    """The job; once succeeded, with a short-lived download URL of its result."""
    return jobs.get(tenant.id, job_id)


@router.get(
    "/{job_id}/events",
    response_class=EventSourceResponse,
    responses={
        **error_responses(*COMMON_ERRORS, 404),
        200: {"description": "`job` events (the Job JSON) until the job finishes."},
    },
)
def job_events(job_id: str, tenant: CurrentTenant, jobs: Jobs) -> EventSourceResponse:
    """Server-sent events: the job each time its state or progress changes, then the end."""
    return EventSourceResponse(jobs.events(tenant.id, job_id), ping=KEEPALIVE_SECONDS)


@router.post("/{job_id}/cancel", responses=error_responses(*COMMON_ERRORS, 404))
def cancel_job(job_id: str, tenant: CurrentTenant, jobs: Jobs) -> Job:
    """Cancel a queued job, or ask a running one to stop; a finished job is left as it is."""
    return jobs.cancel(tenant.id, job_id)
