"""Encode and decode as resumable tasks: each step is a checkpoint in the local store (Qt-free).

The core's :func:`desktop.core.workflow.encode` runs in one go and needs the passphrase
throughout. The app must also queue an encode while offline, survive a restart mid-upload
and follow a job it created before a restart, without ever writing the passphrase down. So
an encode is split in two, from the same core pieces:

1. :func:`prepare_encode` (local, needs the passphrase): checks the cover's capacity,
   compresses and seals the secret, writes the *sealed* payload to a file and adds a
   ``queued`` task with ``k_pos``.
2. :func:`run_task` (needs the server, not the passphrase): uploads the cover and the sealed
   payload through the core's resumable uploader (which sends only the parts storage lacks),
   creates the job with an idempotency key (a retry after a crash returns the same job),
   follows it (SSE, polling as fallback) and downloads the result.

A decode is prepared the same way (``k_pos`` only); the passphrase is needed again at the end,
to open the sealed result: if the app restarted meanwhile, the task waits in
``needs_passphrase``. A :class:`StopToken` pauses, cancels or (on shutdown) just stops a run;
every step already done stays done.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Final

from desktop.app.store import Task, TaskKind, TaskStatus, TaskStore, new_task_id
from desktop.core.api import ApiClient, ApiError, ServerUnreachable
from desktop.core.envelope import (
    DEFAULT_KDF,
    POSITION_KDF,
    KdfParams,
    PreparedSecret,
    derive_position_key,
    open_sealed,
    prepare_audio_secret,
    safe_name,
    seal,
    sealed_length,
)
from desktop.core.stop import StopSignal
from desktop.core.uploader import UploadCancelled, Uploader
from desktop.core.workflow import (
    COVER_MEDIA_TYPE,
    PAYLOAD_MEDIA_TYPE,
    PAYLOAD_NAME,
    Progress,
    ProgressEvent,
    Stage,
    job_idempotency_key,
    succeeded,
)
from subtone.errors import SubtoneError
from subtone.files import atomic_output
from subtone.protocol import Job, JobCreate, JobKind, JobParams, JobState
from subtone.stego.codec import read_capacity
from subtone.stego.layout import choose_k

__all__ = [
    "Runtime",
    "StopReason",
    "StopToken",
    "discard_work",
    "is_transient",
    "open_result",
    "prepare_decode",
    "prepare_encode",
    "remove_task_files",
    "run_task",
    "sweep_work_dir",
]

log = logging.getLogger(__name__)

SEALED_FOLDER: Final = "sealed"
RESULTS_FOLDER: Final = "results"
RECOVERED_FOLDER: Final = "recovered"
DOWNLOAD_ATTEMPTS: Final = 2
_DIR_MODE: Final = 0o700
_PRIVATE_FILE: Final = 0o600
_RESULT_FILE: Final = 0o644


class StopReason(StrEnum):
    PAUSE = "pause"
    """The user paused: the task waits until resumed."""
    CANCEL = "cancel"
    """The user gave up: the server job is cancelled too."""
    SHUTDOWN = "shutdown"
    """The app is closing: the task continues by itself at the next start."""


class StopToken:
    """Asks a run to stop at its next check; the core's cancel ``Event`` is :attr:`event`."""

    def __init__(self) -> None:
        self.event = StopSignal()
        """Also breaks a blocking wait on the server's event stream at once when set."""
        self.reason: StopReason | None = None

    def stop(self, reason: StopReason) -> None:
        if self.reason is None or reason is StopReason.CANCEL:
            self.reason = reason
        self.event.set()

    @property
    def stopped(self) -> bool:
        return self.event.is_set()


class _Stopped(Exception):
    """A run noticed its stop token."""


@dataclass(frozen=True)
class Runtime:
    """What running tasks needs: the server, the uploader, the store and a folder to work in."""

    client: ApiClient
    uploader: Uploader
    store: TaskStore
    work_dir: Path


# --- files --------------------------------------------------------------------------------


def _folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=_DIR_MODE)
    return path


