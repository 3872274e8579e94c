"""Uploads straight to storage: plan the parts, hand out part URLs, check and complete.

The API never sees a file's bytes: it starts a multipart upload in storage, signs one URL per
part, and on completion checks the client's part list against what storage holds before
assembling the object. Keys are made here (``t/<tenant>/uploads/<upload id>/<name>``); the
client names objects only by id.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta

from server.integrations.storage import (
    MAX_PART_SIZE,
    MAX_PARTS,
    MIN_PART_SIZE,
    ChecksumMismatch,
    InvalidPart,
    MiB,
    ObjectNotFound,
    ObjectStore,
    PartInfo,
    UploadNotFound,
    normalize_etag,
)
from server.kit.clock import utcnow
from server.kit.ids import new_id
from server.settings import Settings
from server.uploads.repository import NotFound, ObjectRecord, UploadRecord, UploadRepository
from subtone.errors import SubtoneError
from subtone.protocol import (
    CompletePart,
    CompleteRequest,
    ObjectRef,
    PartsRequest,
    PresignedPart,
    PresignedParts,
    StoredPart,
    UploadCreate,
    UploadCreated,
    UploadState,
    UploadStatus,
)

__all__ = [
    "PartOutOfRange",
    "SizeMismatch",
    "TooManyParts",
    "UploadCompleted",
    "UploadNotOpen",
    "UploadService",
    "UploadTooLarge",
    "object_key",
    "plan_parts",
    "planned_part_size",
    "preferred_part_size",
]

UPLOAD_ID_PREFIX = "up"
OBJECT_ID_PREFIX = "obj"
MAX_KEY_NAME_CHARS = 100
DEFAULT_KEY_NAME = "file"
_UNSAFE_KEY_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


class UploadTooLarge(SubtoneError):
    code = "upload_too_large"
    status = 413


class TooManyParts(SubtoneError):
    code = "too_many_parts"
    status = 400


class PartOutOfRange(SubtoneError):
    code = "part_out_of_range"
    status = 400


class UploadNotOpen(SubtoneError):
    code = "upload_not_open"
    status = 409


class UploadCompleted(SubtoneError):
    code = "upload_completed"
    status = 409


class SizeMismatch(SubtoneError):
    code = "size_mismatch"
    status = 400


def plan_parts(size: int, preferred_part_size: int) -> tuple[int, int]:
    """``(part_size, part_count)``: whole MiB, at least 5 MiB, at most 10,000 parts."""
    smallest = math.ceil(size / MAX_PARTS)
    part_size = max(preferred_part_size, smallest, MIN_PART_SIZE)
    part_size = math.ceil(part_size / MiB) * MiB
    return part_size, max(1, math.ceil(size / part_size))


def preferred_part_size(requested: int | None, default: int) -> int:
    """The part size to plan with: the client's wish kept within S3's part limits, else the
    configured default. :func:`plan_parts` then makes it fit the 10,000-part limit."""
    if requested is None:
        return default
    return min(max(requested, MIN_PART_SIZE), MAX_PART_SIZE)


def planned_part_size(size: int, part_size: int, part_number: int) -> int:
    """The bytes part ``part_number`` holds in an upload of ``size`` cut into ``part_size``."""
    return max(0, min(part_size, size - (part_number - 1) * part_size))


def object_key(tenant: str, upload_id: str, name: str) -> str:
    """The storage key of an upload; the client's name only supplies a readable, safe tail."""
    tail = _UNSAFE_KEY_CHARS.sub("_", name)[-MAX_KEY_NAME_CHARS:].lstrip("._-")
    return f"t/{tenant}/uploads/{upload_id}/{tail or DEFAULT_KEY_NAME}"


def _check_part_list(parts: Sequence[CompletePart], part_count: int) -> list[tuple[int, str]]:
    """The list must be exactly parts 1..part_count, in order; returns unquoted ETags."""
    numbers = [p.part_number for p in parts]
    expected = list(range(1, part_count + 1))
    if numbers != expected:
        missing = sorted(set(expected) - set(numbers))
        detail = f" (part {missing[0]} is missing)" if missing else ""
        raise InvalidPart(
            f"The part list must name parts 1 to {part_count}, once each, in order{detail}."
        )
    return [(p.part_number, normalize_etag(p.etag)) for p in parts]


