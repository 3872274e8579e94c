"""Encode and decode as resumable tasks: each step a checkpoint in the task store (Qt-free).

What both the desktop app and the CLI run. A task is made in two parts:

1. :func:`~desktop.core.orchestration.prepare.prepare_encode` /
   :func:`~desktop.core.orchestration.prepare.prepare_decode` (local, need the passphrase):
   check the cover's capacity, seal the secret into a file (encode) or derive ``k_pos``
   (decode), and add a ``queued`` task. The passphrase is never written down.
2. :func:`run_task` (needs the server, not the passphrase until a decode's last step): carries
   the task on from its last checkpoint: upload the inputs
   (:func:`~desktop.core.orchestration.transfer.upload_inputs`), create the job once
   (idempotency key) and follow it, then finish the output
   (:func:`~desktop.core.orchestration.transfer.finish_encode`, or fetch the sealed result
   and :func:`open_result`).

A :class:`~desktop.core.stop.StopToken` pauses, cancels or (on shutdown) just stops a run;
every step already done stays done, and the next :func:`run_task` continues from there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from desktop.core.api import ApiClient
from desktop.core.api_errors import ServerUnreachable
from desktop.core.envelope import (
    open_sealed,
    safe_name,
)
from desktop.core.orchestration.progress import Progress
from desktop.core.orchestration.steps import (
    cancel_quietly,
    job_idempotency_key,
    job_request,
    run_job,
    succeeded,
)
from desktop.core.orchestration.store import (
    Task,
    TaskKind,
    TaskMode,
    TaskStatus,
    TaskStore,
)
from desktop.core.orchestration.transfer import (
    COVER_MEDIA_TYPE,
    MIX_SUFFIX,
    PLANE_SUFFIX,
    Derived,
    InputSlot,
    fetch_sealed_result,
    finish_encode,
    start_stego,
    upload_inputs,
)
from desktop.core.orchestration.workdir import (
    PRIVATE_FILE_MODE,
    SEALED_FOLDER,
    OutputPlan,
    WorkDirOutputs,
    discard_work,
    folder,
)
from desktop.core.stop import StopReason, StopToken
from desktop.core.uploader import UploadCancelled, Uploader, UploadResult
from subtone.errors import SubtoneError
from subtone.files import atomic_output
from subtone.protocol import Job, JobKind, JobState
from subtone.stego.patch import StegoDraft

__all__ = [
    "OnUploaded",
    "Runtime",
    "is_transient",
    "open_result",
    "run_task",
]

log = logging.getLogger(__name__)

OnUploaded = Callable[[InputSlot, UploadResult], None]
"""Hears each input as soon as it is uploaded (the CLI reports whether it was resumed)."""


class _Stopped(Exception):
    """A run noticed its stop token."""


@dataclass(frozen=True)
class Runtime:
    """What running tasks needs: the server, the uploader, the store and a folder to work in."""

    client: ApiClient
    uploader: Uploader
    store: TaskStore
    work_dir: Path
    outputs: OutputPlan | None = None
    """Where outputs go; ``None``: each task's own folder in ``work_dir``."""
    plane_file: Path | None = None
    """Where the LSB plane of the task's input goes; ``None``: beside its sealed payload in
    ``work_dir`` (the app's tasks, which live as long as the work folder)."""
    mix_file: Path | None = None
    """The same for a robust-mode task's working mix."""
    early_draft: StegoDraft | None = None
    """The LSB stego file's copy of the cover, started by the caller before the task was
    prepared (a one-shot encode knows its output from the start): the encode patches it
    instead of starting its copy once the inputs are sent."""
    derived: Derived | None = None
    """The task's plane (or mix) as the caller wrote it ahead in this process
    (:func:`~desktop.core.orchestration.transfer.read_ahead`): sent as it is, not checked as
    one an earlier run left would be."""

    @property
    def plan(self) -> OutputPlan:
        return self.outputs or WorkDirOutputs(self.work_dir)

    def plane_path(self, task: Task) -> Path:
        """Where what is derived from the task's input (plane or mix) is kept until sent."""
        robust_mode = task.mode is TaskMode.ROBUST
        chosen = self.mix_file if robust_mode else self.plane_file
        if chosen is not None:
            return chosen
        suffix = MIX_SUFFIX if robust_mode else PLANE_SUFFIX
        return folder(self.work_dir / SEALED_FOLDER) / f"{task.id}{suffix}"