def discard_work(task: Task) -> None:
    """A task that failed or was cancelled cannot go on: drop what only its run needed (the
    sealed payload of an encode, the downloaded sealed result of a decode). Its inputs (the
    cover, the secret, a recording not sent) stay."""
    if task.status in (TaskStatus.FAILED, TaskStatus.CANCELLED) and task.sealed_path:
        Path(task.sealed_path).unlink(missing_ok=True)


def _task_folders(work_dir: Path, task_id: str) -> list[Path]:
    return [work_dir / RESULTS_FOLDER / task_id, work_dir / RECOVERED_FOLDER / task_id]


def remove_task_files(work_dir: Path, task: Task) -> None:
    """Delete the app's own files of a task being forgotten: its output in the work folder
    and its sealed file. Copies saved elsewhere, and the task's inputs, are not touched."""
    if task.sealed_path and Path(task.sealed_path).resolve().is_relative_to(work_dir.resolve()):
        Path(task.sealed_path).unlink(missing_ok=True)
    for folder in _task_folders(work_dir, task.id):
        shutil.rmtree(folder, ignore_errors=True)


def sweep_work_dir(store: TaskStore, work_dir: Path) -> list[Path]:
    """At start (nothing running): delete what no task needs any more; returns what went.

    That is: half-written files a crash left (``.*.part``), sealed files of tasks that are
    gone or finished, and output folders of tasks no longer in the store.
    """
    removed: list[Path] = []
    sealed = work_dir / SEALED_FOLDER
    for folder in (sealed, work_dir / RESULTS_FOLDER, work_dir / RECOVERED_FOLDER):
        if not folder.is_dir():
            continue
        for leftover in folder.rglob(".*.part"):
            leftover.unlink(missing_ok=True)
            removed.append(leftover)
    if sealed.is_dir():
        for path in sealed.iterdir():
            task = store.get(path.stem) if path.suffix in (".sealed", ".result") else None
            if path.is_file() and (task is None or task.status.finished):
                path.unlink(missing_ok=True)
                removed.append(path)
    for kind in (RESULTS_FOLDER, RECOVERED_FOLDER):
        folder = work_dir / kind
        if not folder.is_dir():
            continue
        for path in folder.iterdir():
            if path.is_dir() and store.get(path.name) is None:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    return removed


def _notify(progress: Progress | None, stage: Stage) -> Callable[[int, int], None]:
    def report(done: int, total: int) -> None:
        if progress is not None:
            progress(ProgressEvent(stage, done, total))

    return report


def _input_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError as e:
        raise SubtoneError(f"Cannot read {path.name}: {e.strerror}.", code="unreadable_file") from e


# --- preparing (local) ----------------------------------------------------------------------


def prepare_encode(
    store: TaskStore,
    work_dir: Path,
    *,
    server: str,
    cover: Path,
    secret: Path,
    passphrase: str,
    task_id: str | None = None,
    prepared: PreparedSecret | None = None,
    secret_is_recording: bool = False,
    kdf: KdfParams = DEFAULT_KDF,
    position_kdf: KdfParams = POSITION_KDF,
    progress: Progress | None = None,
) -> Task:
    """Check, compress and seal the secret here; queue the encode. Nothing is sent yet.

    Refuses a secret that cannot fit (``capacity_exceeded``) before anything else happens.
    ``prepared`` is the secret as :func:`~desktop.core.envelope.prepare_audio_secret` gave it
    (the Encode screen measures it that way), so it is not compressed twice.
    """
    report = _notify(progress, Stage.PREPARE)
    report(0, 1)
    task_id = task_id or new_task_id()
    info, capacity = read_capacity(cover)
    secret_data = prepared or prepare_audio_secret(secret)
    payload_bytes = sealed_length(
        len(secret_data.data), name=secret_data.name, media_type=secret_data.media_type
    )
    choose_k(info.samples, payload_bytes)  # capacity_exceeded, before any work is queued
    sealed = seal(
        secret_data.data,
        name=secret_data.name,
        media_type=secret_data.media_type,
        passphrase=passphrase,
        kdf=kdf,
        position_kdf=position_kdf,
    )
    sealed_path = _folder(work_dir / SEALED_FOLDER) / f"{task_id}.sealed"
    with atomic_output(sealed_path, mode=_PRIVATE_FILE) as f:
        f.write(sealed.payload)
    task = store.add(
        Task(
            id=task_id,
            kind=TaskKind.ENCODE,
            status=TaskStatus.QUEUED,
            server=server,
            input_path=str(cover.resolve()),
            input_bytes=_input_size(cover),
            k_pos=sealed.k_pos.hex(),
            job_nonce=uuid.uuid4().hex,
            secret_path=str(secret.resolve()),
            secret_name=secret_data.name,
            secret_media_type=secret_data.media_type,
            secret_bytes=len(secret_data.data),
            secret_is_recording=secret_is_recording,
            sealed_path=str(sealed_path),
            payload_bytes=len(sealed.payload),
            capacity_bytes=capacity.max_payload_bytes,
        )
    )
    report(1, 1)
    return task


