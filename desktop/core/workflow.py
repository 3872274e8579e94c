"""Encode and decode from start to finish: what both the CLI and the desktop app call.

Encode: check the cover's capacity from its header, prepare the secret (audio to Opus), seal
it here (the server never sees the secret, its name, or ``k_enc``), upload the cover
(resumable) and the sealed payload (as ``payload.bin``), run a ``stego.embed`` job, follow it
and download the result to a temporary file renamed into place once checked.

Decode: derive ``k_pos``, upload the stego file, run ``stego.extract``, download the sealed
payload, open it here, and write the secret under a safe name.

Everything is passed in (the API client, the uploader, callbacks, the cancel token), so tests
drive it with fakes.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO, Final

from desktop.core.api import ApiClient, ApiError
from desktop.core.envelope import (
    DEFAULT_KDF,
    MAX_SECRET_BYTES,
    OPUS_MEDIA_TYPE,
    POSITION_KDF,
    KdfParams,
    PreparedSecret,
    derive_position_key,
    open_sealed,
    prepare_audio_secret,
    prepare_file_secret,
    safe_name,
    seal,
    sealed_length,
)
from desktop.core.uploader import UploadCancelled, Uploader, UploadResult
from subtone.errors import SubtoneError
from subtone.files import atomic_output
from subtone.protocol import Job, JobCreate, JobKind, JobParams, JobState, ObjectRef
from subtone.stego.codec import read_capacity
from subtone.stego.layout import choose_k
from subtone.stego.wav import WavInfo

__all__ = [
    "COVER_MEDIA_TYPE",
    "PAYLOAD_MEDIA_TYPE",
    "PAYLOAD_NAME",
    "DecodeSummary",
    "EncodeSummary",
    "JobFailed",
    "Progress",
    "ProgressEvent",
    "Stage",
    "decode",
    "encode",
    "job_idempotency_key",
    "max_secret_bytes",
    "succeeded",
]

PAYLOAD_NAME: Final = "payload.bin"
"""The name the sealed payload is uploaded under: the secret's own name never leaves."""
PAYLOAD_MEDIA_TYPE: Final = "application/octet-stream"
COVER_MEDIA_TYPE: Final = "audio/wav"
STEGO_FILE_MODE: Final = 0o644
SECRET_FILE_MODE: Final = 0o600
MAX_UNIQUE_NAME_TRIES: Final = 1000
DOWNLOAD_ATTEMPTS: Final = 2
"""A download whose link expired is retried once with a fresh link."""


class Stage(StrEnum):
    """A step of an operation, for progress reporting."""

    PREPARE = "prepare"
    HASH = "hash"
    UPLOAD = "upload"
    UPLOAD_PAYLOAD = "upload_payload"
    JOB = "job"
    DOWNLOAD = "download"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS: Final = {
    Stage.PREPARE: "Sealing the secret",
    Stage.HASH: "Checking the file",
    Stage.UPLOAD: "Uploading",
    Stage.UPLOAD_PAYLOAD: "Uploading the sealed secret",
    Stage.JOB: "Processing on the server",
    Stage.DOWNLOAD: "Downloading",
}


@dataclass(frozen=True)
class ProgressEvent:
    stage: Stage
    done: float
    """Bytes for uploads and downloads, 0..1 for the job, 0 or 1 for preparing."""
    total: float


Progress = Callable[[ProgressEvent], None]


class JobFailed(SubtoneError):
    """The server ran the job and it failed: its code and message, as the server gave them."""

    status = 422

    def __init__(self, message: str, *, code: str, job_id: str) -> None:
        super().__init__(message, code=code)
        self.job_id = job_id


