"""What travels between this machine and the server: the only module that knows which local
files become which job inputs, and how a job's result becomes the output.

Two functions are the protocol's swap points, called by the runner and by nothing else:

- :func:`upload_inputs`: local files → the job's input objects (today the cover, or the stego
  file, and the sealed payload, each uploaded whole and resumably).
- :func:`finish_encode`: an embed job's result → the stego file at its target (today the
  stego file downloaded whole).

A decode's result (the sealed payload) is fetched by :func:`fetch_sealed_result`; opening it
needs the passphrase and is the runner's last step.
"""

from __future__ import annotations

import threading
from enum import StrEnum
from pathlib import Path
from typing import Final, Protocol

from desktop.core.api import ApiClient, ApiError
from desktop.core.orchestration.progress import Progress, Stage, notify
from desktop.core.orchestration.store import TaskKind
from desktop.core.uploader import Uploader, UploadResult
from subtone.files import atomic_output
from subtone.protocol import Job

__all__ = [
    "COVER_MEDIA_TYPE",
    "PAYLOAD_MEDIA_TYPE",
    "PAYLOAD_NAME",
    "InputCheckpoint",
    "InputSlot",
    "download_result",
    "fetch_sealed_result",
    "finish_encode",
    "upload_inputs",
]

PAYLOAD_NAME: Final = "payload.bin"
"""The name the sealed payload is uploaded under: the secret's own name never leaves."""
PAYLOAD_MEDIA_TYPE: Final = "application/octet-stream"
COVER_MEDIA_TYPE: Final = "audio/wav"
STEGO_FILE_MODE: Final = 0o644
SEALED_FILE_MODE: Final = 0o600
DOWNLOAD_ATTEMPTS: Final = 2
"""A download whose link expired is retried once with a fresh link."""


class InputSlot(StrEnum):
    """Where an uploaded object is checkpointed: what came from the task's input file (the
    cover, or the stego file), and the sealed payload."""

    SOURCE = "input"
    PAYLOAD = "payload"


class InputCheckpoint(Protocol):
    """What :func:`upload_inputs` needs of the checkpoint store."""

    def uploaded(self, slot: InputSlot) -> str | None:
        """The object id already uploaded for ``slot``, if any."""
        ...

    def record(self, slot: InputSlot, result: UploadResult) -> None:
        """Remember that ``slot`` is uploaded (called as soon as it is)."""
        ...


def upload_inputs(
    uploader: Uploader,
    kind: TaskKind,
    source: Path,
    sealed: Path | None,
    *,
    checkpoint: InputCheckpoint,
    progress: Progress | None,
    cancel: threading.Event,
) -> dict[str, str]:
    """Put what the job reads on the server; returns the job's inputs (name → object id).

    ``source`` is the cover (encode) or the stego file (decode); ``sealed`` the sealed payload
    (encode only). What ``checkpoint`` already holds is not sent again; an interrupted upload
    resumes with the parts storage lacks.
    """

    def send(slot: InputSlot, path: Path, name: str, media_type: str, stage: Stage) -> str:
        done = checkpoint.uploaded(slot)
        if done is not None:
            return done
        result = uploader.upload_file(
            path,
            name=name,
            media_type=media_type,
            progress=notify(progress, stage),
            hash_progress=notify(progress, Stage.HASH) if slot is InputSlot.SOURCE else None,
            cancel=cancel,
        )
        checkpoint.record(slot, result)
        return result.object.id

    source_id = send(InputSlot.SOURCE, source, source.name, COVER_MEDIA_TYPE, Stage.UPLOAD)
    if kind is TaskKind.DECODE:
        return {"stego": source_id}
    if sealed is None:
        raise ValueError("an encode needs its sealed payload")
    payload_id = send(
        InputSlot.PAYLOAD, sealed, PAYLOAD_NAME, PAYLOAD_MEDIA_TYPE, Stage.UPLOAD_PAYLOAD
    )
    return {"cover": source_id, "payload": payload_id}


def finish_encode(
    client: ApiClient,
    job: Job,
    cover: Path,
    target: Path,
    *,
    progress: Progress | None,
    stop: threading.Event,
) -> int:
    """Write the stego file to ``target`` from a succeeded embed job; returns its size.

    ``cover`` is the local cover the job was made from (unused while the server returns the
    whole stego file).
    """
    del cover  # the result is the whole stego file
    return download_result(client, job, target, STEGO_FILE_MODE, progress=progress, stop=stop)


def fetch_sealed_result(
    client: ApiClient,
    job: Job,
    target: Path,
    *,
    capacity_bytes: int | None,
    progress: Progress | None,
    stop: threading.Event,
) -> int:
    """Download a succeeded extract job's sealed payload to ``target`` (owner-only)."""
    result = job.result
    assert result is not None
    if capacity_bytes is not None and result.size > capacity_bytes:
        raise ApiError(
            "The server's result is larger than this file could hold.",
            code="bad_response",
            status=200,
        )
    return download_result(client, job, target, SEALED_FILE_MODE, progress=progress, stop=stop)


def download_result(
    client: ApiClient,
    job: Job,
    target: Path,
    mode: int,
    *,
    progress: Progress | None,
    stop: threading.Event,
) -> int:
    """Download a succeeded job's result to ``target`` (written whole or not at all), asking
    for a fresh link once if it expired; returns the bytes written."""
    result = job.result
    assert result is not None
    for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
        url = job.download_url
        if url is None:
            job = client.get_job(job.id)
            url = job.download_url
        if url is None:
            raise ApiError("The server gave no download link.", code="bad_response", status=200)
        try:
            with atomic_output(target, mode=mode) as f:
                return client.download(
                    url,
                    f,
                    expected_size=result.size,
                    expected_sha256=result.sha256,
                    progress=notify(progress, Stage.DOWNLOAD),
                    stop=stop,
                )
        except ApiError as e:
            if e.code != "url_expired" or attempt == DOWNLOAD_ATTEMPTS:
                raise
            job = client.get_job(job.id)
    raise AssertionError("unreachable")  # pragma: no cover