def prepare_decode(
    store: TaskStore,
    *,
    server: str,
    stego: Path,
    passphrase: str,
    task_id: str | None = None,
    position_kdf: KdfParams = POSITION_KDF,
    progress: Progress | None = None,
) -> Task:
    """Derive ``k_pos`` and queue the extraction (a file that is not a WAV is refused here)."""
    report = _notify(progress, Stage.PREPARE)
    report(0, 1)
    _, capacity = read_capacity(stego)
    k_pos = derive_position_key(passphrase, position_kdf=position_kdf)
    task = store.add(
        Task(
            id=task_id or new_task_id(),
            kind=TaskKind.DECODE,
            status=TaskStatus.QUEUED,
            server=server,
            input_path=str(stego.resolve()),
            input_bytes=_input_size(stego),
            k_pos=k_pos.hex(),
            job_nonce=uuid.uuid4().hex,
            capacity_bytes=capacity.max_payload_bytes,
        )
    )
    report(1, 1)
    return task


# --- running (needs the server) -------------------------------------------------------------


def run_task(
    rt: Runtime,
    task_id: str,
    *,
    passphrase: str | None = None,
    progress: Progress | None = None,
    stop: StopToken | None = None,
) -> Task:
    """Carry a task on from its last checkpoint to the end (or until ``stop``).

    Returns the task as stored. A stopped run returns it ``paused``, ``cancelled`` or (on
    shutdown) as it was. Errors are stored on the task and raised: a network failure that
    outlasted the core's retries (see :func:`is_transient`) puts it back in the queue and is
    raised as :class:`ServerUnreachable`; anything else fails it.
    """
    stop = stop or StopToken()
    task = rt.store.require(task_id)
    if task.status.finished:
        return task
    try:
        if stop.stopped:
            raise _Stopped()
        if task.kind is TaskKind.ENCODE:
            return _run_encode(rt, task, progress, stop)
        return _run_decode(rt, task, passphrase, progress, stop)
    except (_Stopped, UploadCancelled):
        return _stopped(rt, task_id, stop)
    except SubtoneError as e:
        if stop.stopped:
            return _stopped(rt, task_id, stop)
        if is_transient(e):
            rt.store.update(
                task_id,
                status=TaskStatus.QUEUED,
                error_code=ServerUnreachable.code,
                error_message=e.message,
            )
            if isinstance(e, ServerUnreachable):
                raise
            raise ServerUnreachable(e.message) from e
        current = rt.store.require(task_id)
        status = current.status if current.status is TaskStatus.NEEDS_PASSPHRASE else None
        failed = rt.store.update(
            task_id,
            status=status or TaskStatus.FAILED,
            error_code=e.code,
            error_message=e.message,
        )
        discard_work(failed)
        raise
    except Exception as e:
        if stop.stopped:
            return _stopped(rt, task_id, stop)
        log.exception("task %s failed", task_id)
        discard_work(
            rt.store.update(
                task_id,
                status=TaskStatus.FAILED,
                error_code="internal_error",
                error_message=f"{type(e).__name__}: {e}",
            )
        )
        raise


def is_transient(error: SubtoneError) -> bool:
    """A failure that waiting cures: the server or storage unreachable, or storage failing
    (5xx, 408, 429) on a part even after the uploader's own retries."""
    if isinstance(error, ServerUnreachable):
        return True
    return error.code == "part_rejected" and (error.status >= 500 or error.status in (408, 429))


