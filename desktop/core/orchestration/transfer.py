"""What travels between this machine and the server: the only module that knows which local
files become which job inputs, and how a job's result becomes the output.

Two functions are the protocol's swap points, called by the runner and by nothing else:

- :func:`upload_inputs`: local files → the job's input objects. The cover (or the stego
  file) is read once, here, into what the job reads, and that and the sealed payload are
  uploaded, each resumably. In the LSB mode that is its LSB plane (:mod:`subtone.stego.plane`,
  1/16 of a 16-bit file): the audio never leaves this machine. In the robust mode it is its
  working mix (:mod:`subtone.robust.wire`: the channels' mean at 16 kHz, as floats): the
  server sees a mono copy of the audio below 8 kHz (docs/robust.md, "What travels").
- :func:`finish_encode`: an embed job's result is downloaded and applied to a copy of the
  local cover, which becomes the stego file: a patch (:mod:`subtone.stego.patch`, the samples
  to flip) in the LSB mode, a residual (what marking adds, resampled to the cover's rate and
  added to every channel) in the robust mode.

A decode's result (the sealed payload) is fetched by :func:`fetch_sealed_result`; opening it
needs the passphrase and is the runner's last step.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Final, Protocol

from desktop.core.api import ApiClient
from desktop.core.api_errors import ApiError
from desktop.core.orchestration.progress import Progress, ProgressEvent, Stage, notify
from desktop.core.orchestration.store import TaskKind, TaskMode
from desktop.core.uploader import Uploader, UploadResult, file_identity, sha256_file
from subtone import robust
from subtone.errors import SubtoneError
from subtone.files import atomic_output
from subtone.protocol import Job
from subtone.robust import wire
from subtone.stego import patch, plane, wav

__all__ = [
    "COVER_MEDIA_TYPE",
    "PAYLOAD_MEDIA_TYPE",
    "PAYLOAD_NAME",
    "Derived",
    "InputCheckpoint",
    "InputSlot",
    "download_result",
    "fetch_sealed_result",
    "finish_encode",
    "read_ahead",
    "start_stego",
    "upload_inputs",
    "write_lsb_plane",
    "write_mix",
]

log = logging.getLogger(__name__)

PAYLOAD_NAME: Final = "payload.bin"
"""The name the sealed payload is uploaded under: the secret's own name never leaves."""
PAYLOAD_MEDIA_TYPE: Final = "application/octet-stream"
COVER_MEDIA_TYPE: Final = "audio/wav"
PLANE_SUFFIX: Final = ".plane"
MIX_SUFFIX: Final = ".mix"
PATCH_SUFFIX: Final = ".patch"
RESIDUAL_SUFFIX: Final = ".residual"
STEGO_FILE_MODE: Final = 0o644
SEALED_FILE_MODE: Final = 0o600
DOWNLOAD_ATTEMPTS: Final = 2
"""A download whose link expired is retried once with a fresh link."""


class InputSlot(StrEnum):
    """Where an uploaded object is checkpointed: what came from the task's input file (the
    cover, or the stego file), and the sealed payload."""

    SOURCE = "input"
    PAYLOAD = "payload"


@dataclass(frozen=True)
class Derived:
    """What was derived from a task's input (its LSB plane, or its working mix) and written
    to ``path`` by this process: its size and SHA-256, known from writing it.

    Such a file is not made durable (no ``fsync``: it would hold up the upload while a
    cover's worth of data goes to the disk): it can always be derived again, and one found
    on disk from an earlier run is sent only if the upload that was sending it vouches for
    its bytes (:func:`upload_inputs`), so that a file a machine crash left with other bytes
    is never sent."""

    path: Path
    size: int
    sha256: str


