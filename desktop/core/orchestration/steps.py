"""The steps of an encode and a decode that do not move files: read the cover's capacity, seal
the secret, run the job (create it once, follow it, tell success from failure).

Moving files (uploading the inputs, turning the job's result into the output) is
:mod:`desktop.core.orchestration.transfer`; putting the steps in order over the checkpoint
store is :mod:`desktop.core.orchestration.runner`.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from desktop.core.api import ApiClient
from desktop.core.api_errors import ApiError
from desktop.core.envelope import (
    MAX_SECRET_BYTES,
    OPUS_MEDIA_TYPE,
    POSITION_KDF,
    KdfParams,
    PreparedSecret,
    Sealed,
    prepare_audio_secret,
    prepare_file_secret,
    seal,
    sealed_length,
)
from desktop.core.orchestration.progress import Progress, Stage, notify
from subtone.errors import SubtoneError
from subtone.protocol import Job, JobCreate, JobKind, JobParams, JobState
from subtone.stego import plane, wav
from subtone.stego.layout import choose_k, read_capacity
from subtone.stego.wav import WavInfo

__all__ = [
    "JobFailed",
    "SealedSecret",
    "cancel_quietly",
    "job_idempotency_key",
    "job_request",
    "max_secret_bytes",
    "read_cover",
    "run_job",
    "seal_secret",
    "succeeded",
]

log = logging.getLogger(__name__)


class JobFailed(SubtoneError):
    """The server ran the job and it failed: its code and message, as the server gave them."""

    status = 422

    def __init__(self, message: str, *, code: str, job_id: str) -> None:
        super().__init__(message, code=code)
        self.job_id = job_id


@dataclass(frozen=True)
class SealedSecret:
    """The secret as it will travel: sealed here, checked to fit the cover."""

    secret: PreparedSecret
    sealed: Sealed
    capacity_bytes: int
    k: int
    """Hamming parameter: ``k`` payload bits per ``2**k - 1`` cover samples."""


def read_cover(path: Path) -> tuple[WavInfo, int]:
    """The WAV's format and how many payload bytes it can hold, from its header alone."""
    try:
        info, capacity = read_capacity(path)
    except OSError as e:
        raise SubtoneError(f"Cannot read {path.name}: {e.strerror}.", code="unreadable_file") from e
    return info, capacity.max_payload_bytes


def check_hidden_header(path: Path, k_pos: bytes) -> None:
    """Read the stego file's first window here and check the hidden header under ``k_pos``:
    a wrong passphrase, or a file with nothing hidden, is refused (``no_payload``) before
    anything is sent, after reading half a megabyte."""
    try:
        with path.open("rb") as f:
            info, _ = wav.read_header(f)
            window0 = next(plane.lsb_plane(f, info))
    except OSError as e:
        raise SubtoneError(f"Cannot read {path.name}: {e.strerror}.", code="unreadable_file") from e
    plane.header_from_plane(window0, info.samples, k_pos)


def seal_secret(
    cover: Path,
    secret: Path,
    passphrase: str,
    *,
    prepared: PreparedSecret | None = None,
    compress_audio: bool = True,
    position_kdf: KdfParams = POSITION_KDF,
) -> SealedSecret:
    """Check the cover's capacity, prepare the secret (audio to Opus unless
    ``compress_audio`` is false, or ``prepared`` as given) and seal it here.

    Refuses a secret that cannot fit (``capacity_exceeded``) before sealing anything.
    """
    info, capacity_bytes = read_cover(cover)
    if prepared is None:
        prepared = prepare_audio_secret(secret) if compress_audio else prepare_file_secret(secret)
    payload_bytes = sealed_length(
        len(prepared.data), name=prepared.name, media_type=prepared.media_type
    )
    k = choose_k(info.samples, payload_bytes)  # capacity_exceeded, before any work
    sealed = seal(
        prepared.data,
        name=prepared.name,
        media_type=prepared.media_type,
        passphrase=passphrase,
        position_kdf=position_kdf,
    )
    return SealedSecret(prepared, sealed, capacity_bytes, k)


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


def job_idempotency_key(
    kind: JobKind, inputs: Mapping[str, str], k_pos: bytes, nonce: str = ""
) -> str:
    """A key that makes a retried ``POST /v1/jobs`` return the job the first try made.

    It depends on the request (kind, input ids, a digest of ``k_pos``) and on ``nonce``: each
    task has its own, so a failed extraction of an already uploaded file is tried anew instead
    of being returned again, while a retry of the same task finds its job.
    """
    digest = hashlib.sha256()
    for part in (kind.value, *(f"{k}={inputs[k]}" for k in sorted(inputs)), k_pos.hex(), nonce):
        digest.update(part.encode())
        digest.update(b"\x00")
    return f"subtone-{digest.hexdigest()}"


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


def run_job(
    client: ApiClient,
    request: JobCreate,
    *,
    idempotency_key: str,
    known_job_id: str | None,
    on_update: Callable[[Job], None],
    progress: Progress | None,
    stop: threading.Event,
) -> Job | None:
    """Create the job (or find ``known_job_id`` again) and follow it to its end.

    ``on_update`` hears every state (the first one as soon as the job exists, to checkpoint
    its id). Returns the finished job, or ``None`` when ``stop`` was set first.
    """
    job: Job | None = None
    if known_job_id is not None:
        try:
            job = client.get_job(known_job_id)
        except ApiError as e:
            if e.status != 404:
                raise
            log.info("job %s is gone from the server; creating it again", known_job_id)
    if job is None:
        job = client.create_job(request, idempotency_key=idempotency_key)
    report = notify(progress, Stage.JOB)

    def update(current: Job) -> None:
        on_update(current)
        report(round(current.progress * 1000), 1000)

    update(job)
    if not job.state.finished:
        job = client.follow_job(job.id, update, stop=stop)
    return job if job.state.finished else None


def cancel_quietly(client: ApiClient, job_id: str) -> None:
    """Ask the server to cancel a job; a failure is not the caller's problem (best effort)."""
    with contextlib.suppress(SubtoneError):
        client.cancel_job(job_id)


def job_request(kind: JobKind, inputs: Mapping[str, str], k_pos: str) -> JobCreate:
    return JobCreate(kind=kind, inputs=dict(inputs), params=JobParams(k_pos=k_pos))
