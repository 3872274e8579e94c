"""What Encode and Decode share: following one task through the manager's signals."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QWidget

from desktop.app.dialogs import Dialogs
from desktop.app.formatting import format_size
from desktop.app.messages import describe_error
from desktop.app.state import ConnectionState
from desktop.app.store import Task, TaskStatus
from desktop.app.tasks import TaskManager
from desktop.app.widgets.message_label import MessageLabel
from desktop.app.widgets.progress_panel import PanelState, ProgressPanel

__all__ = ["TaskFollower", "copy_output", "done_summary", "save_to"]


def copy_output(source: Path, target: Path) -> None:
    """Copy a result where the person asked (the app keeps its own copy)."""
    if source.resolve() == target.resolve():
        return
    shutil.copyfile(source, target)


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
        self.task_id = task_id
        self.task = None
        self.error.clear()
        self.result.clear()
        self.panel.set_progress(0.0, "Preparing…")
        self.panel.set_state(PanelState.RUNNING)
        self._on_change(None)

    def pause(self) -> None:
        if self.task_id is not None:
            self.manager.pause(self.task_id)

    def resume(self) -> None:
        if self.task_id is not None:
            self.error.clear()
            self.manager.resume(self.task_id)
            self._show()

    def cancel(self) -> None:
        if self.task_id is not None:
            self.manager.cancel(self.task_id)

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
        self.error.setText(describe_error(code, message))
        task = self.manager.get(task_id)
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


def save_to(
    parent: QWidget, dialogs: Dialogs, task: Task, title: str, start: Path, filters: str
) -> str:
    """Ask where, copy the task's output there; returns a line to show."""
    source = task.output
    if source is None or not source.is_file():
        return "The result file is no longer there."
    target = dialogs.save_file(parent, title, start / source.name, filters)
    if target is None:
        return ""
    try:
        copy_output(source, target)
    except OSError as e:
        return f"Could not save to {target}: {e.strerror}."
    return f"Saved to {target}"
