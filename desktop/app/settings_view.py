"""Settings: which server, the API token, parallel parts and their size, the download folder;
a connection test."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import platformdirs
from pydantic import ValidationError
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QGroupBox, QLabel, QLineEdit, QSpinBox, QWidget

from desktop.app.dialogs import Dialogs
from desktop.app.messages import describe_error
from desktop.app.settings import SettingsStore
from desktop.app.theme import Tone, set_tone
from desktop.app.widgets import FileField, action_button, page, row, title, wrapped_label
from desktop.app.widgets.layout import STRETCH, FormSection
from desktop.app.workers import Report, WorkerPool
from desktop.core.api import ApiClient, protocol_problem
from desktop.core.config import ClientSettings
from desktop.core.uploader import MAX_PARALLEL_PARTS, MAX_PART_SIZE, MIN_PART_SIZE
from subtone.errors import SubtoneError

__all__ = ["DEFAULT_PART_SIZE_MIB", "SettingsView", "check_connection", "usable_download_dir"]

MiB = 1024 * 1024
DEFAULT_PART_SIZE_MIB = 16
"""What the part-size box offers once ticked (the standard server's own default)."""


def check_connection(client: ApiClient, has_token: bool) -> str:
    """Ask ``/readyz`` (and, with a token, list jobs to check it); a line for the person."""
    readiness = client.readiness()
    if not readiness.ready:
        failing = ", ".join(sorted(k for k, v in readiness.checks.items() if v != "ok"))
        return f"The server answers but is not ready: {failing or 'unknown'}."
    problem = protocol_problem(client.server_version())
    if problem is not None:
        raise SubtoneError(problem, code="protocol_mismatch")
    if not has_token:
        return "Connected: the server is ready. No token is set: most servers need one."
    try:
        client.list_jobs()
    except SubtoneError as e:
        if e.code in ("unauthorized", "forbidden"):
            raise SubtoneError(
                f"The server is ready, but it refused the token: {e.message}", code=e.code
            ) from e
        raise
    return "Connected: the server is ready and the token works."


def usable_download_dir(settings: ClientSettings) -> ClientSettings:
    """The settings with a download folder that exists. The platform's own Downloads folder
    (the default the screen shows) is created when missing, or the documents folder is used
    where it cannot be; a folder the person typed that does not exist is refused."""
    folder = settings.download_dir
    default = Path(platformdirs.user_downloads_dir())
    if folder is None or folder == default:
        try:
            default.mkdir(parents=True, exist_ok=True)
        except OSError:
            fallback = Path(platformdirs.user_documents_dir())
            return settings.model_copy(update={"download_dir": fallback})
        return settings.model_copy(update={"download_dir": None})  # follows the platform
    if not folder.is_dir():
        raise SubtoneError(f"The folder {folder} does not exist.", code="no_such_folder")
    return settings


class SettingsView(QWidget):
    saved = Signal(object)
    """The :class:`ClientSettings` just saved."""

    def __init__(
        self,
        store: SettingsStore,
        settings: ClientSettings,
        workers: WorkerPool,
        dialogs: Dialogs,
        make_client: Callable[[ClientSettings], ApiClient],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("settings")
        self.store = store
        self.settings = settings
        self.workers = workers
        self.dialogs = dialogs
        self.make_client = make_client

        self.test_result = wrapped_label("settings.test_result", self)
        self.status = wrapped_label("settings.status", self)
        self.save_button = action_button("settings.save", "Save", self, default=True)
        page(
            self,
            title("Settings", self),
            self._server_box(),
            self._transfer_box(),
            row((self.status, 1), self.save_button),
            STRETCH,
        )
        self.save_button.clicked.connect(self.save)
        self.show_settings(settings)

    def _server_box(self) -> QGroupBox:
        self.url = QLineEdit(self)
        self.url.setObjectName("settings.url")
        self.url.setPlaceholderText("http://127.0.0.1:8600")
        self.token = QLineEdit(self)
        self.token.setObjectName("settings.token")
        self.token.setEchoMode(QLineEdit.EchoMode.Password)
        self.token.setPlaceholderText("The API token your administrator gave you")
        self.test_button = action_button("settings.test", "Test connection", self)
        self.test_button.clicked.connect(self.test)
        return FormSection(
            "Server",
            ("Server URL:", self.url),
            ("API token:", self.token),
            (None, row(self.test_button, (self.test_result, 1))),
            parent=self,
        )

    def _transfer_box(self) -> QGroupBox:
        self.parallel = QSpinBox(self)
        self.parallel.setObjectName("settings.parallel")
        self.parallel.setRange(1, MAX_PARALLEL_PARTS)
        self.parallel.setMaximumWidth(90)
        self.part_size_set = QCheckBox("Ask the server for parts of", self)
        self.part_size_set.setObjectName("settings.part_size.set")
        self.part_size = QSpinBox(self)
        self.part_size.setObjectName("settings.part_size")
        self.part_size.setRange(MIN_PART_SIZE // MiB, MAX_PART_SIZE // MiB)
        self.part_size.setSuffix(" MiB")
        self.part_size.setMaximumWidth(120)
        self.part_size_note = wrapped_label("settings.part_size.note", self)
        self.part_size_set.toggled.connect(self._part_size_toggled)
        self.folder = FileField(
            "settings.download_dir",
            "A folder (drop one here)",
            self._choose_folder,
            self,
            edit_name="settings.download_dir",
        )
        return FormSection(
            "Transfers",
            ("Parts sent at once:", self.parallel),
            ("Part size:", row(self.part_size_set, self.part_size, STRETCH)),
            ("", self.part_size_note),
            ("Save files to:", self.folder),
            parent=self,
        )

    @property
    def download_dir(self) -> QLineEdit:
        return self.folder.edit

    def show_settings(self, settings: ClientSettings) -> None:
        self.settings = settings
        self.url.setText(settings.server_url)
        self.token.setText(settings.token or "")
        self.parallel.setValue(settings.parallel_parts)
        size = settings.part_size_bytes
        self.part_size.setValue(size // MiB if size else DEFAULT_PART_SIZE_MIB)
        self.part_size_set.setChecked(size is not None)
        self._part_size_toggled(size is not None)
        self.download_dir.setText(str(settings.effective_download_dir))

    def edited(self) -> ClientSettings:
        """The settings as typed; raises :class:`SubtoneError` when they are not valid."""
        folder = self.download_dir.text().strip()
        values = self.settings.model_dump() | {
            "server_url": self.url.text().strip(),
            "token": self.token.text().strip() or None,
            "parallel_parts": self.parallel.value(),
            "part_size_bytes": self.part_size.value() * MiB
            if self.part_size_set.isChecked()
            else None,
            "download_dir": Path(folder).expanduser() if folder else None,
        }
        try:
            return ClientSettings.model_validate(values)
        except ValidationError as e:
            problems = "; ".join(str(err["msg"]) for err in e.errors())
            raise SubtoneError(f"Check the settings: {problems}.", code="invalid_settings") from e

    def _part_size_toggled(self, on: bool) -> None:
        self.part_size.setEnabled(on)
        self.part_size_note.setText(
            "For new uploads. The server keeps it within S3's rules (5 MiB to 5 GiB, at most "
            "10,000 parts) and may choose larger parts for a very large file."
            if on
            else "The server chooses the part size of each upload."
        )

    def _choose_folder(self) -> Path | None:
        start = Path(self.download_dir.text() or Path.home())
        return self.dialogs.choose_folder(self, "Save files to", start)

    def save(self) -> None:
        try:
            settings = usable_download_dir(self.edited())
            place = self.store.save(settings)
        except SubtoneError as e:
            self._say(self.status, describe_error(e.code, e.message), ok=False)
            return
        except OSError as e:
            self._say(self.status, f"The settings could not be saved: {e.strerror}.", ok=False)
            return
        self.settings = settings
        self._say(self.status, f"Saved. {place.description}", ok=True)
        self.saved.emit(settings)

    def test(self) -> None:
        try:
            settings = self.edited()
        except SubtoneError as e:
            self._say(self.test_result, describe_error(e.code, e.message), ok=False)
            return
        self.test_button.setEnabled(False)
        set_tone(self.test_result, None)
        self.test_result.setText(f"Asking {settings.server_url}/readyz…")
        make_client = self.make_client

        def job(report: Report) -> str:
            with make_client(settings) as client:
                return check_connection(client, bool(settings.token))

        self.workers.start(
            job,
            name="test connection",
            on_finished=self._tested_ok,
            on_failed=self._tested_failed,
        )

    def _tested_ok(self, message: str) -> None:
        self.test_button.setEnabled(True)
        self._say(self.test_result, message, ok="not ready" not in message)

    def _tested_failed(self, code: str, message: str) -> None:
        self.test_button.setEnabled(True)
        self._say(self.test_result, describe_error(code, message), ok=False)

    @staticmethod
    def _say(label: QLabel, text: str, *, ok: bool) -> None:
        set_tone(label, Tone.OK if ok else Tone.ERROR)
        label.setText(text)
