"""The API's services, built once per app from its settings and clients."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import Request

from server.auth.admission import Admission
from server.deps import Dependencies
from server.health import ReadinessService
from server.jobs.changes import JobChanges
from server.jobs.heartbeat import WorkerHeartbeats
from server.jobs.repository import JobRepository
from server.jobs.service import JobService
from server.jobs.streams import StreamSlots
from server.metrics import ApiMetrics
from server.settings import Settings
from server.uploads.repository import UploadRepository
from server.uploads.service import UploadService

__all__ = ["Services", "build_services", "get_services"]


@dataclass(frozen=True)
class Services:
    admission: Admission
    uploads: UploadService
    jobs: JobService
    readiness: ReadinessService
    metrics: ApiMetrics
    changes: JobChanges
    """Started and stopped by the app's lifespan (it needs the running event loop)."""


def build_services(settings: Settings, deps: Dependencies, metrics: ApiMetrics) -> Services:
    prefix = settings.REDIS_PREFIX
    uploads = UploadRepository(deps.redis, prefix=prefix, ttl_seconds=settings.UPLOAD_TTL_SECONDS)
    jobs = JobRepository(
        deps.redis, prefix=prefix, ttl_seconds=settings.JOB_TTL_SECONDS, aclient=deps.aredis
    )
    heartbeats = WorkerHeartbeats(
        deps.redis, prefix=prefix, ttl_seconds=settings.WORKER_HEARTBEAT_SECONDS
    )
    queue_name = settings.QUEUE_NAME
    metrics.watch(jobs, deps.queue, queue_name, workers=lambda: heartbeats.count(queue_name))
    changes = JobChanges(deps.aredis, prefix=prefix)
    return Services(
        admission=Admission(
            deps.aredis,
            prefix=prefix,
            requests_per_minute=settings.RATE_LIMIT_PER_MINUTE,
            failures_per_minute=settings.AUTH_FAILURES_PER_MINUTE,
            cache_seconds=settings.TOKEN_CACHE_SECONDS,
        ),
        uploads=UploadService(deps.store, uploads, settings),
        jobs=JobService(
            jobs,
            uploads,
            deps.store,
            deps.enqueuer,
            StreamSlots(
                deps.redis,
                prefix=prefix,
                per_tenant=settings.MAX_EVENT_STREAMS_PER_TENANT,
                slot_seconds=settings.EVENT_STREAM_SLOT_SECONDS,
            ),
            changes,
            download_ttl_seconds=settings.DOWNLOAD_TTL_SECONDS,
        ),
        readiness=ReadinessService(_readiness_checks(settings, deps)),
        metrics=metrics,
        changes=changes,
    )


def _readiness_checks(settings: Settings, deps: Dependencies) -> dict[str, Callable[[], object]]:
    checks: dict[str, Callable[[], object]] = {
        "redis": deps.redis.ping,
        "broker": deps.queue.ping,
        "storage": deps.store.ping,
    }
    if settings.READYZ_CHECKS_TRITON:
        checks["triton"] = deps.triton.ready
    if settings.READYZ_CHECKS_WORKERS:
        heartbeats = WorkerHeartbeats(
            deps.redis, prefix=settings.REDIS_PREFIX, ttl_seconds=settings.WORKER_HEARTBEAT_SECONDS
        )
        queue = settings.QUEUE_NAME
        checks["workers"] = lambda: heartbeats.check(queue)
    return checks


async def get_services(request: Request) -> Services:
    """The app's services (a FastAPI dependency; ``async`` so that FastAPI calls it on the event
    loop instead of sending it to the thread pool)."""
    services = request.app.state.services
    if not isinstance(services, Services):
        raise RuntimeError("the app's services are built by its lifespan; start the app first")
    return services