class _ReadAhead:
    """What :func:`read_ahead` wrote, once its block has ended (``None``: nothing)."""

    derived: Derived | None = None


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
    lsb_plane: Path,
    checkpoint: InputCheckpoint,
    progress: Progress | None,
    cancel: threading.Event,
    mode: TaskMode = TaskMode.LSB,
    derived: Derived | None = None,
) -> dict[str, str]:
    """Put what the job reads on the server; returns the job's inputs (name → object id).

    ``source`` is the cover (encode) or the stego file (decode): what the job reads of it (its
    LSB plane; in robust ``mode`` its working mix) is written to ``lsb_plane`` (kept until
    sent, so a restart resumes the same upload) and uploaded in its place. ``sealed`` is the
    sealed payload (encode only). What ``checkpoint`` already holds is not sent again; an
    interrupted upload resumes with the parts storage lacks. ``derived``: ``lsb_plane`` as
    this process wrote it (:func:`read_ahead`), sent as it is; a file there that it did not
    write is an earlier run's, sent only if its upload session vouches for it, else derived
    again (:class:`Derived`).
    """

    def send(
        slot: InputSlot, path: Path, name: str, media_type: str, stage: Stage, sha256: str | None
    ) -> str:
        result = uploader.upload_file(
            path,
            name=name,
            media_type=media_type,
            progress=notify(progress, stage),
            hash_progress=notify(progress, Stage.HASH) if slot is InputSlot.SOURCE else None,
            cancel=cancel,
            sha256=sha256,
        )
        checkpoint.record(slot, result)
        return result.object.id

    robust_mode = mode is TaskMode.ROBUST
    source_input = "mix" if robust_mode else "plane"
    source_id = checkpoint.uploaded(InputSlot.SOURCE)
    if source_id is None:
        if derived is None or derived.path != lsb_plane or not lsb_plane.is_file():
            cover = kind is TaskKind.ENCODE
            derived = _derive(uploader, source, lsb_plane, mode, cover, progress, cancel)
        suffix, media_type = (
            (MIX_SUFFIX, wire.MIX_MEDIA_TYPE) if robust_mode else (PLANE_SUFFIX, plane.MEDIA_TYPE)
        )
        source_id = send(
            InputSlot.SOURCE, lsb_plane, source.stem + suffix, media_type, Stage.UPLOAD,
            derived.sha256,
        )  # fmt: skip
    lsb_plane.unlink(missing_ok=True)
    if kind is TaskKind.DECODE:
        return {source_input: source_id}
    if sealed is None:
        raise ValueError("an encode needs its sealed payload")
    payload_id = checkpoint.uploaded(InputSlot.PAYLOAD) or send(
        InputSlot.PAYLOAD, sealed, PAYLOAD_NAME, PAYLOAD_MEDIA_TYPE, Stage.UPLOAD_PAYLOAD, None
    )
    return {source_input: source_id, "payload": payload_id}


def _derive(
    uploader: Uploader,
    source: Path,
    target: Path,
    mode: TaskMode,
    cover: bool,
    progress: Progress | None,
    cancel: threading.Event,
) -> Derived:
    """``target`` holding what the job reads of ``source``: an earlier run's file if the
    upload that was sending it vouches for its bytes (a saved session for that very file,
    SHA-256 included: nothing else shows that a file written without ``fsync`` survived a
    crash of the machine whole), else written now from ``source``."""
    if target.is_file():
        identity = file_identity(target, progress=notify(progress, Stage.HASH), cancel=cancel)
        if uploader.has_session_for(identity):
            return Derived(target, identity.size, identity.sha256)
        log.info("no upload vouches for %s: derived again from %s", target.name, source.name)
    if mode is TaskMode.ROBUST:
        return write_mix(source, target, cover=cover, progress=progress)
    return write_lsb_plane(source, target, progress=progress)


def write_mix(source: Path, target: Path, *, cover: bool, progress: Progress | None) -> Derived:
    """Read ``source`` once and write its working mix to ``target`` (whole or not at all,
    owner-only, not made durable: :class:`Derived`). A ``cover`` is a PCM WAV (the stego file
    keeps its format); a file to decode may be in any format soundfile reads."""
    report = notify(progress, Stage.PLANE)
    with atomic_output(target, mode=SEALED_FILE_MODE, durable=False) as dst:
        if cover:
            robust.write_cover_mix(source, dst, progress=report)
        else:
            robust.write_file_mix(source, dst, progress=report)
        size = dst.tell()
    # A file's mix may be rewritten from its start (a header that miscounted its frames):
    # hashed once written, not as it is written (a mix is 1/22 of a 16 kHz cover, at most).
    return Derived(target, size, sha256_file(target))


def write_lsb_plane(source: Path, target: Path, *, progress: Progress | None) -> Derived:
    """Read the WAV ``source`` once and write its LSB plane to ``target`` (whole or not at
    all, owner-only, not made durable: :class:`Derived`), hashing it as it is written."""
    report = notify(progress, Stage.PLANE)
    digest = hashlib.sha256()
    try:
        with (
            source.open("rb") as src,
            atomic_output(target, mode=SEALED_FILE_MODE, durable=False) as dst,
        ):
            info, _ = wav.read_header(src)
            done = 0
            for piece in plane.iter_plane(src, info):
                dst.write(piece)
                digest.update(piece)
                done += len(piece)
                report(done, plane.plane_bytes(info.samples))
    except OSError as e:
        raise SubtoneError(
            f"Cannot read {source.name}: {e.strerror}.", code="unreadable_file"
        ) from e
    return Derived(target, done, digest.hexdigest())


