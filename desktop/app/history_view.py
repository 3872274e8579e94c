"""History: every encode and decode with its state, sizes, dates and output file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Final

from PySide6.QtCore import QEvent, QPoint, Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QLabel, QListWidget, QListWidgetItem, QTableWidgetItem, QWidget

from desktop.app.dialogs import ANY_FILTER, Dialogs
from desktop.app.formatting import format_timestamp
from desktop.app.history_rows import (
    playable,
    session_text,
    size_text,
    state_text,
    step_name,
)
from desktop.app.history_table import (
    FILE_COLUMN,
    HISTORY_COLUMNS,
    OUTPUT_COLUMN,
    STATE_COLUMN,
    HistoryTable,
)
from desktop.app.messages import describe_error
from desktop.app.saving import suggested_path
from desktop.app.task_view import Saver
from desktop.app.tasks import TaskManager
from desktop.app.theme import Tone, tone_colour
from desktop.app.widgets import ActionBar, page, title, wrapped_label
from desktop.app.workers import Report, WorkerPool
from desktop.audio.backend import AudioError
from desktop.audio.player import Player, Sound
from desktop.core.orchestration import Task, TaskKind, TaskStatus
from desktop.core.sessions import SessionStore

__all__ = ["HistoryView"]

HISTORY_LIMIT: Final = 500
PLAY_POLL_MS: Final = 100
TRACE_TIP: Final = "The id the server's operator finds this job by in the server's logs."
TRACE_HINT: Final = "If something went wrong on the server, give this id to its operator."
ROW_HINT: Final = "Double-click a row, or right-click it, for what can be done with it."
REMOVE_TIP: Final = (
    "Forget this task and delete the app's own copy of its output. Files you saved "
    "elsewhere, and the task's inputs, stay."
)
DEFAULT_ACTIONS: Final = ("passphrase", "play", "save", "resume")
"""A double-click on a row: the first of these that can be done."""

_STATE_TONES: Final = {
    TaskStatus.SUCCEEDED: Tone.OK,
    TaskStatus.FAILED: Tone.ERROR,
    TaskStatus.CANCELLED: Tone.MUTED,
    TaskStatus.PAUSED: Tone.WARNING,
    TaskStatus.NEEDS_PASSPHRASE: Tone.WARNING,
}
"""The tone (a colour of the current theme) of the State column's text, by status."""


