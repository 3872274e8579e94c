"""Encode: a cover, a secret and a passphrase in; a stego file out."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Final

import soundfile as sf
from PySide6.QtWidgets import QCheckBox, QWidget

from desktop.app.dialogs import ANY_FILTER, WAV_FILTER, Dialogs
from desktop.app.formatting import format_size
from desktop.app.media import (
    CoverInfo,
    SecretInfo,
    check_fit,
    describe_cover,
    describe_secret,
    recording_name,
)
from desktop.app.messages import describe_error
from desktop.app.saving import suggested_path
from desktop.app.stages import ENCODE_STEPS
from desktop.app.state import ConnectionState, ConnectionStatus, Selection
from desktop.app.task_view import TaskPage
from desktop.app.tasks import TaskManager
from desktop.app.theme import Tone, set_tone
from desktop.app.widgets import (
    FileField,
    MessageLabel,
    PassphraseField,
    ProgressPanel,
    WaveformView,
    action_button,
)
from desktop.app.widgets.layout import STRETCH, Section, page, row, title, wrapped_label
from desktop.app.workers import Report, WorkerPool
from desktop.audio.compare import Difference, compare_files
from desktop.audio.waveform import Overview, overview_of_file
from desktop.core.orchestration import Task, TaskKind, TaskMode, TaskStatus
from subtone.errors import SubtoneError

__all__ = ["EncodeView", "describe_difference"]

log = logging.getLogger(__name__)

COVER_WAVE_HEIGHT: Final = 72
MIN_OVERVIEW_COLUMNS: Final = 200
MAX_OVERVIEW_COLUMNS: Final = 2400
DIFFERENCE_COLOUR: Final = "#f0a35f"
INAUDIBLE_SNR_DB: Final = 60.0
"""A difference this far below the cover is far too quiet to hear (it is also below the
noise floor of most recordings)."""


def _db(value: float) -> str:
    return f"{value:.0f}".replace("-", "−")


def describe_difference(diff: Difference) -> str:
    """What an encode changed, for a person: how many samples, by how much, how loud."""
    if diff.changed == 0:
        return "The stego file is identical to the cover."
    step = "one step" if diff.max_step == 1 else f"{diff.max_step} steps"
    verdict = (
        "far too quiet to hear."
        if diff.snr_db >= INAUDIBLE_SNR_DB
        else "quiet, but not far below the cover: a very quiet cover shows it most."
    )
    return (
        f"{diff.changed:,} of {diff.samples:,} samples changed ({diff.changed_fraction:.1%}), "
        f"none by more than {step} of the lowest bit. The difference lies at "
        f"{_db(diff.difference_dbfs)}\u00a0dBFS, {_db(diff.snr_db)}\u00a0dB below the cover "
        f"({_db(diff.cover_dbfs)}\u00a0dBFS): {verdict}"
    )


class EncodeView(TaskPage):
    save_title = "Save stego file"
    save_filter = WAV_FILTER

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
        super().__init__("encode", manager, connection, workers, dialogs, download_dir, parent)
        self.selection = selection
        self.cover_info: CoverInfo | None = None
        self.secret_info: SecretInfo | None = None
        self._measuring = 0
        """Generation of the secret measurement in flight (older answers are ignored)."""
        self._secret_unusable = False
        self._connect()
        self._update()
        self.update_queue()

    def _build(self) -> None:
        self._build_cover()
        self.secret = FileField(
            "encode.secret",
            "The recording, or any file (drop it here)",
            lambda: self.dialogs.open_file(self, "Choose the secret", Path.home(), ANY_FILTER),
            self,
        )
        self.secret_info_label = wrapped_label("encode.secret_info", self)
        self.fit_label = wrapped_label("encode.fit", self)
        self.passphrase = PassphraseField("encode.passphrase", confirm=True, parent=self)
        self.hint = wrapped_label("encode.hint", self)
        self.start_button = action_button("encode.start", "Encode", self, default=True)
        self.progress = ProgressPanel("encode.progress", ENCODE_STEPS, self)
        self._build_result()
        page(
            self,
            title("Hide a secret in a cover", self),
            Section(
                "1. Cover",
                self.cover,
                self.cover_wave,
                self.cover_info_label,
                self.robust,
                self.robust_info_label,
                parent=self,
            ),
            Section("2. Secret", self.secret, self.secret_info_label, self.fit_label, parent=self),
            Section("3. Passphrase", self.passphrase, parent=self),
            row((self.hint, 1), self.start_button),
            self.progress,
            self.queue_label,
            row((self.result, 1), self.save_button),
            self._difference_section(),
            self.saved,
            self.error,
            STRETCH,
        )

    def _build_cover(self) -> None:
        """The cover's field, its overview and the robust-mode choice."""
        self.cover = FileField(
            "encode.cover",
            "A WAV file to hide the secret in (drop it here)",
            lambda: self.dialogs.open_file(self, "Choose a cover", self.download_dir(), WAV_FILTER),
            self,
        )
        self.cover_info_label = wrapped_label("encode.cover_info", self)
        self.cover_wave = WaveformView(self)
        self.cover_wave.setObjectName("encode.cover_waveform")
        self.cover_wave.setFixedHeight(COVER_WAVE_HEIGHT)
        self.cover_wave.setVisible(False)
        self._drawing = 0
        """Generation of the cover overview in flight (older answers are ignored)."""
        self.robust = QCheckBox("Survives re-encoding", self)
        self.robust.setObjectName("encode.robust")
        self.robust.setToolTip(
            "Hide the secret so that it survives being sent through a messaging app or "
            "re-encoded (Opus, MP3, resampling): about 100 bits per second of cover."
        )
        self.robust_info_label = wrapped_label("encode.robust_info", self)

    def _build_result(self) -> None:
        """What a finished encode shows: its result, the difference and the messages."""
        self.result = MessageLabel("encode.result", "ok", self)
        self.save_button = action_button("encode.save", "Save stego file…", self, shown=False)
        self.diff_wave = WaveformView(self, colour=DIFFERENCE_COLOUR)
        self.diff_wave.setObjectName("encode.difference_waveform")
        self.diff_wave.setFixedHeight(COVER_WAVE_HEIGHT)
        self.diff_wave.setToolTip(
            "The stego file minus the cover along the file, magnified: full height is the "
            "largest change (one step of the lowest bit)."
        )
        self.diff_label = wrapped_label("encode.difference", self)
        self.difference: Difference | None = None
        self._compared: str | None = None
        """The task whose output was set against its cover (or is being)."""
        self.saved = MessageLabel("encode.saved", "info", self)
        self.error = MessageLabel("encode.error", "error", self)
        self.queue_label = MessageLabel("encode.queue", "info", self)

    def _connect(self) -> None:
        self.cover.path_changed.connect(self.selection.set_cover)
        self.secret.path_changed.connect(lambda p: self.selection.set_secret(p))
        self.selection.cover_changed.connect(self._cover_changed)
        self.selection.secret_changed.connect(self._secret_changed)
        self.passphrase.changed.connect(self._update)
        self.robust.toggled.connect(lambda _on: self._update())
        self.start_button.clicked.connect(self.start)
        self.save_button.clicked.connect(self.save)
        self.connection.changed.connect(lambda *_: self._update())
        self.manager.task_changed.connect(lambda _task: self.update_queue())

    # Inputs ----------------------------------------------------------------------------

    def _cover_changed(self, path: Path | None) -> None:
        self.cover.set_path(path)
        self.cover_info = None
        set_tone(self.cover_info_label, None)
        if path is None:
            self.cover_info_label.clear()
        else:
            try:
                self.cover_info = describe_cover(path)
            except SubtoneError as e:
                set_tone(self.cover_info_label, Tone.ERROR)
                self.cover_info_label.setText(describe_error(e.code, e.message))
            else:
                self.cover_info_label.setText(self.cover_info.summary)
        self._draw_cover(path if self.cover_info is not None else None)
        self._update()

    def _draw_cover(self, path: Path | None) -> None:
        """The cover's waveform, one (min, max) column per pixel, read off the GUI thread (a
        long cover is sampled, never read whole: :func:`overview_of_file`)."""
        self._drawing += 1
        generation = self._drawing
        self.cover_wave.clear()
        self.cover_wave.setToolTip("")
        self.cover_wave.setVisible(path is not None)
        if path is None:
            return
        self.cover_wave.placeholder = "Drawing the cover's waveform…"
        pixels = round(max(self.cover.width(), 600) * self.devicePixelRatioF())
        columns = min(max(pixels, MIN_OVERVIEW_COLUMNS), MAX_OVERVIEW_COLUMNS)

        def draw(report: Report) -> Overview:
            try:
                return overview_of_file(path, columns)
            except (OSError, RuntimeError, sf.SoundFileError) as e:
                raise SubtoneError(f"{path.name} cannot be drawn: {e}", code="not_wav") from e

        self.workers.start(
            draw,
            name="cover waveform",
            on_finished=lambda overview: self._cover_drawn(generation, overview),
            on_failed=lambda code, message: self._cover_not_drawn(generation, message),
        )

    def _cover_drawn(self, generation: int, overview: Overview) -> None:
        if generation != self._drawing:
            return
        self.cover_wave.set_columns(overview.columns, len(overview.columns))
        how = "every sample" if overview.exact else "samples taken along it"
        self.cover_wave.setToolTip(f"The whole cover, from start to end ({how}).")

    def _cover_not_drawn(self, generation: int, message: str) -> None:
        if generation != self._drawing:
            return
        log.warning("cannot draw the cover: %s", message)
        self.cover_wave.setVisible(False)

    @property
    def cover_drawn(self) -> bool:
        return self.cover_wave.column_count > 0

    def _secret_changed(self, path: Path | None) -> None:
        recording = path is not None and self.selection.secret_is_recording
        self.secret.set_path(path, recording_name(path) if recording and path else None)
        self.secret_info = None
        self._secret_unusable = False
        self._measuring += 1
        generation = self._measuring
        set_tone(self.secret_info_label, None)
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
        set_tone(self.secret_info_label, Tone.ERROR)
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
        if not check_fit(self.cover_info, self.secret_info, robust=self.robust.isChecked()).fits:
            return "The secret does not fit in this cover."
        return self.passphrase.problem()

    def _update(self) -> None:
        self.fit_label.clear()
        robust = self.robust.isChecked()
        if self.cover_info is not None and robust:
            self.robust_info_label.setText(self.cover_info.robust_summary)
        else:
            self.robust_info_label.clear()
        if self.cover_info is not None and self.secret_info is not None:
            fit = check_fit(self.cover_info, self.secret_info, robust=robust)
            self.fit_label.setText(fit.message)
            set_tone(self.fit_label, Tone.OK if fit.fits else Tone.ERROR)
        problem = self._problem()
        self.start_button.setEnabled(problem is None)
        self.start_button.setText("Encode" if self.connection.online else "Queue encode")
        if problem is not None and problem == self.passphrase.problem():
            self.hint.clear()  # the passphrase box above already says what is missing
        elif problem is not None:
            self.hint.setText(problem)
        elif self.connection.online:
            sent = "a 16 kHz mono copy of the cover" if robust else "the cover"
            self.hint.setText(f"Ready. Only the encrypted secret and {sent} are sent.")
        elif self.connection.status is ConnectionStatus.INCOMPATIBLE:
            self.hint.setText(
                "This server speaks another protocol version (see above): the encode will "
                "wait in the queue."
            )
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
            mode=TaskMode.ROBUST if self.robust.isChecked() else TaskMode.LSB,
        )
        self.passphrase.clear()
        self.saved.clear()
        self.follower.follow(task_id)

    def _difference_section(self) -> Section:
        self.diff_section = Section(
            "What changed (stego file − cover)", self.diff_wave, self.diff_label, parent=self
        )
        self.diff_section.setObjectName("encode.difference_section")
        self.diff_section.setVisible(False)
        return self.diff_section

    def _task_changed(self, task: Task | None) -> None:
        done = task is not None and task.status is TaskStatus.SUCCEEDED
        self.save_button.setEnabled(done)
        self.save_button.setVisible(done)
        if task is None or not done:
            self._compared = None
            self.difference = None
            self.diff_section.setVisible(False)
        elif task.id != self._compared and task.output is not None:
            self._compare(task.id, Path(task.input_path), task.output)
        self.update_queue()

    def _compare(self, task_id: str, cover: Path, stego: Path) -> None:
        """Set the stego file against its cover, off the GUI thread (both are read a block
        at a time)."""
        self._compared = task_id
        self.difference = None
        self.diff_wave.clear()
        self.diff_wave.placeholder = "Setting the stego file against the cover…"
        self.diff_label.setText("")
        self.diff_section.setVisible(True)
        pixels = round(max(self.cover.width(), 600) * self.devicePixelRatioF())
        columns = min(max(pixels, MIN_OVERVIEW_COLUMNS), MAX_OVERVIEW_COLUMNS)

        def compare(report: Report) -> Difference:
            return compare_files(cover, stego, columns)

        self.workers.start(
            compare,
            name="compare stego file",
            on_finished=lambda diff: self._compared_now(task_id, diff),
            on_failed=lambda code, message: self._not_compared(task_id, message),
        )

    def _compared_now(self, task_id: str, diff: Difference) -> None:
        if task_id != self._compared:
            return
        self.difference = diff
        scale = float(max(diff.max_step, 1))
        self.diff_wave.set_columns(diff.columns / scale, len(diff.columns))
        self.diff_label.setText(describe_difference(diff))

    def _not_compared(self, task_id: str, message: str) -> None:
        if task_id != self._compared:
            return
        log.warning("cannot set the stego file against its cover: %s", message)
        self.diff_section.setVisible(False)

    def _done_text(self, task: Task) -> str:
        # The app keeps the result under the cover's own name in its work folder: name the
        # file the person gets, the one "Save" offers.
        name = suggested_path(task, self.download_dir()).name
        return (
            f"The stego file is ready: {name} ({format_size(task.output_bytes or 0)}). Save it "
            "to keep it; it sounds like the cover, and only the passphrase gets the secret back."
        )