def _check_stored(wanted: Sequence[tuple[int, str]], stored: Mapping[int, PartInfo]) -> int:
    """Each part is in storage with the ETag the client has; returns their total size."""
    total = 0
    for number, etag in wanted:
        part = stored.get(number)
        if part is None:
            raise InvalidPart(f"Part {number} is not in storage; upload it (again).")
        if part.etag != etag:
            raise InvalidPart(
                f"Part {number}'s ETag {etag} is not the stored part's; upload it again."
            )
        total += part.size
    return total


class UploadService:
    def __init__(self, store: ObjectStore, uploads: UploadRepository, settings: Settings) -> None:
        self._store = store
        self._uploads = uploads
        self._settings = settings

    # Creating ----------------------------------------------------------------------------

    def create(self, tenant: str, request: UploadCreate) -> UploadCreated:
        limit = self._settings.MAX_UPLOAD_BYTES
        if request.size > limit:
            raise UploadTooLarge(f"An upload holds at most {limit} bytes, not {request.size}.")
        preferred = preferred_part_size(request.part_size, self._settings.PART_SIZE_BYTES)
        part_size, part_count = plan_parts(request.size, preferred)
        upload_id = new_id(UPLOAD_ID_PREFIX)
        key = object_key(tenant, upload_id, request.name)
        record = UploadRecord(
            id=upload_id,
            tenant=tenant,
            key=key,
            storage_upload_id=self._store.create_multipart(
                key, request.media_type, part_size=part_size
            ),
            name=request.name,
            size=request.size,
            sha256=request.sha256,
            media_type=request.media_type,
            part_size=part_size,
            part_count=part_count,
            created_at=utcnow(),
        )
        self._uploads.save_upload(record)
        expires_at = record.created_at + timedelta(seconds=self._settings.UPLOAD_TTL_SECONDS)
        return UploadCreated(
            upload_id=upload_id, part_size=part_size, part_count=part_count, expires_at=expires_at
        )

    def presign(self, tenant: str, upload_id: str, request: PartsRequest) -> PresignedParts:
        record = self._open_upload(tenant, upload_id)
        numbers = list(dict.fromkeys(request.part_numbers))
        most = self._settings.MAX_PARTS_PER_PRESIGN
        if len(numbers) > most:
            raise TooManyParts(f"Ask for at most {most} part URLs at a time, not {len(numbers)}.")
        beyond = [n for n in numbers if n > record.part_count]
        if beyond:
            raise PartOutOfRange(
                f"This upload has parts 1 to {record.part_count}; part {beyond[0]} is not one."
            )
        ttl = self._settings.PRESIGN_TTL_SECONDS
        expires_at = utcnow() + timedelta(seconds=ttl)
        parts = [
            PresignedPart(
                part_number=n,
                url=self._store.presign_upload_part(
                    record.key,
                    record.storage_upload_id,
                    n,
                    ttl,
                    max_bytes=planned_part_size(record.size, record.part_size, n),
                ),
                expires_at=expires_at,
            )
            for n in numbers
        ]
        return PresignedParts(parts=parts)

    # Reading -----------------------------------------------------------------------------

    def status(self, tenant: str, upload_id: str) -> UploadStatus:
        """The upload; an aborted one (``DELETE``, or refused at completion) is gone: 404."""
        record = self._uploads.get_upload(tenant, upload_id)
        if record.state is UploadState.ABORTED:
            raise NotFound(f"Upload {upload_id} was aborted; start a new upload.")
        parts = self._stored_parts(record) if record.state is UploadState.UPLOADING else []
        return UploadStatus(
            upload_id=record.id,
            name=record.name,
            size=record.size,
            sha256=record.sha256,
            part_size=record.part_size,
            part_count=record.part_count,
            state=record.state,
            parts=[StoredPart(part_number=p.number, etag=p.etag, size=p.size) for p in parts],
            object=self._object_of(record) if record.state is UploadState.COMPLETED else None,
            created_at=record.created_at,
        )

    # Finishing ---------------------------------------------------------------------------

    def complete(self, tenant: str, upload_id: str, request: CompleteRequest) -> ObjectRef:
        """Assemble the object; completing a completed upload returns the same object."""
        record = self._uploads.get_upload(tenant, upload_id)
        if record.state is UploadState.COMPLETED:
            return self._object_of(record)
        self._require_open(record)
        wanted = _check_part_list(request.parts, record.part_count)
        try:
            parts = self._store.list_parts(record.key, record.storage_upload_id)
            total = _check_stored(wanted, {p.number: p for p in parts})
            if total != record.size:
                raise SizeMismatch(
                    f"The parts hold {total} bytes; the upload was announced as {record.size}."
                )
            info = self._store.complete_multipart(
                record.key, record.storage_upload_id, wanted, sha256=record.sha256
            )
        except UploadNotFound:
            return self._recover(record)
        except ChecksumMismatch as e:
            self._refuse(record)
            raise ChecksumMismatch(
                f"The bytes of upload {record.id} do not have the SHA-256 declared when it "
                "started; nothing was kept. Start a new upload."
            ) from e
        if info.sha256 is not None and info.sha256 != record.sha256:
            self._store.delete(record.key)
            self._refuse(record)
            raise ChecksumMismatch(
                f"The bytes of upload {record.id} do not have the SHA-256 declared when it "
                "started; the object was deleted. Start a new upload."
            )
        return self._finish(record, info.size)

    def abort(self, tenant: str, upload_id: str) -> None:
        """Drop the upload and its parts; aborting twice is fine, a completed one stays."""
        record = self._uploads.get_upload(tenant, upload_id)
        if record.state is UploadState.ABORTED:
            return
        if record.state is UploadState.COMPLETED:
            raise UploadCompleted("This upload is complete; its object is kept.")
        self._store.abort_multipart(record.key, record.storage_upload_id)
        self._uploads.save_upload(record.model_copy(update={"state": UploadState.ABORTED}))

    # Helpers -----------------------------------------------------------------------------

    def _refuse(self, record: UploadRecord) -> None:
        """A checksum mismatch: drop the parts and close the upload (a retry cannot fix it)."""
        self._store.abort_multipart(record.key, record.storage_upload_id)
        self._uploads.save_upload(record.model_copy(update={"state": UploadState.ABORTED}))

    def _open_upload(self, tenant: str, upload_id: str) -> UploadRecord:
        record = self._uploads.get_upload(tenant, upload_id)
        self._require_open(record)
        return record

    @staticmethod
    def _require_open(record: UploadRecord) -> None:
        if record.state is not UploadState.UPLOADING:
            raise UploadNotOpen(f"Upload {record.id} is {record.state.value}, not open for parts.")

    def _stored_parts(self, record: UploadRecord) -> list[PartInfo]:
        try:
            return self._store.list_parts(record.key, record.storage_upload_id)
        except UploadNotFound:
            return []

    def _object_of(self, record: UploadRecord) -> ObjectRef:
        found = self._uploads.find_object(record.object_id) if record.object_id else None
        if found is None:
            raise NotFound(f"The object of upload {record.id} no longer exists.")
        return found.ref()

    def _finish(self, record: UploadRecord, size: int) -> ObjectRef:
        stored = ObjectRecord(
            id=new_id(OBJECT_ID_PREFIX),
            tenant=record.tenant,
            key=record.key,
            name=record.name,
            size=size,
            sha256=record.sha256,
            media_type=record.media_type,
            created_at=utcnow(),
        )
        self._uploads.save_object(stored)
        completed = {"state": UploadState.COMPLETED, "object_id": stored.id}
        self._uploads.save_upload(record.model_copy(update=completed))
        return stored.ref()

    def _recover(self, record: UploadRecord) -> ObjectRef:
        """Storage no longer has the multipart upload: finished by a concurrent or interrupted
        complete (the object exists), or expired (it does not)."""
        current = self._uploads.get_upload(record.tenant, record.id)
        if current.state is UploadState.COMPLETED:
            return self._object_of(current)
        try:
            info = self._store.head(record.key)
        except ObjectNotFound as e:
            self._uploads.save_upload(record.model_copy(update={"state": UploadState.ABORTED}))
            raise UploadNotOpen(
                f"Upload {record.id} expired in storage; start a new upload."
            ) from e
        if info.size != record.size:
            raise SizeMismatch(
                f"The stored object holds {info.size} bytes, not the announced {record.size}."
            )
        return self._finish(record, info.size)
