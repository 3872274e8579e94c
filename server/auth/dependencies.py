"""``CurrentTenant``: the tenant of the request's bearer token, within its rate limits.

An address that has failed to authenticate too often this minute is refused (429) before its
token is looked up; each refused token counts one failure for the address it came from (the
peer address, or the one a trusted proxy gives: uvicorn's ``--forwarded-allow-ips``). All of
it is one Redis round trip on the event loop (:mod:`server.auth.admission`).
"""

from __future__ import annotations

from typing import Annotated, Final

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from server.auth.service import Tenant
from server.kit import logs
from server.services import Services, get_services

__all__ = ["CurrentTenant", "client_address", "current_tenant"]

UNKNOWN_ADDRESS: Final = "unknown"

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="An API token (`st_…`): `subtone token create NAME` prints one.",
)


def client_address(request: Request) -> str:
    """The address the request came from, as the server saw it."""
    return request.client.host if request.client is not None else UNKNOWN_ADDRESS


async def current_tenant(
    request: Request,
    services: Annotated[Services, Depends(get_services)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Tenant:
    token = credentials.credentials if credentials is not None else None
    tenant = await services.admission.admit(token, client_address(request))
    logs.bind(tenant_id=tenant.id)
    return tenant


CurrentTenant = Annotated[Tenant, Depends(current_tenant)]
