"""The main window: a sidebar of screens, and a status bar saying whether the server answers."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Final

from PySide6.QtCore import Qt
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QFont, QFontMetrics
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QMainWindow,
    QPushButton,
    QSizePolicy,
    QStackedWidget,
    QWidget,
)

from desktop.app.about import AboutDialog
from desktop.app.connection import ConnectionMonitor
from desktop.app.context import AppContext, close_runtime
from desktop.app.decode_view import DecodeView
from desktop.app.dialogs import Dialogs
from desktop.app.drops import DropTarget, route_drop
from desktop.app.encode_view import EncodeView
from desktop.app.history_view import HistoryView
from desktop.app.messages import describe_error
from desktop.app.record_view import RecordView
from desktop.app.settings_view import SettingsView
from desktop.app.shortcuts import install_shortcuts
from desktop.app.state import ConnectionState, ConnectionStatus, Selection
from desktop.app.tasks import TaskManager
from desktop.app.theme import NAV_FONT_PX, NAV_PADDING_PX, ThemeFollower, Tone, tone_colour
from desktop.app.widgets.file_field import dropped_paths
from desktop.app.widgets.layout import MAX_PAGE_WIDTH, page, scrollable
from desktop.app.widgets.message_label import MessageLabel
from desktop.app.window_state import (
    DEFAULT_SIZE,
    MINIMUM_SIZE,
    WINDOW_STATE_FILE,
    WindowGeometry,
)
from desktop.app.workers import WorkerPool
from desktop.audio.backend import SoundDeviceBackend
from desktop.audio.player import Player
from desktop.audio.recorder import Recorder
from desktop.core.config import ClientSettings
from desktop.core.orchestration import StopReason, Task, TaskKind, TaskStatus, sweep_work_dir
from subtone.errors import SubtoneError

__all__ = ["SCREENS", "MainWindow"]

log = logging.getLogger(__name__)

SCREENS: Final = ("record", "encode", "decode", "history", "settings")
_TITLES: Final = {
    "record": "Record",
    "encode": "Encode",
    "decode": "Decode",
    "history": "History",
    "settings": "Settings",
}
_STATUS_TONES: Final = {
    ConnectionStatus.UNKNOWN: Tone.MUTED,
    ConnectionStatus.ONLINE: Tone.OK,
    ConnectionStatus.NOT_READY: Tone.WARNING,
    ConnectionStatus.OFFLINE: Tone.ERROR,
    ConnectionStatus.ERROR: Tone.ERROR,
    ConnectionStatus.INCOMPATIBLE: Tone.ERROR,
}
NAV_AIR_PX: Final = 24
"""Room in the sidebar beyond its widest title and the items' padding."""