@dataclass(frozen=True)
class EncodeSummary:
    output: Path
    output_bytes: int
    cover: ObjectRef
    cover_reused: bool
    """The cover was already on the server: nothing was uploaded for it."""
    cover_resumed: bool
    """An interrupted upload of the cover was continued."""
    cover_parts_sent: int
    cover_parts_total: int
    secret_name: str
    """The name stored inside the sealed payload (local only, never sent)."""
    secret_media_type: str
    secret_bytes: int
    payload_bytes: int
    capacity_bytes: int
    k: int
    """Hamming parameter: ``k`` payload bits per ``2**k - 1`` cover samples."""
    job_id: str


@dataclass(frozen=True)
class DecodeSummary:
    output: Path
    name: str
    media_type: str
    size: int
    job_id: str


def job_idempotency_key(
    kind: JobKind, inputs: Mapping[str, str], k_pos: bytes, nonce: str = ""
) -> str:
    """A key that makes a retried ``POST /v1/jobs`` return the job the first try made.

    It depends on the request (kind, input ids, a digest of ``k_pos``) and on ``nonce``: an
    embed's payload is a fresh object each time, so its key needs none; an extraction may
    reuse an already uploaded stego file, so each operation passes its own nonce (else a
    failed extraction would be returned again instead of being tried anew).
    """
    digest = hashlib.sha256()
    for part in (kind.value, *(f"{k}={inputs[k]}" for k in sorted(inputs)), k_pos.hex(), nonce):
        digest.update(part.encode())
        digest.update(b"\x00")
    return f"subtone-{digest.hexdigest()}"


def max_secret_bytes(
    capacity_bytes: int, *, name: str = "secret.opus", media_type: str = OPUS_MEDIA_TYPE
) -> int:
    """The largest secret whose sealed payload fits ``capacity_bytes`` (0 if none does).

    The sealed size depends on the name and media type stored with the secret; the defaults
    are those of a recorded voice message.
    """
    low, high = 0, min(capacity_bytes, MAX_SECRET_BYTES)
    while low < high:  # sealed_length grows with the secret's size: bisect
        mid = (low + high + 1) // 2
        if sealed_length(mid, name=name, media_type=media_type) <= capacity_bytes:
            low = mid
        else:
            high = mid - 1
    return low


# --- helpers --------------------------------------------------------------------------------


def _notify(progress: Progress | None, stage: Stage) -> Callable[[int, int], None]:
    def report(done: int, total: int) -> None:
        if progress is not None:
            progress(ProgressEvent(stage, done, total))

    return report


def _read_cover(path: Path) -> tuple[WavInfo, int]:
    try:
        info, capacity = read_capacity(path)
    except OSError as e:
        raise SubtoneError(f"Cannot read {path.name}: {e.strerror}.", code="unreadable_file") from e
    return info, capacity.max_payload_bytes


def _check_output(path: Path, overwrite: bool, *, sources: tuple[Path, ...] = ()) -> Path:
    target = path.expanduser().resolve()
    if not target.parent.is_dir():
        raise SubtoneError(f"The folder {target.parent} does not exist.", code="no_such_folder")
    if target.is_dir():
        raise SubtoneError(f"{target} is a folder; give a file name.", code="output_is_folder")
    if any(target == s.resolve() for s in sources):
        raise SubtoneError("The output would overwrite an input file.", code="output_is_input")
    if target.exists() and not overwrite:
        raise SubtoneError(
            f"{target} already exists; choose another name or allow overwriting.",
            code="output_exists",
        )
    return target


def _unique(folder: Path, name: str) -> Path:
    candidate = folder / name
    stem, suffix = Path(name).stem, Path(name).suffix
    for n in range(1, MAX_UNIQUE_NAME_TRIES):
        if not candidate.exists():
            return candidate
        candidate = folder / f"{stem} ({n}){suffix}"
    raise SubtoneError(f"Too many files named like {name} in {folder}.", code="output_exists")


