"""About Subtone: this app's version and protocol, and the server's, asked when it opens."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from PySide6 import __version__ as PYSIDE_VERSION  # noqa: N812 - a constant
from PySide6.QtCore import Qt, qVersion
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLabel, QWidget

from desktop.app.messages import describe_error
from desktop.app.theme import Tone, set_tone
from desktop.app.widgets.layout import page, wrapped_label
from desktop.app.workers import Report, WorkerPool
from desktop.core.api import UNKNOWN_SERVER_VERSION, protocol_problem
from subtone.protocol import PROTOCOL_VERSION, ServerVersion
from subtone.version import __version__

__all__ = ["AboutDialog", "version_line"]

TAGLINE: Final = (
    "Hide a voice message, or any file, inside a cover audio file, and get it back with a "
    "passphrase. The secret is compressed and encrypted on this computer: the server only "
    "ever sees ciphertext."
)
COMPATIBLE: Final = "This app and the server speak the same protocol."


def version_line(version: str, protocol: int) -> str:
    if version == UNKNOWN_SERVER_VERSION:
        return f"protocol {protocol} (an older server: its own version is not known)"
    return f"Subtone {version} · protocol {protocol}"


class AboutDialog(QDialog):
    """Shows the versions at once, and the server's when it answers (off the GUI thread)."""

    def __init__(
        self,
        server_url: str,
        ask: Callable[[], ServerVersion],
        workers: WorkerPool,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setObjectName("about")
        self.setWindowTitle("About Subtone")
        self._ask = ask
        self._workers = workers
        self.server_version: ServerVersion | None = None
        heading = QLabel(f"<h2>Subtone {__version__}</h2>", self)
        heading.setObjectName("about.heading")
        tagline = wrapped_label("about.tagline", self, TAGLINE)
        self.app_line = QLabel(version_line(__version__, PROTOCOL_VERSION), self)
        self.app_line.setObjectName("about.app")
        self.url_line = QLabel(server_url, self)
        self.url_line.setObjectName("about.server_url")
        self.url_line.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.server_line = QLabel(self)
        self.server_line.setObjectName("about.server")
        self.verdict = wrapped_label("about.verdict", self)
        self.toolkit_line = QLabel(f"Qt {qVersion()} · PySide6 {PYSIDE_VERSION}", self)
        self.toolkit_line.setObjectName("about.toolkit")
        set_tone(self.toolkit_line, Tone.MUTED)
        form = QFormLayout()
        form.addRow("This app:", self.app_line)
        form.addRow("Server:", self.url_line)
        form.addRow("Server version:", self.server_line)
        form.addRow("Toolkit:", self.toolkit_line)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.setObjectName("about.buttons")
        buttons.rejected.connect(self.reject)
        page(self, heading, tagline, form, self.verdict, buttons)
        self.setMinimumWidth(460)
        self.refresh()

    def refresh(self) -> None:
        """Ask the server its version again."""
        self.server_line.setText("Asking the server…")
        set_tone(self.server_line, Tone.MUTED)
        self.verdict.clear()
        ask = self._ask

        def job(report: Report) -> ServerVersion:
            return ask()

        self._workers.start(
            job, name="server version", on_finished=self._answered, on_failed=self._failed
        )

    def _answered(self, version: ServerVersion) -> None:
        self.server_version = version
        self.server_line.setText(version_line(version.server, version.protocol))
        set_tone(self.server_line, None)
        problem = protocol_problem(version)
        self.verdict.setText(problem or COMPATIBLE)
        set_tone(self.verdict, Tone.ERROR if problem else Tone.OK)

    def _failed(self, code: str, message: str) -> None:
        self.server_version = None
        self.server_line.setText("not known")
        set_tone(self.server_line, Tone.MUTED)
        self.verdict.setText(describe_error(code, message))
        set_tone(self.verdict, Tone.ERROR)
