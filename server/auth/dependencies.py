"""``CurrentTenant``: the tenant of the request's bearer token, within its rate limit."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from server.auth.service import Tenant, Unauthorized
from server.services import Services, get_services

__all__ = ["CurrentTenant", "current_tenant"]

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="An API token (`st_…`): `subtone token create NAME` prints one.",
)


def current_tenant(
    services: Annotated[Services, Depends(get_services)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Tenant:
    if credentials is None:
        raise Unauthorized("A valid API token is required: Authorization: Bearer st_…")
    tenant = services.tokens.authenticate(credentials.credentials)
    services.limiter.hit(tenant.id)
    return tenant


CurrentTenant = Annotated[Tenant, Depends(current_tenant)]
