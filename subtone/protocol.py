"""The pass-by-reference protocol: every request and response body of the API.

This module imports pydantic only (no FastAPI, no server code), so the CLI and the desktop
app share it. The same protocol serves a laptop, a team server and a cloud cluster.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

__all__ = [
    "PROTOCOL_VERSION",
    "CompletePart",
    "CompleteRequest",
    "ErrorBody",
    "ErrorInfo",
    "Job",
    "JobCreate",
    "JobKind",
    "JobList",
    "JobParams",
    "JobState",
    "ObjectRef",
    "PartsRequest",
    "PresignedPart",
    "PresignedParts",
    "Readiness",
    "ServerVersion",
    "StoredPart",
    "UploadCreate",
    "UploadCreated",
    "UploadState",
    "UploadStatus",
]

PROTOCOL_VERSION = 4
"""4: an embed's patch may code a window's flips as deflated gaps (patch format 2); 3: the
robust-mode job kinds (a working mix in, a residual or the payload out); 2: jobs take LSB planes
and an embed returns a patch (1: whole WAV files)."""
MAX_NAME_LENGTH = 255
MAX_PARTS = 10_000

Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
KeyHex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
PartNumber = Annotated[int, Field(ge=1, le=MAX_PARTS)]
Id = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,4}_[A-Za-z0-9]{10,64}$")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ErrorInfo(_Model):
    code: str
    message: str


class ErrorBody(_Model):
    error: ErrorInfo


# Uploads -------------------------------------------------------------------------------


class UploadState(StrEnum):
    UPLOADING = "uploading"
    COMPLETED = "completed"
    ABORTED = "aborted"


class UploadCreate(_Model):
    name: Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME_LENGTH)]
    size: Annotated[int, Field(ge=1)]
    sha256: Sha256Hex
    media_type: Annotated[str, StringConstraints(min_length=1, max_length=127)] = (
        "application/octet-stream"
    )
    part_size: Annotated[int, Field(ge=1)] | None = None
    """The part size the client would like, in bytes (``None``: the server's default). The
    server keeps it within S3's limits (5 MiB to 5 GiB, at most 10,000 parts) and answers with
    the part size it chose."""


class UploadCreated(_Model):
    upload_id: Id
    part_size: int
    part_count: int
    expires_at: datetime


class PartsRequest(_Model):
    part_numbers: Annotated[list[PartNumber], Field(min_length=1, max_length=1000)]


class PresignedPart(_Model):
    part_number: int
    url: str
    expires_at: datetime


class PresignedParts(_Model):
    parts: list[PresignedPart]


class StoredPart(_Model):
    part_number: int
    etag: str
    size: int


class CompletePart(_Model):
    part_number: PartNumber
    etag: Annotated[str, StringConstraints(min_length=1, max_length=128)]


class CompleteRequest(_Model):
    parts: Annotated[list[CompletePart], Field(min_length=1, max_length=MAX_PARTS)]


class ObjectRef(_Model):
    """A stored object, named by an id: clients never see or choose storage keys."""

    id: Id
    name: str
    size: int
    sha256: str | None
    media_type: str


class UploadStatus(_Model):
    upload_id: Id
    name: str
    size: int
    sha256: str
    part_size: int
    part_count: int
    state: UploadState
    parts: list[StoredPart]
    """The parts storage already holds: a resuming client sends only the others."""
    object: ObjectRef | None = None
    created_at: datetime


# Jobs ----------------------------------------------------------------------------------


class JobKind(StrEnum):
    EMBED = "stego.embed"
    """inputs: ``plane`` (the cover's LSB plane, :mod:`subtone.stego.plane`) and ``payload``
    (the sealed secret); params: ``k_pos``. The result is a patch
    (:mod:`subtone.stego.patch`): the samples whose LSB the client flips in its cover."""
    EXTRACT = "stego.extract"
    """inputs: ``plane`` (the stego file's LSB plane); params: ``k_pos``. The result is the
    sealed secret."""
    ROBUST_EMBED = "robust.embed"
    """Robust mode (survives re-encoding). inputs: ``mix`` (the cover's working mix: its
    channels' mean at 16 kHz, :mod:`subtone.robust.wire`) and ``payload`` (the
    sealed secret); params: ``k_pos``. The result is a residual the client adds to its
    cover."""
    ROBUST_EXTRACT = "robust.extract"
    """Robust mode. inputs: ``mix`` (the working mix of the file to read, in whatever format
    it arrived); params: ``k_pos``. The result is the sealed secret; a failure is
    ``no_payload`` (nothing under this key) or ``channel_damaged`` (there, but destroyed)."""

    @property
    def robust(self) -> bool:
        """A robust-mode kind (the server sees the cover's working mix, not its LSB plane)."""
        return self in (JobKind.ROBUST_EMBED, JobKind.ROBUST_EXTRACT)


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)


class JobParams(_Model):
    k_pos: KeyHex
    """The position key (hex): decides where bits go, cannot read them."""


class JobCreate(_Model):
    kind: JobKind
    inputs: Annotated[dict[str, Id], Field(min_length=1, max_length=4)]
    params: JobParams


class Job(_Model):
    id: Id
    kind: JobKind
    state: JobState
    progress: Annotated[float, Field(ge=0.0, le=1.0)]
    inputs: dict[str, str]
    created_at: datetime
    updated_at: datetime
    result: ObjectRef | None = None
    download_url: str | None = None
    """Short-lived URL of the result (present once succeeded)."""
    error: ErrorInfo | None = None
    attempts: int = 0
    trace_id: str | None = None
    """The trace id of the request that created the job (:mod:`subtone.tracing`): the same id
    is on every log line of the API, the worker and Triton about this job."""


class JobList(_Model):
    jobs: list[Job]


class Readiness(_Model):
    ready: bool
    checks: dict[str, str]


class ServerVersion(BaseModel):
    """``GET /version``: the server's Subtone version and the protocol it speaks. Unlike the
    other bodies it takes unknown fields: every client, of any version, must read it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    server: str
    protocol: int