# --- running (needs the server) -------------------------------------------------------------


def run_task(
    rt: Runtime,
    task_id: str,
    *,
    passphrase: str | None = None,
    progress: Progress | None = None,
    stop: StopToken | None = None,
    on_uploaded: OnUploaded | None = None,
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
            return _run_encode(rt, task, progress, stop, on_uploaded)
        return _run_decode(rt, task, passphrase, progress, stop, on_uploaded)
    except (_Stopped, UploadCancelled):
        return _stopped(rt, task_id, stop)
    except Exception as e:
        if stop.stopped:
            return _stopped(rt, task_id, stop)
        _record_failure(rt.store, task_id, e, rt.work_dir)
        if isinstance(e, SubtoneError) and is_transient(e) and not isinstance(e, ServerUnreachable):
            raise ServerUnreachable(e.message) from e
        raise


def is_transient(error: SubtoneError) -> bool:
    """A failure that waiting cures: the server or storage unreachable, or storage failing
    (5xx, 408, 429) on a part even after the uploader's own retries."""
    if isinstance(error, ServerUnreachable):
        return True
    return error.code == "part_rejected" and (error.status >= 500 or error.status in (408, 429))


def _record_failure(store: TaskStore, task_id: str, error: Exception, work_dir: Path) -> None:
    """Store what went wrong: a transient failure queues the task again, anything else fails
    it (a decode waiting for its passphrase keeps waiting)."""
    if not isinstance(error, SubtoneError):
        log.error("task %s failed", task_id, exc_info=error)
        failed = store.update(
            task_id,
            status=TaskStatus.FAILED,
            error_code="internal_error",
            error_message=f"{type(error).__name__}: {error}",
        )
        discard_work(failed, work_dir)
        return
    if is_transient(error):
        code = ServerUnreachable.code
        store.update(
            task_id, status=TaskStatus.QUEUED, error_code=code, error_message=error.message
        )
        return
    current = store.require(task_id)
    waiting = current.status is TaskStatus.NEEDS_PASSPHRASE
    failed = store.update(
        task_id,
        status=TaskStatus.NEEDS_PASSPHRASE if waiting else TaskStatus.FAILED,
        error_code=error.code,
        error_message=error.message,
    )
    discard_work(failed, work_dir)


def _stopped(rt: Runtime, task_id: str, stop: StopToken) -> Task:
    task = rt.store.require(task_id)
    if stop.reason is StopReason.CANCEL:
        if task.job_id and not (task.job_state and JobState(task.job_state).finished):
            cancel_quietly(rt.client, task.job_id)
        cancelled = rt.store.update(
            task_id, status=TaskStatus.CANCELLED, error_code=None, error_message=None
        )
        discard_work(cancelled, rt.work_dir)
        return cancelled
    if stop.reason is StopReason.PAUSE:
        return rt.store.update(task_id, status=TaskStatus.PAUSED)
    return task  # shutdown: left as it was, continued at the next start


class _TaskCheckpoint:
    """The uploaded inputs of one task, as its row in the store holds them."""

    def __init__(self, store: TaskStore, task_id: str, on_uploaded: OnUploaded | None) -> None:
        self.store, self.task_id, self.on_uploaded = store, task_id, on_uploaded

    def uploaded(self, slot: InputSlot) -> str | None:
        task = self.store.require(self.task_id)
        return task.input_object_id if slot is InputSlot.SOURCE else task.payload_object_id

    def record(self, slot: InputSlot, result: UploadResult) -> None:
        self.store.update(
            self.task_id,
            **{
                f"{slot.value}_object_id": result.object.id,
                f"{slot.value}_upload_id": result.upload_id,
            },
        )
        if self.on_uploaded is not None:
            self.on_uploaded(slot, result)


def _send_and_run(
    rt: Runtime,
    task: Task,
    kind: JobKind,
    progress: Progress | None,
    stop: StopToken,
    on_uploaded: OnUploaded | None,
    on_sent: Callable[[], None] | None = None,
) -> Job:
    """Upload the task's inputs (what is not yet there), then (after ``on_sent``) create and
    follow its job."""
    if task.job_id is None:
        rt.store.update(task.id, status=TaskStatus.UPLOADING, error_code=None, error_message=None)
    inputs = upload_inputs(
        rt.uploader,
        task.kind,
        Path(task.input_path),
        Path(task.sealed_path) if task.kind is TaskKind.ENCODE and task.sealed_path else None,
        lsb_plane=rt.plane_path(task),
        checkpoint=_TaskCheckpoint(rt.store, task.id, on_uploaded),
        progress=progress,
        cancel=stop.event,
        mode=task.mode,
        derived=rt.derived,
    )

    def update(job: Job) -> None:
        rt.store.update(
            task.id,
            status=TaskStatus.PROCESSING,
            job_id=job.id,
            job_state=job.state.value,
            progress=job.progress,
            # The server's (it may have made its own); else the trace this client sent.
            trace_id=job.trace_id or rt.client.trace_id,
        )

    if on_sent is not None:
        on_sent()
    key = job_idempotency_key(kind, inputs, bytes.fromhex(task.k_pos), nonce=task.job_nonce)
    job = run_job(
        rt.client,
        job_request(kind, inputs, task.k_pos),
        idempotency_key=key,
        known_job_id=task.job_id,
        on_update=update,
        progress=progress,
        stop=stop.event,
    )
    if job is None:
        raise _Stopped()
    return succeeded(job)


def _run_encode(
    rt: Runtime,
    task: Task,
    progress: Progress | None,
    stop: StopToken,
    on_uploaded: OnUploaded | None,
) -> Task:
    target = rt.plan.stego(task)
    robust_mode = task.mode is TaskMode.ROBUST
    kind = JobKind.ROBUST_EMBED if robust_mode else JobKind.EMBED
    drafts: list[StegoDraft] = []  # the cover's copy, made while the server computes

    def start_copy() -> None:
        early = rt.early_draft
        if early is not None and early.made_for(Path(task.input_path), target):
            early.start_sync()
            drafts.append(early)
        else:
            drafts.append(start_stego(Path(task.input_path), target))

    try:
        # Robust mode writes the stego file in one pass from the residual: no copy ahead.
        on_sent = None if robust_mode else start_copy
        job = _send_and_run(rt, task, kind, progress, stop, on_uploaded, on_sent)
        rt.store.update(task.id, status=TaskStatus.DOWNLOADING)
        written = finish_encode(
            rt.client,
            job,
            Path(task.input_path),
            target,
            k_pos=bytes.fromhex(task.k_pos),
            progress=progress,
            stop=stop.event,
            draft=drafts[0] if drafts else None,
            mode=task.mode,
        )
    finally:
        for draft in drafts:
            draft.discard()
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
    on_uploaded: OnUploaded | None,
) -> Task:
    if task.sealed_path is None or not Path(task.sealed_path).is_file():
        kind = JobKind.ROBUST_EXTRACT if task.mode is TaskMode.ROBUST else JobKind.EXTRACT
        job = _send_and_run(rt, task, kind, progress, stop, on_uploaded)
        assert job.result is not None
        target = folder(rt.work_dir / SEALED_FOLDER) / f"{task.id}.result"
        rt.store.update(task.id, status=TaskStatus.DOWNLOADING)
        fetch_sealed_result(
            rt.client,
            job,
            target,
            capacity_bytes=task.capacity_bytes,
            progress=progress,
            stop=stop.event,
        )
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
    target = rt.plan.secret(task, name)
    with atomic_output(target, mode=PRIVATE_FILE_MODE) as f:
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