class HistoryView(QWidget):
    def __init__(
        self,
        manager: TaskManager,
        sessions: Callable[[], SessionStore],
        player: Player,
        workers: WorkerPool,
        dialogs: Dialogs,
        download_dir: Callable[[], Path],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("history")
        self.manager = manager
        self.sessions = sessions
        self.player = player
        self.workers = workers
        self._loading = False
        self._playing: Path | None = None
        """What this screen started playing (the player is shared with other screens)."""
        self.dialogs = dialogs
        self.download_dir = download_dir
        self.tasks: list[Task] = []

        self.table = self._build_table()
        self.empty = QLabel("Nothing yet: encodes and decodes appear here.", self)
        self.empty.setObjectName("history.empty")
        self.actions = self._build_actions()
        self.message = wrapped_label("history.message", self)
        self.trace = wrapped_label("history.trace_id", self)
        self.trace.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.trace.setVisible(False)
        self.saver = Saver(self, dialogs, workers, self.message.setText)
        self.play_timer = QTimer(self)
        self.play_timer.setInterval(PLAY_POLL_MS)
        self.play_timer.timeout.connect(self._poll_player)
        self.uploads = QListWidget(self)
        self.uploads.setObjectName("history.uploads")
        self.uploads.setMaximumHeight(90)
        page(
            self,
            title("History", self),
            (self.table, 1),
            self.empty,
            self.actions,
            self.message,
            self.trace,
            QLabel("<b>Unfinished uploads on this computer</b>", self),
            self.uploads,
        )
        manager.task_changed.connect(lambda _task: self.refresh())
        manager.task_progress.connect(self._progress)
        manager.task_failed.connect(self._failed)
        self.refresh()

    def _build_table(self) -> HistoryTable:
        table = HistoryTable(len(HISTORY_COLUMNS), self)
        table.setObjectName("history.table")
        table.setHorizontalHeaderLabels(list(HISTORY_COLUMNS))
        table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        table.customContextMenuRequested.connect(self._context_menu)
        table.doubleClicked.connect(lambda _index: self.default_action())
        table.activated_row.connect(self.default_action)
        table.itemSelectionChanged.connect(self._update_buttons)
        return table

    def _build_actions(self) -> ActionBar:
        bar = ActionBar("history.actions", self)
        bar.add("save", "Save output…", self.save_selected)
        bar.add("play", "▶ Play", self.toggle_play)
        bar.add("passphrase", "Enter passphrase…", self.ask_passphrase)
        bar.add("resume", "Resume", lambda: self._act(self.manager.resume))
        bar.add("pause", "Pause", lambda: self._act(self.manager.pause))
        bar.add("cancel", "Cancel", lambda: self._act(self.manager.cancel))
        bar.add("remove", "Remove", self.remove_selected, tip=REMOVE_TIP)
        bar.add("copy_trace", "Copy trace id", self.copy_trace_id, tip=TRACE_TIP, menu_only=True)
        return bar

    def copy_trace_id(self) -> None:
        """Put the selected task's trace id on the clipboard (for the server's operator)."""
        task = self.selected()
        if task is None or not task.trace_id:
            return
        QGuiApplication.clipboard().setText(task.trace_id)
        self.message.setText(f"Copied the trace id {task.trace_id}.")

    def _context_menu(self, at: QPoint) -> None:
        self.menu = self.actions.popup(self.table, self.table.viewport().mapToGlobal(at))

    def default_action(self) -> str | None:
        """What a double-click (or Enter) on a row does: the most useful action there."""
        return self.actions.trigger_default(DEFAULT_ACTIONS)

    # Contents --------------------------------------------------------------------------

    def refresh(self) -> None:
        selected = self.selected()
        self.tasks = self.manager.store.all(limit=HISTORY_LIMIT)
        self.table.setRowCount(len(self.tasks))
        for r, task in enumerate(self.tasks):
            output = self._output_name(task)
            encoding = task.kind is TaskKind.ENCODE
            other = self.manager.for_other_server(task)
            values = (
                "Encode" if encoding else "Decode",
                f"{task.secret_name} in {task.input_name}" if encoding else task.input_name,
                state_text(task, other_server=other),
                size_text(task),
                format_timestamp(task.created_at),
                format_timestamp(task.updated_at),
                output,
            )
            for c, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setData(Qt.ItemDataRole.UserRole, task.id)
                if c == FILE_COLUMN:
                    item.setToolTip(task.input_path)
                if c == STATE_COLUMN:
                    tip = [task.status.label if other else value]
                    if task.error_message:
                        tip.append(task.error_message)
                    if other:
                        tip.append(f"Made for the server {task.server}.")
                    if task.trace_id:
                        tip.append(f"Trace id: {task.trace_id}")
                    item.setToolTip("\n".join(tip))
                if c == 3:
                    item.setToolTip(
                        "Cover + sealed secret → stego file" if encoding else "Stego file → secret"
                    )
                if c == OUTPUT_COLUMN and task.output_path:
                    item.setToolTip(task.output_path)
                self.table.setItem(r, c, item)
            if selected is not None and task.id == selected.id:
                self.table.selectRow(r)
        self._colour_states()
        self.empty.setVisible(not self.tasks)
        self.table.fit_columns()
        self._refresh_uploads()
        self._update_buttons()

    def _colour_states(self) -> None:
        """Each State cell in its tone's colour in the current theme."""
        palette = self.table.palette()
        for r, task in enumerate(self.tasks):
            item = self.table.item(r, STATE_COLUMN)
            tone = _STATE_TONES.get(task.status)
            if item is not None and tone is not None:
                item.setForeground(tone_colour(tone, palette))

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 - Qt's name
        super().changeEvent(event)
        if event.type() is QEvent.Type.PaletteChange:  # the theme changed
            self._colour_states()

    def _output_name(self, task: Task) -> str:
        """An encode's result is offered as ``<cover>-stego.wav``: show that name."""
        if task.output is None:
            return ""
        if task.kind is TaskKind.ENCODE:
            return suggested_path(task, self.download_dir()).name
        return task.output.name

    def _refresh_uploads(self) -> None:
        self.uploads.clear()
        try:
            sessions = [s for s in self.sessions().all() if s.object_id is None]
        except Exception as e:  # a broken database must not break the screen
            self.uploads.addItem(f"The upload list cannot be read: {e}")
            return
        for session in sessions:
            self.uploads.addItem(QListWidgetItem(session_text(session)))
        if not sessions:
            self.uploads.addItem("None: every upload finished or was resumed.")

    def _progress(self, task_id: str, fraction: float, text: str) -> None:
        for r, task in enumerate(self.tasks):
            if task.id == task_id:
                item = self.table.item(r, STATE_COLUMN)
                if item is not None:
                    item.setText(f"{step_name(task.kind, text)} {fraction:.0%}")
                return

    def _failed(self, task_id: str, code: str, message: str) -> None:
        selected = self.selected()
        if selected is not None and selected.id == task_id:
            self.message.setText(describe_error(code, message))

    # Selection and actions -------------------------------------------------------------

    def selected(self) -> Task | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return None
        r = rows[0].row()
        return self.tasks[r] if 0 <= r < len(self.tasks) else None

    def select(self, task_id: str) -> None:
        for r, task in enumerate(self.tasks):
            if task.id == task_id:
                self.table.selectRow(r)
                return

    def _show_trace(self, task: Task | None) -> None:
        if task is None or not task.trace_id:
            self.trace.clear()
            self.trace.setVisible(False)
            return
        self.trace.setText(f"Trace id: {task.trace_id}. {TRACE_HINT}")
        self.trace.setToolTip(TRACE_TIP)
        self.trace.setVisible(True)

    def _update_buttons(self) -> None:
        task = self.selected()
        running = task is not None and self.manager.is_running(task.id)
        has_output = task is not None and task.output is not None and task.output.is_file()
        unfinished = task is not None and not task.status.finished
        other = task is not None and self.manager.for_other_server(task)
        playing = self._playing is not None and self.player.playing
        can = self.actions.set_enabled
        can("save", has_output)
        can(
            "play",
            playing or (not self._loading and task is not None and playable(task)),
            "■ Stop" if playing else "▶ Play",
        )
        can(
            "resume",
            unfinished
            and not running
            and not other
            and task is not None
            and task.status is not TaskStatus.NEEDS_PASSPHRASE,
        )
        can("pause", running)
        can("cancel", unfinished)
        can("passphrase", task is not None and task.status is TaskStatus.NEEDS_PASSPHRASE)
        can("remove", task is not None and task.status.finished)
        can("copy_trace", task is not None and bool(task.trace_id))
        self._show_trace(task)
        if self.saver.busy:
            pass  # the save's progress is shown
        elif task is not None and other:
            self.message.setText(
                f"This task was made for the server {task.server}. It continues when that "
                "server is set again in Settings; or cancel it."
            )
        elif task is not None and task.error_message and task.status is not TaskStatus.SUCCEEDED:
            self.message.setText(describe_error(task.error_code or "", task.error_message))
        elif task is not None and task.output_path:
            self.message.setText(f"Output: {task.output_path}")
        elif self.tasks:
            self.message.setText(ROW_HINT)
        else:
            self.message.clear()

    def _act(self, action: Callable[[str], None]) -> None:
        task = self.selected()
        if task is not None:
            action(task.id)
            self.refresh()

    def save_selected(self) -> None:
        task = self.selected()
        if task is None:
            return
        title = "Save stego file" if task.kind is TaskKind.ENCODE else "Save recovered file"
        self.saver.save(task, title, self.download_dir(), ANY_FILTER)

    def toggle_play(self) -> None:
        """Play the selected decoded audio (read off the GUI thread), or stop playing."""
        if self._playing is not None and self.player.playing:
            self.stop_playing()
            return
        task = self.selected()
        if task is None or not playable(task) or self._loading or task.output is None:
            return
        path, player = task.output, self.player

        def load(report: Report) -> Sound:
            return player.load(path)

        self._loading = True
        self._update_buttons()
        self.workers.start(
            load, name="load sound", on_finished=self._play_loaded, on_failed=self._load_failed
        )

    def _play_loaded(self, sound: Sound) -> None:
        self._loading = False
        try:
            self.player.play_sound(sound)
        except AudioError as e:
            self.message.setText(describe_error(e.code, e.message))
        else:
            self._playing = sound.path
            self.message.setText(f"Playing {sound.path.name}…")
            self.play_timer.start()
        self._update_buttons()

    def _load_failed(self, code: str, message: str) -> None:
        self._loading = False
        self.message.setText(describe_error(code, message))
        self._update_buttons()

    def _poll_player(self) -> None:
        # Ended, or another screen plays something else now: this screen's playing is over.
        if not self.player.poll() or self.player.path != self._playing:
            self.play_timer.stop()
            self._playing = None
            self._update_buttons()

    def stop_playing(self) -> None:
        if self._playing is not None and self.player.path == self._playing:
            self.player.stop()
        self.play_timer.stop()
        self._playing = None
        self._update_buttons()

    def ask_passphrase(self) -> None:
        task = self.selected()
        if task is None or task.status is not TaskStatus.NEEDS_PASSPHRASE:
            return
        passphrase = self.dialogs.ask_passphrase(
            self, "Open the message", f"Passphrase for {task.input_name}:"
        )
        if passphrase:
            self.manager.open_with_passphrase(task.id, passphrase)

    def remove_selected(self) -> None:
        task = self.selected()
        if task is not None and task.status.finished:
            self.manager.remove(task.id)
            self.refresh()