def _stopped(rt: Runtime, task_id: str, stop: StopToken) -> Task:
    task = rt.store.require(task_id)
    if stop.reason is StopReason.CANCEL:
        if task.job_id and not (task.job_state and JobState(task.job_state).finished):
            with contextlib.suppress(SubtoneError):
                rt.client.cancel_job(task.job_id)
        cancelled = rt.store.update(
            task_id, status=TaskStatus.CANCELLED, error_code=None, error_message=None
        )
        discard_work(cancelled)
        return cancelled
    if stop.reason is StopReason.PAUSE:
        return rt.store.update(task_id, status=TaskStatus.PAUSED)
    return task  # shutdown: left as it was, continued at the next start


def _upload_input(rt: Runtime, task: Task, progress: Progress | None, stop: StopToken) -> Task:
    if task.input_object_id is not None:
        return task
    task = rt.store.update(
        task.id, status=TaskStatus.UPLOADING, error_code=None, error_message=None
    )
    path = Path(task.input_path)
    result = rt.uploader.upload_file(
        path,
        name=path.name,
        media_type=COVER_MEDIA_TYPE,
        progress=_notify(progress, Stage.UPLOAD),
        hash_progress=_notify(progress, Stage.HASH),
        cancel=stop.event,
    )
    return rt.store.update(
        task.id, input_object_id=result.object.id, input_upload_id=result.upload_id
    )


def _run_encode(rt: Runtime, task: Task, progress: Progress | None, stop: StopToken) -> Task:
    task = _upload_input(rt, task, progress, stop)
    if task.payload_object_id is None:
        assert task.sealed_path is not None
        result = rt.uploader.upload_file(
            Path(task.sealed_path),
            name=PAYLOAD_NAME,
            media_type=PAYLOAD_MEDIA_TYPE,
            progress=_notify(progress, Stage.UPLOAD_PAYLOAD),
            cancel=stop.event,
        )
        task = rt.store.update(
            task.id, payload_object_id=result.object.id, payload_upload_id=result.upload_id
        )
    assert task.input_object_id is not None and task.payload_object_id is not None
    inputs = {"cover": task.input_object_id, "payload": task.payload_object_id}
    job = _run_job(rt, task, JobKind.EMBED, inputs, progress, stop)
    folder = _folder(rt.work_dir / RESULTS_FOLDER / task.id)
    target = folder / safe_name(Path(task.input_path).name)
    rt.store.update(task.id, status=TaskStatus.DOWNLOADING)
    written = _download(rt, job, target, _RESULT_FILE, progress, stop)
    done = rt.store.update(
        task.id,
        status=TaskStatus.SUCCEEDED,
        output_path=str(target),
        output_bytes=written,
        output_media_type=COVER_MEDIA_TYPE,
        progress=1.0,
        error_code=None,
        error_message=None,
    )
    _forget_local(done)
    return done


def _forget_local(task: Task) -> None:
    """Once sent and done: drop the sealed payload, and the recording it came from."""
    if task.sealed_path:
        Path(task.sealed_path).unlink(missing_ok=True)
    if task.secret_is_recording and task.secret_path:
        Path(task.secret_path).unlink(missing_ok=True)


def _run_decode(
    rt: Runtime,
    task: Task,
    passphrase: str | None,
    progress: Progress | None,
    stop: StopToken,
) -> Task:
    if task.sealed_path is None or not Path(task.sealed_path).is_file():
        task = _upload_input(rt, task, progress, stop)
        assert task.input_object_id is not None
        job = _run_job(rt, task, JobKind.EXTRACT, {"stego": task.input_object_id}, progress, stop)
        assert job.result is not None
        if task.capacity_bytes is not None and job.result.size > task.capacity_bytes:
            raise ApiError(
                "The server's result is larger than this file could hold.",
                code="bad_response",
                status=200,
            )
        target = _folder(rt.work_dir / SEALED_FOLDER) / f"{task.id}.result"
        rt.store.update(task.id, status=TaskStatus.DOWNLOADING)
        _download(rt, job, target, _PRIVATE_FILE, progress, stop)
        task = rt.store.update(task.id, sealed_path=str(target), payload_bytes=job.result.size)
    return open_result(rt, task.id, passphrase)


