"""Runs encodes and decodes in the background, queues them while offline, resumes them.

The :class:`TaskManager` is the only place the views go through to start, pause, resume or
cancel work. Preparing (sealing) and running (sending, following, downloading) are the client
core's :mod:`desktop.core.orchestration` (the same steps the CLI runs); this module only adds
threads and signals: the steps run on worker threads, the manager hears back through signals
and re-emits them per task id. Passphrases for decodes are held in memory only, until the task
is done.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Final

from PySide6.QtCore import QObject, QTimer, Signal

from desktop.app.progress import ProgressText, Throttle
from desktop.app.state import ConnectionState
from desktop.app.workers import Report, WorkerPool
from desktop.core.envelope import POSITION_KDF, KdfParams, PreparedSecret
from desktop.core.orchestration import (
    ProgressEvent,
    Runtime,
    StopReason,
    StopToken,
    Task,
    TaskMode,
    TaskStatus,
    TaskStore,
    discard_work,
    new_task_id,
    open_result,
    prepare_decode,
    prepare_encode,
    remove_task_files,
    run_task,
)
from subtone.errors import SubtoneError

__all__ = ["MAX_RUNNING_TASKS", "TaskManager"]

log = logging.getLogger(__name__)

MAX_RUNNING_TASKS: Final = 2
"""Tasks sent at once; the others wait their turn in the queue."""
DEFAULT_REQUEUE_DELAY_MS: Final = 2_000
MAX_REQUEUE_DELAY_MS: Final = 60_000
"""A task that lost the network is tried again after a delay that doubles up to this."""


def _progress_reporter(report: Report) -> Callable[[ProgressEvent], None]:
    text = ProgressText()
    throttle = Throttle()

    def on_event(event: ProgressEvent) -> None:
        fraction, line = text.describe(event)
        if throttle.ready(final=event.done >= event.total):
            report(fraction, line)

    return on_event


class TaskManager(QObject):
    task_progress = Signal(str, float, str)
    """``(task id, fraction, text)``."""
    task_changed = Signal(object)
    """A :class:`Task` as now stored (created, status changed, finished)."""
    task_failed = Signal(str, str, str)
    """``(task id, code, message)``: an error to show, with the server's code and message."""

    def __init__(
        self,
        store: TaskStore,
        workers: WorkerPool,
        connection: ConnectionState,
        runtime: Runtime,
        *,
        server: str,
        position_kdf: KdfParams = POSITION_KDF,
        requeue_delay_ms: int = DEFAULT_REQUEUE_DELAY_MS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.store = store
        self.workers = workers
        self.connection = connection
        self.runtime = runtime
        self.server = server
        self.position_kdf = position_kdf
        self._running: dict[str, StopToken] = {}
        self._preparing: set[str] = set()
        self._cancel_when_prepared: set[str] = set()
        """Tasks cancelled while being prepared: cancelled as soon as they exist."""
        self._passphrases: dict[str, str] = {}
        self._closing = False
        self._requeue_delay = requeue_delay_ms
        self._requeues: dict[str, int] = {}
        """Task id → network failures in a row (for the delay before the next try)."""
        self.on_unreachable: Callable[[], None] | None = None
        """Called when a run finds the server gone (the window re-checks the connection)."""

    # Queries ---------------------------------------------------------------------------

    def is_running(self, task_id: str) -> bool:
        return task_id in self._running

    def is_stopping(self, task_id: str) -> bool:
        """Running, and asked to stop (pause, cancel, shutdown): it stops at its next check."""
        token = self._running.get(task_id)
        return token is not None and token.stopped

    def is_preparing(self, task_id: str) -> bool:
        """Being checked and sealed here: not a stored task yet."""
        return task_id in self._preparing

    @property
    def busy(self) -> bool:
        return bool(self._running or self._preparing)

    def get(self, task_id: str) -> Task | None:
        return self.store.get(task_id)

    def waiting(self) -> list[Task]:
        """Tasks of the current server that will be sent by themselves (queued or
        interrupted), oldest first. Tasks made for another server wait for that server."""
        return [
            t
            for t in self.store.unfinished()
            if t.status.resumes_by_itself and t.id not in self._running and t.server == self.server
        ]

    def for_other_server(self, task: Task) -> bool:
        """An unfinished task made for another server than the one set now (and already
        there: one that has not reached any server follows the settings)."""
        return not task.status.finished and task.server != self.server

    def follow_server(self) -> list[Task]:
        """Queued work that has not reached its server yet (nothing uploaded, no job) goes to
        the server set now: a fixed URL does not strand it. Running tasks are moved when they
        stop, if they still have not reached their server."""
        moved = self.store.follow_server(self.server, exclude=set(self._running))
        for task in moved:
            log.info("task %s now goes to %s", task.id, self.server)
            self.task_changed.emit(task)
        return moved

    # New work --------------------------------------------------------------------------

    def encode(
        self,
        cover: Path,
        secret: Path,
        passphrase: str,
        *,
        prepared: PreparedSecret | None = None,
        secret_is_recording: bool = False,
        mode: TaskMode = TaskMode.LSB,
    ) -> str:
        """Seal the secret (in the background) and queue the encode (hidden in ``mode``);
        returns its task id."""
        task_id = new_task_id()
        work_dir, store, server = self.runtime.work_dir, self.store, self.server

        def job(report: Report) -> Task:
            return prepare_encode(
                store,
                work_dir,
                server=server,
                cover=cover,
                secret=secret,
                passphrase=passphrase,
                task_id=task_id,
                prepared=prepared,
                secret_is_recording=secret_is_recording,
                position_kdf=self.position_kdf,
                progress=_progress_reporter(report),
                mode=mode,
            )

        self._prepare(task_id, job)
        return task_id

    def decode(self, stego: Path, passphrase: str) -> str:
        """Queue the extraction of ``stego``'s secret; returns its task id."""
        task_id = new_task_id()
        store, server = self.store, self.server
        self._passphrases[task_id] = passphrase

        def job(report: Report) -> Task:
            return prepare_decode(
                store,
                server=server,
                stego=stego,
                passphrase=passphrase,
                task_id=task_id,
                position_kdf=self.position_kdf,
                progress=_progress_reporter(report),
            )

        self._prepare(task_id, job)
        return task_id

    def _prepare(self, task_id: str, job: Callable[[Report], Task]) -> None:
        self._preparing.add(task_id)

        def prepared(task: Task) -> None:
            self._preparing.discard(task_id)
            if task_id in self._cancel_when_prepared:
                self._cancel_when_prepared.discard(task_id)
                self.cancel(task_id)
                return
            if task.server != self.server:  # the settings changed while it was sealed
                self.follow_server()
                task = self.store.get(task_id) or task
            if not self.start(task_id):
                self.task_changed.emit(task)

        def failed(code: str, message: str) -> None:
            self._preparing.discard(task_id)
            self._passphrases.pop(task_id, None)
            if task_id in self._cancel_when_prepared:
                self._cancel_when_prepared.discard(task_id)
                code, message = "cancelled", "Cancelled."
            self.task_failed.emit(task_id, code, message)

        self.workers.start(
            job,
            name=f"prepare {task_id}",
            on_progress=lambda f, t: self.task_progress.emit(task_id, f, t),
            on_finished=prepared,
            on_failed=failed,
        )

    # Running ---------------------------------------------------------------------------

    def start(self, task_id: str) -> bool:
        """Send the task now if the server is there and a slot is free; whether it started."""
        task = self.store.get(task_id)
        if self._closing or task is None or task.status.finished or task_id in self._running:
            return False
        if task.server != self.server:
            return False
        if not self.connection.online or len(self._running) >= MAX_RUNNING_TASKS:
            return False
        token = StopToken()
        self._running[task_id] = token
        runtime = self.runtime
        passphrase = self._passphrases.get(task_id)

        def job(report: Report) -> Task:
            return run_task(
                runtime,
                task_id,
                passphrase=passphrase,
                progress=_progress_reporter(report),
                stop=token,
            )

        self.workers.start(
            job,
            name=f"run {task_id}",
            on_progress=lambda f, t: self.task_progress.emit(task_id, f, t),
            on_finished=lambda task: self._ran(task_id, task),
            on_failed=lambda code, message: self._run_failed(task_id, code, message),
        )
        self.task_changed.emit(task)  # now running
        return True

    def _ran(self, task_id: str, task: Task) -> None:
        self._running.pop(task_id, None)
        self._requeues.pop(task_id, None)
        if task.status.finished:
            self._passphrases.pop(task_id, None)
        self.task_changed.emit(task)
        if task.server != self.server:  # stopped for a change of server
            self.follow_server()
        self.resume_pending()

    def _run_failed(self, task_id: str, code: str, message: str) -> None:
        self._running.pop(task_id, None)
        task = self.store.get(task_id)
        if task is not None:
            if task.status.finished:
                self._passphrases.pop(task_id, None)
            self.task_changed.emit(task)
            if task.server != self.server:
                self.follow_server()
        self.task_failed.emit(task_id, code, message)
        if code != "server_unreachable":
            self.resume_pending()
            return
        if self.on_unreachable is not None:
            self.on_unreachable()
        tries = self._requeues.get(task_id, 0)
        self._requeues[task_id] = tries + 1
        delay = min(MAX_REQUEUE_DELAY_MS, self._requeue_delay * 2**tries)
        QTimer.singleShot(delay, self, self.resume_pending)

    def resume_pending(self) -> None:
        """Start queued and interrupted tasks of this server while slots are free."""
        if self._closing or not self.connection.online:
            return
        for task in self.waiting():
            if len(self._running) >= MAX_RUNNING_TASKS:
                return
            self.start(task.id)

    def pause(self, task_id: str) -> None:
        token = self._running.get(task_id)
        if token is not None:
            token.stop(StopReason.PAUSE)
            return
        task = self.store.get(task_id)
        if task is not None and task.status.resumes_by_itself:
            self.task_changed.emit(self.store.update(task_id, status=TaskStatus.PAUSED))

    def resume(self, task_id: str) -> None:
        task = self.store.get(task_id)
        if task is None or task.status.finished or task_id in self._running:
            return
        if task.status is TaskStatus.PAUSED:
            task = self.store.update(task_id, status=TaskStatus.QUEUED)
            self.task_changed.emit(task)
        self.start(task_id)

    def cancel(self, task_id: str) -> None:
        if task_id in self._preparing:  # sealing cannot be interrupted: cancel what it makes
            self._cancel_when_prepared.add(task_id)
            return
        token = self._running.get(task_id)
        if token is not None:
            token.stop(StopReason.CANCEL)
            return
        task = self.store.get(task_id)
        if task is None or task.status.finished:
            return
        self._passphrases.pop(task_id, None)
        cancelled = self.store.update(task_id, status=TaskStatus.CANCELLED)
        discard_work(cancelled, self.runtime.work_dir)
        self.task_changed.emit(cancelled)
        if task.job_id and task.server == self.server:  # another server's job is not ours to ask
            client, job_id = self.runtime.client, task.job_id

            def cancel_job(report: Report) -> None:
                with contextlib.suppress(SubtoneError):
                    client.cancel_job(job_id)

            self.workers.start(cancel_job, name=f"cancel {job_id}")

    def open_with_passphrase(self, task_id: str, passphrase: str) -> None:
        """Open a decode's downloaded result that waits for its passphrase."""
        runtime = self.runtime

        def job(report: Report) -> Task:
            return open_result(runtime, task_id, passphrase)

        def failed(code: str, message: str) -> None:
            task = self.store.get(task_id)
            if task is not None:
                self.task_changed.emit(task)
            self.task_failed.emit(task_id, code, message)

        self.workers.start(
            job,
            name=f"open {task_id}",
            on_finished=lambda task: self.task_changed.emit(task),
            on_failed=failed,
        )

    def remove(self, task_id: str) -> None:
        """Forget a finished task and delete the app's own copy of its output (copies saved
        elsewhere, and its inputs, stay where they are)."""
        task = self.store.get(task_id)
        if task is None or task_id in self._running:
            return
        if not task.status.finished:
            raise SubtoneError("Cancel the task before removing it.", code="task_active")
        self.store.remove(task_id)
        remove_task_files(self.runtime.work_dir, task)
        self.task_changed.emit(task)

    # Lifecycle -------------------------------------------------------------------------

    def stop_all(self, reason: StopReason = StopReason.SHUTDOWN) -> None:
        for token in list(self._running.values()):
            token.stop(reason)

    def replace_runtime(self, runtime: Runtime, server: str) -> Runtime:
        """Use another server or token from now on; returns the old runtime (to close).
        Queued work that has not reached a server yet follows (see :meth:`follow_server`)."""
        old, self.runtime, self.server = self.runtime, runtime, server
        self.follow_server()
        return old

    def shutdown(self, wait_ms: int) -> bool:
        """Stop every run where it stands (they continue at the next start) and wait."""
        self._closing = True
        self.stop_all(StopReason.SHUTDOWN)
        done = self.workers.wait(wait_ms)
        if not done:
            log.warning("background work still running after %d ms", wait_ms)
        return done

    def forget_passphrases(self) -> None:
        self._passphrases.clear()