class _Stopped(Exception):
    """Raised through a stopped :func:`read_ahead`'s progress, to end its writer early."""


@contextlib.contextmanager
def read_ahead(
    source: Path,
    target: Path | None,
    *,
    mode: TaskMode,
    cover: bool,
    progress: Progress | None,
) -> Iterator[_ReadAhead]:
    """While the block runs, write what the job will read of ``source`` (its LSB plane; in
    robust ``mode`` its working mix) to ``target`` on a thread of its own, as
    :func:`upload_inputs` would before sending it; leaving the block waits for the thread.

    The block is what must happen before anything is sent (the passphrase's key derivation,
    a core's worth of scrypt, and sealing the secret): reading the cover no longer waits for
    it. ``target`` is the file :func:`upload_inputs` is then given (it finds it written and
    sends it); ``None``, or a file already there (an interrupted run's), and nothing is
    done. A block that fails stops the thread and removes what it wrote. A failure of the
    thread itself is not raised here: the file is then not there, and :func:`upload_inputs`
    reads ``source`` again and reports the error in its place. What was written
    (:class:`Derived`, for :func:`upload_inputs`) is on the yielded object once the block
    has ended.
    """
    ahead = _ReadAhead()
    if target is None or target.is_file():
        yield ahead
        return
    stop = threading.Event()

    def forward(event: ProgressEvent) -> None:
        if stop.is_set():
            raise _Stopped()
        if progress is not None:
            progress(event)

    def write() -> None:
        try:
            if mode is TaskMode.ROBUST:
                ahead.derived = write_mix(source, target, cover=cover, progress=forward)
            else:
                ahead.derived = write_lsb_plane(source, target, progress=forward)
        except _Stopped:
            pass
        except Exception as e:  # upload_inputs meets it again, and says it
            log.debug("reading %s ahead failed: %s", source.name, e)

    thread = threading.Thread(target=write, name="subtone-read-ahead", daemon=True)
    thread.start()
    try:
        yield ahead
    except BaseException:
        stop.set()
        thread.join()
        target.unlink(missing_ok=True)
        raise
    thread.join()


def start_stego(cover: Path, target: Path, *, sync_later: bool = False) -> patch.StegoDraft:
    """Start copying ``cover`` next to ``target`` (see :class:`~subtone.stego.patch.StegoDraft`):
    called as soon as the inputs are sent, so that the copy runs while the server computes.
    ``sync_later``: started before they are sent (a one-shot encode), it is made durable
    once they are (``start_sync``), not while the plane is still to be sent."""
    try:
        return patch.StegoDraft(cover, target, mode=STEGO_FILE_MODE, sync_later=sync_later)
    except OSError as e:
        raise SubtoneError(
            f"Cannot read {cover.name}: {e.strerror}.", code="unreadable_file"
        ) from e


def finish_encode(
    client: ApiClient,
    job: Job,
    cover: Path,
    target: Path,
    *,
    k_pos: bytes,
    progress: Progress | None,
    stop: threading.Event,
    draft: patch.StegoDraft | None = None,
    mode: TaskMode = TaskMode.LSB,
) -> int:
    """Write the stego file to ``target`` from a succeeded embed job; returns its size.

    The job's result is downloaded next to ``target`` and applied to a copy of ``cover``. In
    the LSB mode it is a patch, applied to ``draft`` (if :func:`start_stego` started it; else
    made now): the samples it names move by ±1 with the keyed sign, never clipping. In robust
    ``mode`` it is a residual, added to every channel in one streaming copy of the cover
    (``draft`` is not used). The stego file appears under ``target`` only when complete.
    """
    robust_mode = mode is TaskMode.ROBUST
    suffix = RESIDUAL_SUFFIX if robust_mode else PATCH_SUFFIX
    result_file = target.with_name(f".{target.name}{suffix}")
    if not robust_mode:
        draft = draft or start_stego(cover, target)
    try:
        download_result(client, job, result_file, SEALED_FILE_MODE, progress=progress, stop=stop)
        report = notify(progress, Stage.APPLY)
        report(0, 1)
        with result_file.open("rb") as f:
            if robust_mode:
                residual = wire.read_residual(f, result_file.stat().st_size)
                robust.apply_residual_file(cover, residual, target, mode=STEGO_FILE_MODE)
            elif draft is not None:
                draft.apply(f, k_pos)
        report(1, 1)
    finally:
        if draft is not None:
            draft.discard()
        result_file.unlink(missing_ok=True)
    return target.stat().st_size


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
