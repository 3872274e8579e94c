"""Endpoints for operators, orchestrators and clients: ``/healthz``, ``/readyz``, ``/metrics``,
``/version``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from server.metrics import CONTENT_TYPE_LATEST
from server.services import Services, get_services
from subtone.protocol import PROTOCOL_VERSION, Readiness, ServerVersion
from subtone.version import __version__

__all__ = ["router"]

router = APIRouter(tags=["operations"])

ServicesDep = Annotated[Services, Depends(get_services)]


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process answers (liveness); says nothing about its dependencies."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    responses={status.HTTP_503_SERVICE_UNAVAILABLE: {"model": Readiness}},
)
def readyz(services: ServicesDep, response: Response) -> Readiness:
    """Whether Redis, the broker, storage and Triton answer; 503 naming those that do not."""
    readiness = services.readiness.check()
    if not readiness.ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return readiness


@router.get("/metrics", response_class=Response)
def metrics(services: ServicesDep) -> Response:
    """Prometheus metrics: request latency, jobs by state, queue depth."""
    return Response(services.metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/version")
def version() -> ServerVersion:
    """This server's Subtone version and the protocol version it speaks (no token needed:
    a client compares it with its own before sending anything)."""
    return ServerVersion(server=__version__, protocol=PROTOCOL_VERSION)