class MainWindow(QMainWindow):
    def __init__(
        self,
        ctx: AppContext | None = None,
        *,
        dialogs: Dialogs | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("main")
        self.setWindowTitle("Subtone")
        self.setMinimumSize(*MINIMUM_SIZE)
        self.resize(*DEFAULT_SIZE)
        self.setAcceptDrops(True)
        self.ctx = ctx or AppContext.default()
        self.theme = ThemeFollower(parent=self)
        """The light or dark theme, as the system's colour scheme is (and becomes)."""
        self.dialogs = dialogs or Dialogs()
        self._closed = False
        self.about: AboutDialog | None = None

        settings_problem = self._load_settings()
        self._build_services()
        self._build_views()
        self.setCentralWidget(self._build_body())
        self._build_status_bar()
        self._continuing: set[str] = (
            {t.id for t in self.manager.waiting()} if self.ctx.resume_on_start else set()
        )
        """Unfinished tasks found at start, that this run continues (until they stop)."""
        self._wire()
        self.shortcuts = install_shortcuts(self)
        self._show_connection()
        self._show_queue()
        self._show_continuing()
        self._attach_unfinished()
        self.show_screen("record")
        if settings_problem is not None:
            self.show_screen("settings")
            self.statusBar().showMessage(
                describe_error(settings_problem.code, settings_problem.message)
            )
        self.geometry_store.restore(self)
        self.monitor.start()

    def _wire(self) -> None:
        """The connection monitor, and what each part tells the others."""
        self.monitor = ConnectionMonitor(
            self.connection,
            self.workers,
            lambda: self.runtime.client.readiness(),
            lambda: self.settings.server_url,
            version=lambda: self.runtime.client.server_version(),
            interval_ms=self.ctx.check_interval_ms,
            offline_interval_ms=self.ctx.offline_check_interval_ms,
            parent=self,
        )
        self.manager.on_unreachable = self.monitor.check_now
        self.connection.changed.connect(self._connection_changed)
        self.manager.task_changed.connect(self._task_changed)
        self.record_view.use_recording.connect(self._use_recording)
        self.settings_view.saved.connect(self._settings_saved)
        self.theme.changed.connect(lambda _theme: self._show_connection())

    def _load_settings(self) -> SubtoneError | None:
        """Read the settings; the problem when they cannot be read (the defaults are used)."""
        self.settings_store = self.ctx.settings_store()
        self.geometry_store = WindowGeometry(self.ctx.state_dir / WINDOW_STATE_FILE)
        try:
            self.settings = self.settings_store.load()
        except SubtoneError as e:
            self.settings = ClientSettings()
            return e
        return None

    def _build_services(self) -> None:
        self.store = self.ctx.task_store()
        self.workers = WorkerPool(self)
        self.connection = ConnectionState(self)
        self.selection = Selection(self)
        self.runtime = self.ctx.runtime(self.settings, self.store)
        self.manager = TaskManager(
            self.store,
            self.workers,
            self.connection,
            self.runtime,
            server=self.settings.server_url,
            position_kdf=self.ctx.position_kdf,
            requeue_delay_ms=self.ctx.requeue_delay_ms,
            parent=self,
        )
        self.manager.follow_server()  # a URL fixed while the app was closed
        audio = self.ctx.audio if self.ctx.audio is not None else SoundDeviceBackend()
        self.recorder = Recorder(audio, self.ctx.recordings_dir)
        self.player = Player(audio)
        for gone in sweep_work_dir(self.store, self.ctx.work_dir):
            log.info("removed %s: no task needs it any more", gone)

    def _build_views(self) -> None:
        download_dir, workers, dialogs = self._download_dir, self.workers, self.dialogs
        self.record_view = RecordView(self.recorder, self.player, workers, self)
        self.encode_view = EncodeView(
            self.manager, self.selection, self.connection, workers, dialogs, download_dir
        )
        self.decode_view = DecodeView(
            self.manager, self.connection, self.player, workers, dialogs, download_dir
        )
        self.history_view = HistoryView(
            self.manager,
            lambda: self.ctx.sessions(self.settings),
            self.player,
            workers,
            dialogs,
            download_dir,
        )
        self.settings_view = SettingsView(
            self.settings_store, self.settings, workers, dialogs, self.ctx.client
        )
        self.views: dict[str, QWidget] = {
            "record": self.record_view,
            "encode": self.encode_view,
            "decode": self.decode_view,
            "history": self.history_view,
            "settings": self.settings_view,
        }

    def _build_body(self) -> QWidget:
        self.nav = QListWidget(self)
        self.nav.setObjectName("main.nav")
        font = QFont(self.nav.font())
        font.setPixelSize(NAV_FONT_PX)
        widest = max(QFontMetrics(font).horizontalAdvance(t) for t in _TITLES.values())
        self.nav.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.about_button = QPushButton("About", self)
        self.about_button.setObjectName("main.about")
        self.about_button.setToolTip("Versions of this app and of the server (F1)")
        self.about_button.setCursor(Qt.CursorShape.PointingHandCursor)
        self.about_button.clicked.connect(self.show_about)
        sidebar = QWidget(self)
        sidebar.setObjectName("main.sidebar")
        sidebar.setAttribute(Qt.WidgetAttribute.WA_StyledBackground, True)
        sidebar.setFixedWidth(widest + 2 * NAV_PADDING_PX + NAV_AIR_PX)
        page(sidebar, (self.nav, 1), self.about_button, margins=False).setSpacing(0)
        self.stack = QStackedWidget(self)
        self.stack.setObjectName("main.stack")
        for n, name in enumerate(SCREENS, start=1):
            self.nav.addItem(_TITLES[name])
            self.nav.item(n - 1).setToolTip(f"{_TITLES[name]} (Ctrl+{n})")
            wide = name == "history"  # its table uses the whole width
            self.stack.addWidget(
                scrollable(self.views[name], max_width=None if wide else MAX_PAGE_WIDTH)
            )
        self.nav.currentRowChanged.connect(self.stack.setCurrentIndex)
        self.banner = MessageLabel("main.banner", "error", self)
        """Why no work goes to this server (it speaks another protocol version)."""
        self.banner_area = QWidget(self)
        self.banner_area.setObjectName("main.banner_area")
        page(self.banner_area, self.banner).setContentsMargins(9, 9, 9, 0)
        self.banner_area.setVisible(False)
        right = QWidget(self)
        right.setObjectName("main.right")
        page(right, self.banner_area, (self.stack, 1), margins=False).setSpacing(0)
        central = QWidget(self)
        body = QHBoxLayout(central)
        body.setContentsMargins(0, 0, 0, 0)
        body.setSpacing(0)
        body.addWidget(sidebar)
        body.addWidget(right, 1)
        return central

    def _build_status_bar(self) -> None:
        self.status_label = QLabel(self)
        self.status_label.setObjectName("status.connection")
        # A long message is cut at the right rather than squeezing the other labels.
        self.status_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.status_label.setMinimumWidth(200)
        self.resume_label = QLabel(self)
        self.resume_label.setObjectName("status.resume")
        self.resume_label.setTextFormat(Qt.TextFormat.RichText)
        self.resume_label.linkActivated.connect(lambda _link: self.show_screen("history"))
        self.resume_label.setVisible(False)
        self.queue_label = QLabel(self)
        self.queue_label.setObjectName("status.queue")
        self.statusBar().addWidget(self.status_label, 1)
        self.statusBar().addPermanentWidget(self.resume_label)
        self.statusBar().addPermanentWidget(self.queue_label)

    # Screens ---------------------------------------------------------------------------

    def show_screen(self, name: str) -> None:
        self.nav.setCurrentRow(SCREENS.index(name))

    @property
    def current_screen(self) -> str:
        return SCREENS[self.stack.currentIndex()]

    def _download_dir(self) -> Path:
        return self.settings.effective_download_dir

    def _use_recording(self, path: Path) -> None:
        self.selection.set_secret(path, recording=True)
        self.show_screen("encode")

    def _task_changed(self, task: Task) -> None:
        if task.status is TaskStatus.SUCCEEDED and task.secret_is_recording and task.secret_path:
            sent = Path(task.secret_path)  # deleted once sent: no screen may offer it any more
            self.record_view.recording_sent(sent)
            chosen = self.selection.secret
            if chosen is not None and not chosen.exists() and chosen.resolve() == sent.resolve():
                self.selection.set_secret(None)
        if task.id in self._continuing and (
            task.status.finished or not task.status.resumes_by_itself
        ):
            self._continuing.discard(task.id)
        self._show_queue()
        self._show_continuing()

    def _attach_unfinished(self) -> None:
        """Show on Encode and Decode the task each last ran, if the app continues it now."""
        newest: dict[TaskKind, Task] = {}
        for task in self.store.all(limit=50):
            newest.setdefault(task.kind, task)
        for kind, view in (
            (TaskKind.ENCODE, self.encode_view),
            (TaskKind.DECODE, self.decode_view),
        ):
            task = newest.get(kind)
            if task is not None and task.id in self._continuing:
                view.attach(task)

    def _show_continuing(self) -> None:
        tasks = [t for t in (self.store.get(i) for i in self._continuing) if t is not None]
        if not tasks:
            self.resume_label.clear()
            self.resume_label.setVisible(False)
            return
        uploads = sum(t.status in (TaskStatus.QUEUED, TaskStatus.UPLOADING) for t in tasks)
        jobs = len(tasks) - uploads
        parts = []
        if uploads:
            parts.append(f"{uploads} unfinished upload{'s' if uploads > 1 else ''}")
        if jobs:
            parts.append(f"{jobs} unfinished job{'s' if jobs > 1 else ''}")
        self.resume_label.setText(
            f'Continuing {" and ".join(parts)} · <a href="history">History</a>'
        )
        self.resume_label.setVisible(True)

    # Connection ------------------------------------------------------------------------

    def _connection_changed(self, status: ConnectionStatus, message: str) -> None:
        self._show_connection()
        self._show_queue()
        if status is ConnectionStatus.ONLINE and self.ctx.resume_on_start:
            self.manager.resume_pending()

    def _show_connection(self) -> None:
        status, message = self.connection.status, self.connection.message
        colour = tone_colour(_STATUS_TONES[status], self.palette()).name()
        incompatible = status is ConnectionStatus.INCOMPATIBLE
        shown = (
            f"The server at {self.settings.server_url} speaks another protocol version"
            if incompatible
            else message
        )
        self.status_label.setText(f'<span style="color:{colour}">●</span> {shown}')
        self.status_label.setToolTip(message)
        self.banner.setText(message if incompatible else "")
        self.banner_area.setVisible(incompatible)

    def show_about(self) -> AboutDialog:
        """The About box (versions of this app and of the server), shown."""
        if self.about is None:
            self.about = AboutDialog(
                self.settings.server_url,
                lambda: self.runtime.client.server_version(),
                self.workers,
                self,
            )
        else:
            self.about.url_line.setText(self.settings.server_url)
            self.about.refresh()
        self.about.show()
        self.about.raise_()
        return self.about

    def _show_queue(self) -> None:
        waiting = self.manager.waiting()  # the current server's only
        if waiting and not self.connection.online:
            n = len(waiting)
            self.queue_label.setText(f"{n} task{'s' if n > 1 else ''} waiting for the server")
        else:
            self.queue_label.clear()
        self.queue_label.setMinimumWidth(self.queue_label.sizeHint().width())

    # Settings --------------------------------------------------------------------------

    def _settings_saved(self, settings: ClientSettings) -> None:
        self.settings = settings
        self.manager.stop_all(StopReason.SHUTDOWN)  # they continue with the new settings
        old = self.manager.replace_runtime(
            self.ctx.runtime(settings, self.store), settings.server_url
        )
        self.runtime = self.manager.runtime
        close_runtime(old)
        self._continuing = (
            {t.id for t in self.manager.waiting()} if self.ctx.resume_on_start else set()
        )
        self.history_view.refresh()  # tasks of the other server are marked as such
        self.encode_view.update_queue()
        self._show_queue()
        self._show_continuing()
        self.connection.set(ConnectionStatus.UNKNOWN, f"Checking {settings.server_url}…")
        self.monitor.check_now()

    # Drag and drop ---------------------------------------------------------------------

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt's name
        if dropped_paths(event):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt's name
        paths = dropped_paths(event)
        if paths and self.drop_files(paths):
            event.acceptProposedAction()

    def drop_files(self, paths: list[Path]) -> bool:
        """Put dropped files where they belong (see :func:`route_drop`); whether any fit."""
        screen = self.current_screen
        if screen not in ("record", "decode"):
            screen = "encode"
        routed = route_drop(screen, paths, has_cover=self.selection.cover is not None)
        for target, path in routed:
            if target is DropTarget.COVER:
                self.selection.set_cover(path)
            elif target is DropTarget.SECRET:
                self.selection.set_secret(path)
            else:
                self.decode_view.set_stego(path)
        if routed and screen != "decode":
            self.show_screen("encode")
        return bool(routed)

    # Closing ---------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        self.shutdown()
        super().closeEvent(event)

    @property
    def closed(self) -> bool:
        """Shut down: nothing runs in the background any more."""
        return self._closed

    def shutdown(self) -> None:
        """Stop everything in the background; unfinished work continues at the next start."""
        if self._closed:
            return
        self._closed = True
        self.geometry_store.save(self)
        self.monitor.stop()
        self.record_view.shutdown()
        self.decode_view.stop_playing()
        self.history_view.stop_playing()
        self.player.stop()
        self.manager.shutdown(self.ctx.shutdown_wait_ms)
        close_runtime(self.runtime)
        self.manager.forget_passphrases()
