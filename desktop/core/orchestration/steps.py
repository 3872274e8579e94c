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
import math
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

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
from desktop.core.orchestration.store import TaskMode
from subtone import robust
from subtone.errors import CapacityExceeded, NoPayload, SubtoneError
from subtone.protocol import Job, JobCreate, JobKind, JobParams, JobState
from subtone.stego import plane, wav
from subtone.stego.layout import choose_k, read_capacity
from subtone.stego.wav import WavError, WavInfo

__all__ = [
    "JobFailed",
    "SealedSecret",
    "cancel_quietly",
    "cover_capacity",
    "decode_mode",
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
    k: int | None
    """Hamming parameter: ``k`` payload bits per ``2**k - 1`` cover samples (``None`` in
    robust mode)."""


def read_cover(path: Path) -> tuple[WavInfo, int]:
    """The WAV's format and how many payload bytes it can hold, from its header alone."""
    try:
        info, capacity = read_capacity(path)
    except OSError as e:
        raise SubtoneError(f"Cannot read {path.name}: {e.strerror}.", code="unreadable_file") from e
    return info, capacity.max_payload_bytes


def cover_capacity(path: Path, mode: TaskMode = TaskMode.LSB) -> tuple[WavInfo, int]:
    """The cover WAV's format and how many payload bytes it holds in ``mode`` (header only)."""
    if mode is TaskMode.ROBUST:
        return robust.cover_capacity(path)
    return read_cover(path)


ROBUST_CROP_SECONDS = 2.2
"""What a channel may have cut off a robust file (up to a second at either end, guards
included): the most a decoded file may hold is what a file this much longer holds."""


def decode_mode(path: Path, k_pos: bytes, mode: TaskMode = TaskMode.AUTO) -> tuple[TaskMode, int]:
    """How to decode ``path`` under ``k_pos``, and the most its message may hold. Decided here,
    before anything is sent, from the file's start: a wrong passphrase (or nothing hidden) is
    ``no_payload`` after reading half a megabyte (LSB) or a dozen seconds of audio (robust).

    ``AUTO`` takes the LSB mode when the file is a PCM WAV with an LSB message under this
    passphrase, else the robust mode when its start shows robust pilots under it (a file in
    any format soundfile reads: the robust mode survives re-encoding)."""
    if mode is not TaskMode.ROBUST:
        try:
            _, capacity_bytes = read_cover(path)
            check_hidden_header(path, k_pos)
        except SubtoneError as e:
            lsb_absent = isinstance(e, WavError) or e.code == NoPayload.code
            if mode is TaskMode.LSB or not lsb_absent:
                raise
        else:
            return TaskMode.LSB, capacity_bytes
    from subtone.robust.sync import PROBE_Z  # scipy: only for a robust decode

    if robust.file_probe(path, k_pos) < PROBE_Z:
        raise NoPayload()
    frames, rate = _audio_length(path)
    grace = math.ceil(ROBUST_CROP_SECONDS * rate)
    return TaskMode.ROBUST, robust.capacity_frames(frames + grace, rate)


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
    mode: TaskMode = TaskMode.LSB,
) -> SealedSecret:
    """Check the cover's capacity (in ``mode``), prepare the secret (audio to Opus unless
    ``compress_audio`` is false, or ``prepared`` as given) and seal it here.

    Refuses a secret that cannot fit (``capacity_exceeded``) before sealing anything.
    """
    info, capacity_bytes = cover_capacity(cover, mode)
    if prepared is None:
        prepared = prepare_audio_secret(secret) if compress_audio else prepare_file_secret(secret)
    payload_bytes = sealed_length(
        len(prepared.data), name=prepared.name, media_type=prepared.media_type
    )
    k: int | None = None
    if mode is TaskMode.ROBUST:
        if payload_bytes > capacity_bytes:  # before any work
            raise CapacityExceeded(
                f"Sealed, the secret takes {payload_bytes:,} bytes; in robust mode (survives "
                f"re-encoding, about 100 bits per second of cover) this cover holds "
                f"{capacity_bytes:,}. Use a longer cover or a shorter secret."
            )
    else:
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


def _audio_length(path: Path) -> tuple[int, int]:
    """Frames and sample rate of a file to decode (any format soundfile reads)."""
    try:
        info = sf.info(str(path))
    except sf.LibsndfileError as e:
        raise SubtoneError(
            f"{path.name} is not an audio file this client reads.", code="not_audio"
        ) from e
    return int(info.frames), int(info.samplerate)


def job_request(kind: JobKind, inputs: Mapping[str, str], k_pos: str) -> JobCreate:
    return JobCreate(kind=kind, inputs=dict(inputs), params=JobParams(k_pos=k_pos))
