"""Record: pick a microphone, record with a live meter and waveform, play back, re-record."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Final

import soundfile as sf
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QComboBox, QLabel, QWidget

from desktop.app.formatting import format_clock
from desktop.app.messages import describe_error
from desktop.app.state import RecordPhase, RecordState
from desktop.app.widgets import (
    LevelMeter,
    MessageLabel,
    Section,
    WaveformView,
    action_button,
    page,
    row,
    title,
    wrapped_label,
)
from desktop.app.widgets.layout import STRETCH
from desktop.app.workers import Report, WorkerPool
from desktop.audio.backend import AudioError
from desktop.audio.devices import input_choices
from desktop.audio.levels import MeterBallistics, measure
from desktop.audio.player import Player, Sound
from desktop.audio.recorder import Recorder, Recording, list_recordings, recording_files
from desktop.audio.waveform import Columns, ScrollingWaveform, waveform_of_file

__all__ = ["RecordView"]

log = logging.getLogger(__name__)

DRAIN_INTERVAL_MS: Final = 40
"""How often the GUI timer empties the recorder's queue (25 times a second)."""
WAVEFORM_COLUMNS: Final = 600
INTRO: Final = (
    "Record the secret message here. It is saved on this computer as it is recorded, "
    "and compressed and encrypted here before anything is sent."
)


class ClockLabel(QLabel):
    """A large elapsed-time clock."""

    def __init__(self, name: str, parent: QWidget) -> None:
        super().__init__("0:00.0", parent)
        self.setObjectName(name)
        font = self.font()
        font.setPointSizeF(font.pointSizeF() * 1.8)
        self.setFont(font)


