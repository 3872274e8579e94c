"""``/v1/uploads``: start an upload, get part URLs, resume, complete, abort."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, status

from server.auth.dependencies import CurrentTenant
from server.errors import BODY_ERRORS, COMMON_ERRORS, error_responses
from server.services import Services, get_services
from server.uploads.service import UploadService
from subtone.protocol import (
    CompleteRequest,
    ObjectRef,
    PartsRequest,
    PresignedParts,
    UploadCreate,
    UploadCreated,
    UploadStatus,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1/uploads", tags=["uploads"])


async def _uploads(services: Annotated[Services, Depends(get_services)]) -> UploadService:
    return services.uploads


Uploads = Annotated[UploadService, Depends(_uploads)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(*COMMON_ERRORS, *BODY_ERRORS, 502),
)
def create_upload(body: UploadCreate, tenant: CurrentTenant, uploads: Uploads) -> UploadCreated:
    """Start an upload: the server plans the parts and opens a multipart upload in storage."""
    return uploads.create(tenant.id, body)


@router.post(
    "/{upload_id}/parts", responses=error_responses(*COMMON_ERRORS, *BODY_ERRORS, 404, 409, 502)
)
def presign_parts(
    upload_id: str, body: PartsRequest, tenant: CurrentTenant, uploads: Uploads
) -> PresignedParts:
    """Short-lived URLs the client PUTs each part's bytes to, straight to storage."""
    return uploads.presign(tenant.id, upload_id, body)


@router.get("/{upload_id}", responses=error_responses(*COMMON_ERRORS, 404, 502))
def get_upload(upload_id: str, tenant: CurrentTenant, uploads: Uploads) -> UploadStatus:
    """The upload and the parts storage already holds (a resuming client sends the rest)."""
    return uploads.status(tenant.id, upload_id)


@router.post(
    "/{upload_id}/complete",
    responses=error_responses(*COMMON_ERRORS, *BODY_ERRORS, 404, 409, 502),
)
def complete_upload(
    upload_id: str, body: CompleteRequest, tenant: CurrentTenant, uploads: Uploads
) -> ObjectRef:
    """Check the part list against storage and assemble the object (idempotent)."""
    return uploads.complete(tenant.id, upload_id, body)


@router.delete(
    "/{upload_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(*COMMON_ERRORS, 404, 409, 502),
)
def abort_upload(upload_id: str, tenant: CurrentTenant, uploads: Uploads) -> None:
    """Drop the upload and the parts sent so far (idempotent)."""
    uploads.abort(tenant.id, upload_id)
