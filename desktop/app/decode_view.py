"""Decode: a stego file and its passphrase in; the secret out, to play or save."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QWidget

from desktop.app.dialogs import ANY_FILTER, WAV_FILTER, Dialogs
from desktop.app.formatting import format_size
from desktop.app.media import describe_cover
from desktop.app.messages import describe_error
from desktop.app.stages import DECODE_STEPS
from desktop.app.state import ConnectionState, ConnectionStatus
from desktop.app.task_view import TaskPage
from desktop.app.tasks import TaskManager
from desktop.app.theme import Tone, set_tone
from desktop.app.widgets import (
    FileField,
    MessageLabel,
    PassphraseField,
    ProgressPanel,
    Section,
    action_button,
    page,
    row,
    title,
    wrapped_label,
)
from desktop.app.widgets.layout import STRETCH
from desktop.app.workers import Report, WorkerPool
from desktop.audio.backend import AudioError
from desktop.audio.player import Player, Sound
from desktop.core.orchestration import Task, TaskStatus
from subtone.errors import SubtoneError

__all__ = ["DecodeView"]

PLAY_POLL_MS = 100


class DecodeView(TaskPage):
    save_title = "Save recovered file"
    save_filter = ANY_FILTER

    def __init__(
        self,
        manager: TaskManager,
        connection: ConnectionState,
        player: Player,
        workers: WorkerPool,
        dialogs: Dialogs,
        download_dir: Callable[[], Path],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__("decode", manager, connection, workers, dialogs, download_dir, parent)
        self.player = player
        self._loading = False
        self.stego_ok = False
        self.play_timer = QTimer(self)
        self.play_timer.setInterval(PLAY_POLL_MS)
        self.play_timer.timeout.connect(self._poll_player)
        self._connect()
        self._task_changed(None)
        self._update()

    def _build(self) -> None:
        self.stego = FileField(
            "decode.stego",
            "A stego WAV file (drop it here)",
            lambda: self.dialogs.open_file(
                self, "Choose a stego file", self.download_dir(), WAV_FILTER
            ),
            self,
        )
        self.stego_info = wrapped_label("decode.stego_info", self)
        self.passphrase = PassphraseField("decode.passphrase", confirm=False, parent=self)
        self.hint = wrapped_label("decode.hint", self)
        self.start_button = action_button("decode.start", "Decode", self, default=True)
        self.progress = ProgressPanel("decode.progress", DECODE_STEPS, self)
        self.result = MessageLabel("decode.result", "ok", self)
        self.play_button = action_button("decode.play", "▶ Play", self)
        self.save_button = action_button("decode.save", "Save recovered file…", self)
        self.saved = MessageLabel("decode.saved", "info", self)
        self.error = MessageLabel("decode.error", "error", self)
        page(
            self,
            title("Get a secret back", self),
            Section("1. Stego file", self.stego, self.stego_info, parent=self),
            Section("2. Passphrase", self.passphrase, parent=self),
            row((self.hint, 1), self.start_button),
            self.progress,
            row((self.result, 1), self.play_button, self.save_button),
            self.saved,
            self.error,
            STRETCH,
        )

    def _connect(self) -> None:
        self.stego.path_changed.connect(self._stego_changed)
        self.passphrase.changed.connect(self._update)
        self.passphrase.edit.returnPressed.connect(self.start)
        self.start_button.clicked.connect(self.start)
        self.play_button.clicked.connect(self.toggle_play)
        self.save_button.clicked.connect(self.save)
        self.connection.changed.connect(lambda *_: self._update())

    def set_stego(self, path: Path) -> None:
        self.stego.set_path(path)

    def _stego_changed(self, path: Path | None) -> None:
        self.stego_ok = False
        set_tone(self.stego_info, None)
        if path is None:
            self.stego_info.clear()
        else:
            try:
                info = describe_cover(path)
            except SubtoneError as e:
                set_tone(self.stego_info, Tone.ERROR)
                self.stego_info.setText(describe_error(e.code, e.message))
            else:
                self.stego_ok = True
                self.stego_info.setText(info.summary.split(" · holds")[0])
        self._update()

    def _problem(self) -> str | None:
        if self.stego.path is None:
            return "Choose the stego file."
        if not self.stego_ok:
            return "This file cannot be decoded."
        return self.passphrase.problem()

    def _update(self) -> None:
        problem = self._problem()
        self.start_button.setEnabled(problem is None)
        if problem is not None:
            self.hint.setText(problem)
        elif self.connection.online:
            self.hint.setText("The secret is decrypted on this computer only.")
        else:
            self.hint.setText(
                "This server speaks another protocol version (see above): the decode waits."
                if self.connection.status is ConnectionStatus.INCOMPATIBLE
                else "The server is offline: the decode will start when it is back."
            )

    def start(self) -> None:
        path = self.stego.path
        if self._problem() is not None or path is None:
            return
        task = self.follower.task
        if (
            task is not None
            and task.status is TaskStatus.NEEDS_PASSPHRASE
            and task.input_path == str(path.resolve())
        ):
            self.error.clear()
            self.manager.open_with_passphrase(task.id, self.passphrase.passphrase)
        else:
            self.player.stop()
            task_id = self.manager.decode(path, self.passphrase.passphrase)
            self.follower.follow(task_id)
        self.passphrase.clear()
        self.saved.clear()

    def _task_changed(self, task: Task | None) -> None:
        done = task is not None and task.status is TaskStatus.SUCCEEDED
        audio = task is not None and done and (task.output_media_type or "").startswith("audio/")
        self.play_button.setVisible(bool(audio))
        self.play_button.setEnabled(bool(audio))
        self.save_button.setVisible(done)
        self.save_button.setEnabled(done)
        if task is not None and task.status is TaskStatus.NEEDS_PASSPHRASE:
            self.start_button.setText("Open with this passphrase")
            if not self.error.text():
                self.result.say(
                    "The hidden message was downloaded; enter the passphrase to open it.", "info"
                )
        else:
            self.start_button.setText("Decode")

    def _done_text(self, task: Task) -> str:
        kind = "recording" if (task.output_media_type or "").startswith("audio/") else "file"
        name = task.output.name if task.output else "?"
        return f"Recovered the {kind} {name} ({format_size(task.output_bytes or 0)})."

    def toggle_play(self) -> None:
        if self.player.playing:
            self.stop_playing()
            return
        task = self.follower.task
        if task is None or task.output is None or self._loading:
            return
        path = task.output
        player = self.player

        def load(report: Report) -> Sound:
            return player.load(path)

        self._loading = True
        self.play_button.setEnabled(False)
        self.workers.start(
            load, name="load sound", on_finished=self._play_loaded, on_failed=self._load_failed
        )

    def _play_loaded(self, sound: Sound) -> None:
        self._loading = False
        self.play_button.setEnabled(True)
        task = self.follower.task
        if task is None or task.output != sound.path:
            return  # another task was chosen meanwhile
        try:
            self.player.play_sound(sound)
        except AudioError as e:
            self.error.setText(describe_error(e.code, e.message))
            return
        self.play_button.setText("■ Stop")
        self.play_timer.start()

    def _load_failed(self, code: str, message: str) -> None:
        self._loading = False
        self.play_button.setEnabled(True)
        self.error.setText(describe_error(code, message))

    def stop_playing(self) -> None:
        self.player.stop()
        self.play_timer.stop()
        self.play_button.setText("▶ Play")

    def _poll_player(self) -> None:
        task = self.follower.task
        mine = task is not None and self.player.path == task.output
        if not self.player.poll() or not mine:  # ended, or another screen plays now
            self.play_timer.stop()
            self.play_button.setText("▶ Play")
