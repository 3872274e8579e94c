"""What Encode and Decode share: following one task through the manager's signals."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QWidget

from desktop.app.dialogs import Dialogs
from desktop.app.formatting import format_size
from desktop.app.messages import describe_error
from desktop.app.saving import copy_with_progress, refused_target, suggested_path
from desktop.app.state import ConnectionState, ConnectionStatus
from desktop.app.tasks import TaskManager
from desktop.app.widgets.message_label import MessageLabel
from desktop.app.widgets.progress_panel import PanelState, ProgressPanel
from desktop.app.workers import Report, WorkerPool
from desktop.core.orchestration import Task, TaskStatus

__all__ = ["Saver", "TaskFollower", "TaskPage", "done_summary"]


class TaskFollower:
    """Shows one task's progress, state and errors in a panel and two labels."""

    def __init__(
        self,
        manager: TaskManager,
        connection: ConnectionState,
        panel: ProgressPanel,
        result: MessageLabel,
        error: MessageLabel,
        *,
        on_change: Callable[[Task | None], None],
        done_text: Callable[[Task], str],
    ) -> None:
        self.manager = manager
        self.connection = connection
        self.panel = panel
        self.result = result
        self.error = error
        self.task_id: str | None = None
        self.task: Task | None = None
        self._on_change = on_change
        self._done_text = done_text
        manager.task_progress.connect(self._progress)
        manager.task_changed.connect(self._changed)
        manager.task_failed.connect(self._failed)
        connection.changed.connect(lambda *_: self._show())
        panel.pause_clicked.connect(self.pause)
        panel.resume_clicked.connect(self.resume)
        panel.cancel_clicked.connect(self.cancel)

    def follow(self, task_id: str) -> None:
        """Follow a task being prepared (it is not stored yet)."""
        self.task_id = task_id
        self.task = None
        self.error.clear()
        self.result.clear()
        self.panel.restart("Preparing…")
        self.panel.set_state(PanelState.PREPARING)
        self._on_change(None)

    def attach(self, task: Task) -> None:
        """Follow a stored task (one the app continues after a restart)."""
        self.task_id = task.id
        self.task = task
        self.error.clear()
        self.result.clear()
        self.panel.restart("")
        self._show()
        if not task.status.finished:
            self.panel.restart("Continuing where it stopped…")
        self._on_change(task)

    def pause(self) -> None:
        if self.task_id is not None:
            self.manager.pause(self.task_id)

    def resume(self) -> None:
        if self.task_id is not None:
            self.error.clear()
            self.manager.resume(self.task_id)
            self._show()

    def cancel(self) -> None:
        if self.task_id is None:
            return
        preparing = self.manager.is_preparing(self.task_id)
        self.manager.cancel(self.task_id)
        if preparing:
            self.panel.set_state(PanelState.CANCELLING, "Cancelling…")

    def _progress(self, task_id: str, fraction: float, text: str) -> None:
        if task_id == self.task_id:
            self.panel.set_progress(fraction, text)

    def _changed(self, task: Task) -> None:
        if task.id != self.task_id:
            return
        self.task = task
        self._show()
        self._on_change(task)

    def _failed(self, task_id: str, code: str, message: str) -> None:
        if task_id != self.task_id:
            return
        task = self.manager.get(task_id)
        if task is None and code == "cancelled":  # cancelled while it was being prepared
            self.result.say("Cancelled.", "info")
        else:
            self.error.setText(describe_error(code, message))
        if task is None:  # failed while preparing: nothing was queued
            self.panel.set_state(PanelState.IDLE)
            self.task_id = None
        self._on_change(task)

    def _show(self) -> None:
        task = self.task
        if task is None:
            return
        running = self.manager.is_running(task.id)
        status = task.status
        if status is TaskStatus.SUCCEEDED:
            self.panel.set_state(PanelState.DONE, "Done.")
            self.result.say(self._done_text(task), "ok")
        elif status is TaskStatus.FAILED:
            self.panel.set_state(PanelState.IDLE)
            if task.error_code and not self.error.text():
                self.error.setText(describe_error(task.error_code, task.error_message or ""))
        elif status is TaskStatus.CANCELLED:
            self.panel.set_state(PanelState.IDLE)
            self.result.say("Cancelled.", "info")
        elif status is TaskStatus.PAUSED:
            self.panel.set_state(PanelState.PAUSED, "Paused: resume to continue where it stopped.")
        elif status is TaskStatus.NEEDS_PASSPHRASE:
            self.panel.set_state(PanelState.IDLE)
        elif running:
            self.panel.set_state(PanelState.RUNNING)
        elif self.connection.status is ConnectionStatus.INCOMPATIBLE:
            self.panel.set_state(
                PanelState.WAITING,
                "Waiting: this server speaks another protocol version (see above).",
            )
        elif self.connection.status is ConnectionStatus.UNKNOWN:
            self.panel.set_state(PanelState.WAITING, "Sent as soon as the server answers…")
        elif not self.connection.online:
            self.panel.set_state(
                PanelState.WAITING,
                "Queued: the server cannot be reached now. It will be sent when it is back; "
                "you can close the app meanwhile.",
            )
        else:
            self.panel.set_state(PanelState.WAITING, "Waiting for its turn…")