def _run_job(
    client: ApiClient,
    request: JobCreate,
    key: str,
    progress: Progress | None,
    cancel: threading.Event | None,
) -> Job:
    """Create the job, follow it to the end, and return it succeeded (or raise)."""
    job = client.create_job(request, idempotency_key=key)
    report = _notify(progress, Stage.JOB)

    def update(current: Job) -> None:
        report(round(current.progress * 1000), 1000)

    update(job)
    final = job if job.state.finished else client.follow_job(job.id, update, stop=cancel)
    if not final.state.finished:  # stopped by the cancel token
        with contextlib.suppress(SubtoneError):
            client.cancel_job(final.id)
        raise UploadCancelled("Cancelled; the server job was cancelled too.")
    return succeeded(final)


def succeeded(job: Job) -> Job:
    """``job`` (finished) if it succeeded with a result; else what went wrong, raised."""
    if job.state is JobState.FAILED:
        error = job.error
        raise JobFailed(
            error.message if error else "The job failed.",
            code=error.code if error else "job_failed",
            job_id=job.id,
        )
    if job.state is JobState.CANCELLED:
        raise SubtoneError("The job was cancelled on the server.", code="cancelled")
    if job.result is None:
        raise ApiError("The job succeeded without a result.", code="bad_response", status=200)
    return job


def _download(
    client: ApiClient,
    job: Job,
    dest: BinaryIO,
    progress: Progress | None,
    cancel: threading.Event | None,
) -> int:
    """Download a succeeded job's result into ``dest``, once more if the link expired."""
    result = job.result
    assert result is not None
    for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
        url = job.download_url
        if url is None:
            job = client.get_job(job.id)
            url = job.download_url
        if url is None:
            raise ApiError("The server gave no download link.", code="bad_response", status=200)
        dest.seek(0)
        dest.truncate()
        try:
            return client.download(
                url,
                dest,
                expected_size=result.size,
                expected_sha256=result.sha256,
                progress=_notify(progress, Stage.DOWNLOAD),
                stop=cancel,
            )
        except ApiError as e:
            if e.code != "url_expired" or attempt == DOWNLOAD_ATTEMPTS:
                raise
            job = client.get_job(job.id)
    raise AssertionError("unreachable")  # pragma: no cover


def _uploader_for(
    client: ApiClient, uploader: Uploader | None
) -> contextlib.AbstractContextManager[Uploader]:
    if uploader is not None:
        return contextlib.nullcontext(uploader)
    return Uploader(client)


# --- encode --------------------------------------------------------------------------------


def encode(
    client: ApiClient,
    cover_path: str | os.PathLike[str],
    secret_path: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    passphrase: str,
    *,
    uploader: Uploader | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    compress_audio: bool = True,
    overwrite: bool = False,
    kdf: KdfParams = DEFAULT_KDF,
    position_kdf: KdfParams = POSITION_KDF,
) -> EncodeSummary:
    """Hide the secret file in the cover WAV and write the result to ``out_path``.

    Audio secrets are compressed to Opus unless ``compress_audio`` is false. Refuses early,
    before any upload, when the sealed secret cannot fit (``capacity_exceeded``). ``uploader``
    should carry a :class:`~desktop.core.sessions.SessionStore` to resume across runs;
    without one, a private uploader without sessions is used.
    """
    cover = Path(cover_path)
    secret_file = Path(secret_path)
    target = _check_output(Path(out_path), overwrite, sources=(cover, secret_file))
    info, capacity_bytes = _read_cover(cover)
    prepare = _notify(progress, Stage.PREPARE)
    prepare(0, 1)
    prepared: PreparedSecret = (
        prepare_audio_secret(secret_file) if compress_audio else prepare_file_secret(secret_file)
    )
    payload_bytes = sealed_length(
        len(prepared.data), name=prepared.name, media_type=prepared.media_type
    )
    k = choose_k(info.samples, payload_bytes)  # capacity_exceeded before any upload
    sealed = seal(
        prepared.data,
        name=prepared.name,
        media_type=prepared.media_type,
        passphrase=passphrase,
        kdf=kdf,
        position_kdf=position_kdf,
    )
    prepare(1, 1)
    with _uploader_for(client, uploader) as up:
        cover_up: UploadResult = up.upload_file(
            cover,
            name=cover.name,
            media_type=COVER_MEDIA_TYPE,
            progress=_notify(progress, Stage.UPLOAD),
            hash_progress=_notify(progress, Stage.HASH),
            cancel=cancel,
        )
        payload_up = up.upload_bytes(
            sealed.payload,
            name=PAYLOAD_NAME,
            media_type=PAYLOAD_MEDIA_TYPE,
            progress=_notify(progress, Stage.UPLOAD_PAYLOAD),
            cancel=cancel,
        )
    inputs = {"cover": cover_up.object.id, "payload": payload_up.object.id}
    request = JobCreate(
        kind=JobKind.EMBED, inputs=inputs, params=JobParams(k_pos=sealed.k_pos.hex())
    )
    job = _run_job(
        client, request, job_idempotency_key(JobKind.EMBED, inputs, sealed.k_pos), progress, cancel
    )
    with atomic_output(target, mode=STEGO_FILE_MODE) as f:
        written = _download(client, job, f, progress, cancel)
    return EncodeSummary(
        output=target,
        output_bytes=written,
        cover=cover_up.object,
        cover_reused=cover_up.reused,
        cover_resumed=cover_up.resumed,
        cover_parts_sent=cover_up.parts_sent,
        cover_parts_total=cover_up.parts_total,
        secret_name=prepared.name,
        secret_media_type=prepared.media_type,
        secret_bytes=len(prepared.data),
        payload_bytes=len(sealed.payload),
        capacity_bytes=capacity_bytes,
        k=k,
        job_id=job.id,
    )