def open_result(rt: Runtime, task_id: str, passphrase: str | None) -> Task:
    """Decrypt a decode's downloaded result here and write the secret (owner-only).

    Without a passphrase the task waits in ``needs_passphrase``; a wrong one raises
    ``wrong_passphrase`` and leaves it waiting, so another can be tried.
    """
    task = rt.store.require(task_id)
    if task.sealed_path is None:
        raise SubtoneError("There is nothing downloaded to open yet.", code="not_ready")
    if passphrase is None:
        return rt.store.update(task.id, status=TaskStatus.NEEDS_PASSPHRASE)
    try:
        data = Path(task.sealed_path).read_bytes()
    except OSError as e:
        raise SubtoneError(
            f"The downloaded message is gone ({e.strerror}); decode the file again.",
            code="unreadable_file",
        ) from e
    try:
        secret = open_sealed(data, passphrase)
    except SubtoneError:
        rt.store.update(task.id, status=TaskStatus.NEEDS_PASSPHRASE)
        raise
    name = safe_name(secret.name)
    target = _folder(rt.work_dir / RECOVERED_FOLDER / task.id) / name
    with atomic_output(target, mode=_PRIVATE_FILE) as f:
        f.write(secret.data)
    done = rt.store.update(
        task.id,
        status=TaskStatus.SUCCEEDED,
        secret_name=name,
        secret_media_type=secret.media_type,
        secret_bytes=len(secret.data),
        output_path=str(target),
        output_bytes=len(secret.data),
        output_media_type=secret.media_type,
        progress=1.0,
        error_code=None,
        error_message=None,
    )
    Path(task.sealed_path).unlink(missing_ok=True)
    return done


def _run_job(
    rt: Runtime,
    task: Task,
    kind: JobKind,
    inputs: dict[str, str],
    progress: Progress | None,
    stop: StopToken,
) -> Job:
    """Create the task's job (once: the idempotency key makes a retry return it), follow it."""
    report = _notify(progress, Stage.JOB)
    job: Job | None = None
    if task.job_id is not None:
        try:
            job = rt.client.get_job(task.job_id)
        except ApiError as e:
            if e.status != 404:
                raise
            log.info("job %s is gone from the server; creating it again", task.job_id)
    if job is None:
        key = job_idempotency_key(kind, inputs, bytes.fromhex(task.k_pos), nonce=task.job_nonce)
        request = JobCreate(kind=kind, inputs=inputs, params=JobParams(k_pos=task.k_pos))
        job = rt.client.create_job(request, idempotency_key=key)
    rt.store.update(
        task.id,
        status=TaskStatus.PROCESSING,
        job_id=job.id,
        job_state=job.state.value,
        progress=job.progress,
    )

    def update(current: Job) -> None:
        rt.store.update(task.id, job_state=current.state.value, progress=current.progress)
        report(round(current.progress * 1000), 1000)

    update(job)
    if not job.state.finished:
        job = rt.client.follow_job(job.id, update, stop=stop.event)
        if not job.state.finished:
            raise _Stopped()
    return succeeded(job)


def _download(
    rt: Runtime,
    job: Job,
    target: Path,
    mode: int,
    progress: Progress | None,
    stop: StopToken,
) -> int:
    """Download a succeeded job's result to ``target``, asking for a fresh link if it expired."""
    result = job.result
    assert result is not None
    for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
        url = job.download_url
        if url is None:
            job = rt.client.get_job(job.id)
            url = job.download_url
        if url is None:
            raise ApiError("The server gave no download link.", code="bad_response", status=200)
        try:
            with atomic_output(target, mode=mode) as f:
                return rt.client.download(
                    url,
                    f,
                    expected_size=result.size,
                    expected_sha256=result.sha256,
                    progress=_notify(progress, Stage.DOWNLOAD),
                    stop=stop.event,
                )
        except ApiError as e:
            if e.code != "url_expired" or attempt == DOWNLOAD_ATTEMPTS:
                raise
            job = rt.client.get_job(job.id)
    raise AssertionError("unreachable")  # pragma: no cover
