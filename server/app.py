"""The API process: ``create_app(settings)`` builds the FastAPI app.

The app's ``lifespan`` builds the clients (Redis, storage, the broker, Triton's readiness
probe) once, unless a test hands prebuilt ones in as ``deps``, and puts the services on
``app.state``; when the app stops it drops the connections its event loop opened (whoever
built the clients) and closes the clients it built. Handlers only authenticate, call one
service function and return a schema.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware import Middleware

from server.deps import Dependencies, build_dependencies
from server.errors import install_error_handlers
from server.jobs.endpoints import router as jobs_router
from server.metrics import MULTIPROC_ENV, ApiMetrics, MetricsMiddleware
from server.middleware import BodySizeLimitMiddleware, InternalErrorMiddleware, TraceMiddleware
from server.ops import router as ops_router
from server.services import build_services
from server.settings import Settings
from server.uploads.endpoints import router as uploads_router
from subtone.protocol import PROTOCOL_VERSION

__all__ = ["create_app"]

TITLE = "Subtone"
DESCRIPTION = (
    "Hide a voice message inside a cover audio file, and get it back. Files go straight to "
    "storage through pre-signed part URLs; the API hands out URLs, creates jobs and reports "
    'their progress. Every error is `{"error": {"code", "message"}}`.'
)


def create_app(settings: Settings, *, deps: Dependencies | None = None) -> FastAPI:
    """The API on ``settings``; ``deps`` replaces the clients the lifespan would build."""
    metrics = ApiMetrics(multiprocess=MULTIPROC_ENV in os.environ)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        clients = deps if deps is not None else build_dependencies(settings)
        services = app.state.services = build_services(settings, clients, metrics)
        await services.changes.start()
        try:
            yield
        finally:
            await services.changes.stop()
            metrics.unwatch()
            await clients.disconnect()
            if deps is None:
                clients.close()

    app = FastAPI(
        title=TITLE,
        description=DESCRIPTION,
        version=f"{PROTOCOL_VERSION}",
        lifespan=lifespan,
        middleware=[
            Middleware(TraceMiddleware),
            Middleware(MetricsMiddleware, metrics=metrics),
            Middleware(InternalErrorMiddleware),
            Middleware(BodySizeLimitMiddleware, max_body_bytes=settings.MAX_REQUEST_BODY_BYTES),
        ],
    )
    install_error_handlers(app)
    app.include_router(ops_router)
    app.include_router(uploads_router)
    app.include_router(jobs_router)
    return app