# --- decode --------------------------------------------------------------------------------


def decode(
    client: ApiClient,
    stego_path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    passphrase: str,
    *,
    uploader: Uploader | None = None,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    overwrite: bool = False,
    position_kdf: KdfParams = POSITION_KDF,
) -> DecodeSummary:
    """Recover the secret hidden in ``stego_path``.

    ``out`` is a folder (the secret is written there under its own safe name, made unique)
    or a file path. Fails with the server's code (``no_payload``...) or ``wrong_passphrase``.
    """
    stego = Path(stego_path)
    out = Path(out).expanduser()
    if not out.is_dir():
        _check_output(out, overwrite, sources=(stego,))
    prepare = _notify(progress, Stage.PREPARE)
    prepare(0, 1)
    k_pos = derive_position_key(passphrase, position_kdf=position_kdf)
    _, capacity_bytes = _read_cover(stego)  # not a WAV: refused before uploading
    prepare(1, 1)
    with _uploader_for(client, uploader) as up:
        stego_up = up.upload_file(
            stego,
            name=stego.name,
            media_type=COVER_MEDIA_TYPE,
            progress=_notify(progress, Stage.UPLOAD),
            hash_progress=_notify(progress, Stage.HASH),
            cancel=cancel,
        )
    inputs = {"stego": stego_up.object.id}
    request = JobCreate(kind=JobKind.EXTRACT, inputs=inputs, params=JobParams(k_pos=k_pos.hex()))
    key = job_idempotency_key(JobKind.EXTRACT, inputs, k_pos, nonce=uuid.uuid4().hex)
    job = _run_job(client, request, key, progress, cancel)
    assert job.result is not None
    if job.result.size > capacity_bytes:
        raise ApiError(
            "The server's result is larger than this file could hold.",
            code="bad_response",
            status=200,
        )
    buffer = io.BytesIO()
    _download(client, job, buffer, progress, cancel)
    secret = open_sealed(buffer.getvalue(), passphrase)
    name = safe_name(secret.name)
    if out.is_dir():
        target = _unique(out.resolve(), name)
    else:
        target = _check_output(out, overwrite, sources=(stego,))
    with atomic_output(target, mode=SECRET_FILE_MODE) as f:
        f.write(secret.data)
    return DecodeSummary(
        output=target, name=name, media_type=secret.media_type, size=len(secret.data), job_id=job.id
    )
