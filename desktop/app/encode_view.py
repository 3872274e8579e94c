"""Encode: a cover, a secret and a passphrase in; a stego file out."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop.app.dialogs import ANY_FILTER, WAV_FILTER, Dialogs
from desktop.app.formatting import format_size
from desktop.app.media import CoverInfo, SecretInfo, check_fit, describe_cover, describe_secret
from desktop.app.messages import describe_error
from desktop.app.state import ConnectionState, Selection
from desktop.app.task_view import Saver, TaskFollower
from desktop.app.tasks import TaskManager
from desktop.app.widgets import FileField, MessageLabel, PassphraseField, ProgressPanel
from desktop.app.workers import Report, WorkerPool
from desktop.core.orchestration import Task, TaskKind, TaskStatus
from subtone.errors import SubtoneError

__all__ = ["EncodeView"]

_ERROR_STYLE = "color: #c0392b;"
_OK_STYLE = "color: #2e7d4f;"


class EncodeView(QWidget):
    def __init__(
        self,
        manager: TaskManager,
        selection: Selection,
        connection: ConnectionState,
        workers: WorkerPool,
        dialogs: Dialogs,
        download_dir: Callable[[], Path],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("encode")
        self.manager = manager
        self.selection = selection
        self.connection = connection
        self.workers = workers
        self.dialogs = dialogs
        self.download_dir = download_dir
        self.cover_info: CoverInfo | None = None
        self.secret_info: SecretInfo | None = None
        self._measuring = 0
        """Generation of the secret measurement in flight (older answers are ignored)."""
        self._secret_unusable = False

        title = QLabel("<h2>Hide a secret in a cover</h2>", self)
        self.cover = FileField(
            "encode.cover",
            "A WAV file to hide the secret in (drop it here)",
            lambda: self.dialogs.open_file(self, "Choose a cover", self.download_dir(), WAV_FILTER),
            self,
        )
        self.cover_info_label = QLabel(self)
        self.cover_info_label.setObjectName("encode.cover_info")
        self.cover_info_label.setWordWrap(True)
        self.secret = FileField(
            "encode.secret",
            "The recording, or any file (drop it here)",
            lambda: self.dialogs.open_file(self, "Choose the secret", Path.home(), ANY_FILTER),
            self,
        )
        self.secret_info_label = QLabel(self)
        self.secret_info_label.setObjectName("encode.secret_info")
        self.secret_info_label.setWordWrap(True)
        self.fit_label = QLabel(self)
        self.fit_label.setObjectName("encode.fit")
        self.fit_label.setWordWrap(True)
        self.passphrase = PassphraseField("encode.passphrase", confirm=True, parent=self)
        self.hint = QLabel(self)
        self.hint.setObjectName("encode.hint")
        self.hint.setWordWrap(True)
        self.start_button = QPushButton("Encode", self)
        self.start_button.setObjectName("encode.start")
        self.start_button.setDefault(True)
        self.start_button.setMinimumWidth(140)
        self.progress = ProgressPanel("encode.progress", self)
        self.result = MessageLabel("encode.result", "ok", self)
        self.save_button = QPushButton("Save stego file…", self)
        self.save_button.setObjectName("encode.save")
        self.save_button.setEnabled(False)
        self.save_button.setVisible(False)
        self.saved = MessageLabel("encode.saved", "info", self)
        self.error = MessageLabel("encode.error", "error", self)
        self.queue_label = MessageLabel("encode.queue", "info", self)

        cover_box = QGroupBox("1. Cover", self)
        cover_layout = QVBoxLayout(cover_box)
        cover_layout.addWidget(self.cover)
        cover_layout.addWidget(self.cover_info_label)
        secret_box = QGroupBox("2. Secret", self)
        secret_layout = QVBoxLayout(secret_box)
        secret_layout.addWidget(self.secret)
        secret_layout.addWidget(self.secret_info_label)
        secret_layout.addWidget(self.fit_label)
        pass_box = QGroupBox("3. Passphrase", self)
        pass_layout = QFormLayout(pass_box)
        pass_layout.addRow(self.passphrase)
        actions = QHBoxLayout()
        actions.addWidget(self.hint, 1)
        actions.addWidget(self.start_button)
        done_row = QHBoxLayout()
        done_row.addWidget(self.result, 1)
        done_row.addWidget(self.save_button)

        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addWidget(cover_box)
        layout.addWidget(secret_box)
        layout.addWidget(pass_box)
        layout.addLayout(actions)
        layout.addWidget(self.progress)
        layout.addWidget(self.queue_label)
        layout.addLayout(done_row)
        layout.addWidget(self.saved)
        layout.addWidget(self.error)
        layout.addStretch(1)
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
        self.cover.path_changed.connect(self.selection.set_cover)
        self.secret.path_changed.connect(lambda p: self.selection.set_secret(p))
        self.selection.cover_changed.connect(self._cover_changed)
        self.selection.secret_changed.connect(self._secret_changed)
        self.passphrase.changed.connect(self._update)
        self.start_button.clicked.connect(self.start)
        self.save_button.clicked.connect(self.save)
        connection.changed.connect(lambda *_: self._update())
        manager.task_changed.connect(lambda _task: self.update_queue())
        self._update()
        self.update_queue()

    # Inputs ----------------------------------------------------------------------------

    def _cover_changed(self, path: Path | None) -> None:
        self.cover.set_path(path)
        self.cover_info = None
        self.cover_info_label.setStyleSheet("")
        if path is None:
            self.cover_info_label.clear()
        else:
            try:
                self.cover_info = describe_cover(path)
            except SubtoneError as e:
                self.cover_info_label.setStyleSheet(_ERROR_STYLE)
                self.cover_info_label.setText(describe_error(e.code, e.message))
            else:
                self.cover_info_label.setText(self.cover_info.summary)
        self._update()

    def _secret_changed(self, path: Path | None) -> None:
        self.secret.set_path(path)
        self.secret_info = None
        self._secret_unusable = False
        self._measuring += 1
        generation = self._measuring
        self.secret_info_label.setStyleSheet("")
        if path is None:
            self.secret_info_label.clear()
            self._update()
            return
        what = "the recording" if self.selection.secret_is_recording else path.name
        self.secret_info_label.setText(f"Measuring {what}…")

        def measure(report: Report) -> SecretInfo:
            return describe_secret(path)

        self.workers.start(
            measure,
            name="measure secret",
            on_finished=lambda info: self._measured(generation, info),
            on_failed=lambda code, message: self._measure_failed(generation, code, message),
        )
        self._update()

    def _measured(self, generation: int, info: SecretInfo) -> None:
        if generation != self._measuring:
            return
        self.secret_info = info
        prefix = "Recording: " if self.selection.secret_is_recording else ""
        self.secret_info_label.setText(prefix + info.summary)
        self._update()

    def _measure_failed(self, generation: int, code: str, message: str) -> None:
        if generation != self._measuring:
            return
        self._secret_unusable = True
        self.secret_info_label.setStyleSheet(_ERROR_STYLE)
        self.secret_info_label.setText(describe_error(code, message))
        self._update()

    @property
    def measuring(self) -> bool:
        """The secret is being compressed and measured in the background."""
        return (
            self.selection.secret is not None
            and self.secret_info is None
            and not self._secret_unusable
        )

    def _problem(self) -> str | None:
        """Why Encode cannot be pressed yet."""
        if self.selection.cover is None:
            return "Choose a cover WAV."
        if self.cover_info is None:
            return "The cover cannot be used."
        if self.selection.secret is None:
            return "Record a message or choose a file as the secret."
        if self.secret_info is None:
            return "Measuring the secret…" if self.measuring else "The secret cannot be used."
        if not check_fit(self.cover_info, self.secret_info).fits:
            return "The secret does not fit in this cover."
        return self.passphrase.problem()

    def _update(self) -> None:
        self.fit_label.clear()
        if self.cover_info is not None and self.secret_info is not None:
            fit = check_fit(self.cover_info, self.secret_info)
            self.fit_label.setText(fit.message)
            self.fit_label.setStyleSheet(_OK_STYLE if fit.fits else _ERROR_STYLE)
        problem = self._problem()
        self.start_button.setEnabled(problem is None)
        self.start_button.setText("Encode" if self.connection.online else "Queue encode")
        if problem is not None and problem == self.passphrase.problem():
            self.hint.clear()  # the passphrase box above already says what is missing
        elif problem is not None:
            self.hint.setText(problem)
        elif self.connection.online:
            self.hint.setText("Ready. Only the encrypted secret and the cover are sent.")
        else:
            self.hint.setText("The server is offline: the encode will be queued and sent later.")

    def update_queue(self) -> None:
        waiting = [t for t in self.manager.waiting() if t.kind is TaskKind.ENCODE]
        if not waiting:
            self.queue_label.clear()
        else:
            n = len(waiting)
            self.queue_label.setText(
                f"{n} encode{'s' if n > 1 else ''} waiting to be sent "
                f"({format_size(sum(t.input_bytes for t in waiting))})."
            )

    # Actions ---------------------------------------------------------------------------

    def start(self) -> None:
        cover, secret = self.selection.cover, self.selection.secret
        if self._problem() is not None or cover is None or secret is None:
            return
        info = self.secret_info
        prepared = info.prepared if info is not None and info.is_current() else None
        task_id = self.manager.encode(
            cover,
            secret,
            self.passphrase.passphrase,
            prepared=prepared,
            secret_is_recording=self.selection.secret_is_recording,
        )
        self.passphrase.clear()
        self.saved.clear()
        self.follower.follow(task_id)

    def _task_changed(self, task: Task | None) -> None:
        done = task is not None and task.status is TaskStatus.SUCCEEDED
        self.save_button.setEnabled(done)
        self.save_button.setVisible(done)
        self.update_queue()

    def _done_text(self, task: Task) -> str:
        name = task.output.name if task.output else "?"
        return (
            f"The stego file is ready: {name} ({format_size(task.output_bytes or 0)}). "
            "It sounds like the cover; only the passphrase gets the secret back."
        )

    def save(self) -> None:
        task = self.follower.task
        if task is None or task.status is not TaskStatus.SUCCEEDED:
            return
        self.saver.save(task, "Save stego file", self.download_dir(), WAV_FILTER)

    def attach(self, task: Task) -> None:
        """Show a task the app continues after a restart (the one this screen last ran)."""
        self.follower.attach(task)

    @property
    def task_id(self) -> str | None:
        return self.follower.task_id