class RecordView(QWidget):
    use_recording = Signal(object)
    """The recording to use as the secret (a ``Path``)."""

    def __init__(
        self,
        recorder: Recorder,
        player: Player,
        workers: WorkerPool,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("record")
        self.recorder = recorder
        self.player = player
        self.workers = workers
        self._loading = False
        """A sound is being read for playing (off the GUI thread)."""
        self.state = RecordState(self)
        self.recording: Recording | None = None
        self._ballistics = MeterBallistics()
        self._waveform = ScrollingWaveform.for_rate(16_000, columns=WAVEFORM_COLUMNS)
        self._last_tick = time.monotonic()
        self._has_device = False

        self._build()
        self.timer = QTimer(self)
        self.timer.setInterval(DRAIN_INTERVAL_MS)
        self.timer.timeout.connect(self._tick)
        self.refresh.clicked.connect(self.refresh_devices)
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.play_button.clicked.connect(self.toggle_play)
        self.rerecord_button.clicked.connect(self.rerecord)
        self.use_button.clicked.connect(self._use)
        self.state.changed.connect(self._apply)
        self.refresh_devices(rescan=False)
        self._load_leftover()
        self._apply(self.state.phase)

    def _build(self) -> None:
        intro = wrapped_label("record.intro", self, INTRO)
        self.device = QComboBox(self)
        self.device.setObjectName("record.device")
        self.device.setMinimumWidth(280)
        self.refresh = action_button("record.refresh", "Refresh", self)
        self.message = MessageLabel("record.message", "error", self)
        self.meter = LevelMeter(self)
        self.meter.setObjectName("record.level")
        self.waveform = WaveformView(self)
        self.waveform.setObjectName("record.waveform")
        self.waveform.setMaximumHeight(320)
        self.elapsed = ClockLabel("record.elapsed", self)
        self.file_label = MessageLabel("record.file", "info", self)
        self.start_button = action_button("record.start", "● Record", self)
        self.stop_button = action_button("record.stop", "■ Stop", self)
        self.play_button = action_button("record.play", "▶ Play", self)
        self.rerecord_button = action_button("record.rerecord", "Record again", self)
        self.use_button = action_button("record.use", "Use as the secret →", self)
        live = Section("Input", row((self.meter, 1), self.elapsed), self.waveform, parent=self)
        page(
            self,
            title("Record a voice message", self),
            intro,
            row(QLabel("Microphone:", self), (self.device, 1), self.refresh),
            self.message,
            live,
            row(
                self.start_button,
                self.stop_button,
                self.play_button,
                self.rerecord_button,
                STRETCH,
                self.use_button,
            ),
            self.file_label,
            STRETCH,
        )

    # Devices ---------------------------------------------------------------------------

    def refresh_devices(self, rescan: bool = True) -> None:
        if self.recorder.recording or self.player.playing:
            self.message.setText("Stop playing or recording before looking for devices again.")
            return
        self.device.clear()
        try:
            if rescan:
                self.recorder.backend.refresh()
            devices = self.recorder.input_devices()
        except AudioError as e:
            self.message.setText(describe_error(e.code, e.message))
            self.device.addItem("No microphone found", None)
            self._has_device = False
            self.state.set(RecordPhase.NO_DEVICE if self.recording is None else self.state.phase)
            self._apply(self.state.phase)
            return
        self.message.clear()
        self._has_device = True
        for choice in input_choices(devices):  # the default first, by the names people know
            self.device.addItem(choice.name, choice.index)
        self.device.setCurrentIndex(0)
        if self.state.phase is RecordPhase.NO_DEVICE:
            self.state.set(RecordPhase.IDLE)
        self._apply(self.state.phase)

    @property
    def has_device(self) -> bool:
        return self._has_device

    # Recording -------------------------------------------------------------------------

    def start(self) -> None:
        if self.recorder.recording or not self.has_device:
            return
        self.player.stop()
        previous = self.recording
        index = self.device.currentData()
        try:
            self.recorder.start(index)
        except AudioError as e:
            self.message.setText(describe_error(e.code, e.message))
            return
        if previous is not None:
            previous.path.unlink(missing_ok=True)
        self.recording = None
        self.message.clear()
        self._ballistics.reset()
        self._waveform = ScrollingWaveform.for_rate(
            self.recorder.samplerate, columns=WAVEFORM_COLUMNS
        )
        self.waveform.clear()
        self._show_file("Recording to", self.recorder.path)
        self._last_tick = time.monotonic()
        self.timer.start()
        self.state.set(RecordPhase.RECORDING)

    def _tick(self) -> None:
        now = time.monotonic()
        elapsed, self._last_tick = now - self._last_tick, now
        if self.recorder.recording:
            blocks = self.recorder.drain()
            for block in blocks:
                self._waveform.push(block)
            level = measure(blocks[-1]) if blocks else None
            self._ballistics.update(level, elapsed)
            self._show_levels()
            self.waveform.set_columns(self._waveform.columns(), WAVEFORM_COLUMNS)
            self.elapsed.setText(format_clock(self.recorder.elapsed_seconds))
            return
        if self.state.phase is RecordPhase.PLAYING:
            self._ballistics.update(None, elapsed)
            self._show_levels()
            self.elapsed.setText(format_clock(self.player.position_seconds))
            if not self.player.poll():
                self.state.set(RecordPhase.RECORDED)
                self._show_recording()
            return
        self._ballistics.update(None, elapsed)
        self._show_levels()
        if self._ballistics.peak_dbfs <= -119:
            self.timer.stop()

    def _show_levels(self) -> None:
        b = self._ballistics
        self.meter.set_level(b.rms_dbfs, b.peak_dbfs, b.held_dbfs, b.clipped)

    def stop(self) -> None:
        if self.state.phase is RecordPhase.PLAYING:
            self.player.stop()
            self.state.set(RecordPhase.RECORDED)
            self._show_recording()
            return
        if not self.recorder.recording:
            return
        try:
            recording = self.recorder.stop()
        except AudioError as e:
            self.message.setText(describe_error(e.code, e.message))
            recording = Recording(
                self.recorder.path or Path(),
                self.recorder.samplerate,
                self.recorder.channels,
                self.recorder.frames,
            )
        self.waveform.set_columns(self._waveform.columns(), WAVEFORM_COLUMNS)
        if recording.frames == 0:
            recording.path.unlink(missing_ok=True)
            self.recording = None
            self.message.setText("Nothing was recorded: is the microphone muted?")
            self.state.set(RecordPhase.IDLE)
        else:
            self.recording = recording
            self.state.set(RecordPhase.RECORDED)
        self._show_recording()

    def rerecord(self) -> None:
        self.player.stop()
        if self.recording is not None:
            self.recording.path.unlink(missing_ok=True)
            self.recording = None
        self.state.set(RecordPhase.IDLE if self.has_device else RecordPhase.NO_DEVICE)
        self._show_recording()
        self.start()

    def toggle_play(self) -> None:
        if self.state.phase is RecordPhase.PLAYING:
            self.stop()
            return
        if self.recording is None or self._loading:
            return
        path, player = self.recording.path, self.player

        def load(report: Report) -> Sound:
            return player.load(path)

        self._loading = True
        self._apply(self.state.phase)
        self.workers.start(
            load, name="load recording", on_finished=self._play_loaded, on_failed=self._load_failed
        )

    def _play_loaded(self, sound: Sound) -> None:
        self._loading = False
        if (
            self.recording is None
            or self.recording.path != sound.path
            or self.state.phase is not RecordPhase.RECORDED
        ):
            self._apply(self.state.phase)
            return  # recorded again, or sent, meanwhile
        try:
            self.player.play_sound(sound)
        except AudioError as e:
            self.message.setText(describe_error(e.code, e.message))
            self._apply(self.state.phase)
            return
        self.message.clear()
        self._last_tick = time.monotonic()
        self.timer.start()
        self.state.set(RecordPhase.PLAYING)

    def _load_failed(self, code: str, message: str) -> None:
        self._loading = False
        self.message.setText(describe_error(code, message))
        self._apply(self.state.phase)

    def recording_sent(self, path: Path) -> None:
        """The recording at ``path`` was sent and deleted: forget it here too."""
        if self.recording is None or self.recording.path != path or path.exists():
            return
        if self.player.path == path:
            self.player.stop()
        self.recording = None
        self.waveform.clear()
        self.state.set(RecordPhase.IDLE if self.has_device else RecordPhase.NO_DEVICE)
        self._show_recording()
        self.file_label.setText(
            "The recording was sent, hidden in its cover, and deleted from this computer."
        )
        self._apply(self.state.phase)

    def _use(self) -> None:
        if self.recording is not None:
            self.use_recording.emit(self.recording.path)

    def _show_recording(self) -> None:
        if self.recording is None:
            self.file_label.clear()
            self.elapsed.setText("0:00.0")
            return
        self.elapsed.setText(format_clock(self.recording.duration_seconds))
        self._show_file("Saved (lossless) as", self.recording.path)

    def _show_file(self, what: str, path: Path | None, note: str = "") -> None:
        if path is None:
            self.file_label.clear()
            return
        self.file_label.setText(
            f"{what} {path.name} in the app's recordings folder{note}. It stays on this "
            "computer until it has been sent, then it is deleted."
        )
        self.file_label.setToolTip(str(path))

    def _load_leftover(self) -> None:
        """Show the newest recording an earlier run left (a crash loses nothing recorded).

        Finding it and drawing its waveform read the file: that happens on a worker thread.
        """
        folder = self.recorder.folder
        try:
            # Listed here, read there: a recording started meanwhile is never touched.
            paths = recording_files(folder)
        except OSError as e:
            log.warning("cannot list recordings: %s", e)
            return
        if not paths:
            return

        def find(report: Report) -> tuple[Recording, Columns | None] | None:
            found = list_recordings(folder, paths)
            if not found:
                return None
            try:
                columns = waveform_of_file(found[0].path, WAVEFORM_COLUMNS)
            except (RuntimeError, OSError, sf.SoundFileError) as e:
                log.warning("cannot draw %s: %s", found[0].path, e)
                columns = None
            return found[0], columns

        self.workers.start(
            find,
            name="find leftover recording",
            on_finished=self._leftover_found,
            on_failed=lambda code, message: log.warning("cannot list recordings: %s", message),
        )

    def _leftover_found(self, found: tuple[Recording, Columns | None] | None) -> None:
        if found is None or self.recording is not None or self.recorder.recording:
            return  # nothing left, or the person started recording meanwhile
        recording, columns = found
        if not recording.path.exists():
            return
        self.recording = recording
        if columns is not None:
            self.waveform.set_columns(columns, WAVEFORM_COLUMNS)
        self.state.set(RecordPhase.RECORDED)
        self._show_recording()
        self._show_file(
            "Recovered an earlier recording:",
            recording.path,
            f" ({format_clock(recording.duration_seconds)})",
        )
        self._apply(self.state.phase)

    def _apply(self, phase: RecordPhase) -> None:
        recording = phase is RecordPhase.RECORDING
        have = self.recording is not None
        self.start_button.setEnabled(self.has_device and phase in (RecordPhase.IDLE,))
        self.start_button.setVisible(not have or recording)
        self.stop_button.setEnabled(phase in (RecordPhase.RECORDING, RecordPhase.PLAYING))
        self.play_button.setEnabled(
            have and not self._loading and phase in (RecordPhase.RECORDED, RecordPhase.PLAYING)
        )
        self.play_button.setText("■ Stop playing" if phase is RecordPhase.PLAYING else "▶ Play")
        self.rerecord_button.setVisible(have and not recording)
        self.rerecord_button.setEnabled(self.has_device and phase is RecordPhase.RECORDED)
        self.use_button.setEnabled(have and phase is RecordPhase.RECORDED)
        self.device.setEnabled(self.has_device and not recording)
        self.refresh.setEnabled(not recording and phase is not RecordPhase.PLAYING)
        self.waveform.placeholder = (
            "No microphone" if phase is RecordPhase.NO_DEVICE else "Press Record to start"
        )
        self.waveform.update()

    def shutdown(self) -> None:
        """Stop recording (keeping the file) and playback; for closing the window."""
        self.timer.stop()
        self.player.stop()
        if self.recorder.recording:
            try:
                self.recorder.stop()
            except AudioError as e:
                log.warning("stopping the recorder: %s", e)