def done_summary(task: Task) -> str:
    name = task.output.name if task.output else "?"
    return f"Done: {name} ({format_size(task.output_bytes or 0)})."


class Saver:
    """Asks where to save a task's output, then copies it there on the worker pool,
    showing its progress and the outcome through ``say``."""

    def __init__(
        self,
        parent: QWidget,
        dialogs: Dialogs,
        workers: WorkerPool,
        say: Callable[[str], None],
    ) -> None:
        self.parent = parent
        self.dialogs = dialogs
        self.workers = workers
        self.say = say
        self.busy = False

    def save(self, task: Task, title: str, folder: Path, filters: str) -> None:
        source = task.output
        if self.busy:
            return
        if source is None or not source.is_file():
            self.say("The result file is no longer there.")
            return
        target = self.dialogs.save_file(self.parent, title, suggested_path(task, folder), filters)
        if target is None:
            return
        refused = refused_target(task, target)
        if refused is not None:
            self.say(refused)
            return
        if source.resolve() == target.resolve():
            self.say(f"Saved to {target}")
            return

        def job(report: Report) -> Path:
            copy_with_progress(
                source, target, lambda done, total: report(done / total if total else 1, "")
            )
            return target

        self.busy = True
        self.say(f"Saving to {target}…")
        self.workers.start(
            job,
            name=f"save {target.name}",
            on_progress=lambda fraction, _text: self.say(f"Saving to {target}… {fraction:.0%}"),
            on_finished=lambda _path: self._done(f"Saved to {target}"),
            on_failed=lambda code, message: self._done(message),
        )

    def _done(self, text: str) -> None:
        self.busy = False
        self.say(text)


class TaskPage(QWidget):
    """The frame the Encode and Decode pages share: their collaborators, and the progress
    panel, result, saved and error lines (made by the page's ``_build``) wired to the task the
    page follows (:class:`TaskFollower`) and to saving its output (:class:`Saver`)."""

    progress: ProgressPanel
    result: MessageLabel
    saved: MessageLabel
    error: MessageLabel
    save_title = "Save"
    """The save dialog's title and file filter."""
    save_filter = ""

    def __init__(
        self,
        name: str,
        manager: TaskManager,
        connection: ConnectionState,
        workers: WorkerPool,
        dialogs: Dialogs,
        download_dir: Callable[[], Path],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self.manager = manager
        self.connection = connection
        self.workers = workers
        self.dialogs = dialogs
        self.download_dir = download_dir
        self._build()
        self.saver = Saver(self, dialogs, workers, self.saved.setText)
        self.follower = TaskFollower(
            manager,
            connection,
            self.progress,
            self.result,
            self.error,
            on_change=self._task_changed,
            done_text=self._done_text,
        )

    def save(self) -> None:
        task = self.follower.task
        if task is None or task.status is not TaskStatus.SUCCEEDED:
            return
        self.saver.save(task, self.save_title, self.download_dir(), self.save_filter)

    def attach(self, task: Task) -> None:
        """Show a task the app continues after a restart (the one this screen last ran)."""
        self.follower.attach(task)

    @property
    def task_id(self) -> str | None:
        return self.follower.task_id

    def _build(self) -> None:
        """Make the page's widgets (``progress``, ``result``, ``saved`` and ``error`` among
        them) and lay them out."""
        raise NotImplementedError

    def _task_changed(self, task: Task | None) -> None:
        raise NotImplementedError

    def _done_text(self, task: Task) -> str:
        raise NotImplementedError
