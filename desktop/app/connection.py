"""The status bar's view of the server: ``/readyz`` asked on a timer, off the GUI thread, and
``/version`` once per server (again after it was unreachable: it may have been upgraded)."""

from __future__ import annotations

import logging
from collections.abc import Callable

from PySide6.QtCore import QObject, QTimer

from desktop.app.state import ConnectionState, ConnectionStatus
from desktop.app.workers import Report, WorkerPool
from desktop.core.api import protocol_problem
from subtone.errors import SubtoneError
from subtone.protocol import Readiness, ServerVersion

__all__ = ["ConnectionMonitor", "describe_readiness"]

log = logging.getLogger(__name__)


def describe_readiness(readiness: Readiness, url: str) -> tuple[ConnectionStatus, str]:
    if readiness.ready:
        return ConnectionStatus.ONLINE, f"Connected to {url}"
    failing = ", ".join(sorted(k for k, v in readiness.checks.items() if v != "ok")) or "unknown"
    return (
        ConnectionStatus.NOT_READY,
        f"The server at {url} is not ready ({failing}); work waits until it is.",
    )


class ConnectionMonitor(QObject):
    """Asks ``check()`` every ``interval_ms`` (more often while offline) and updates ``state``."""

    def __init__(
        self,
        state: ConnectionState,
        workers: WorkerPool,
        check: Callable[[], Readiness],
        url: Callable[[], str],
        *,
        version: Callable[[], ServerVersion] | None = None,
        interval_ms: int,
        offline_interval_ms: int,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.state = state
        self._workers = workers
        self._check = check
        self._version = version
        self._url = url
        self.versions: dict[str, ServerVersion] = {}
        """What each server said of its version (asked once, until it is unreachable)."""
        self._interval = interval_ms
        self._offline_interval = offline_interval_ms
        self._in_flight = False
        self._again = False
        self._stopped = False
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self.check_now)

    def start(self) -> None:
        self._stopped = False
        self.check_now()

    def stop(self) -> None:
        self._stopped = True
        self.timer.stop()

    def check_now(self) -> None:
        """Ask now (once the check in flight, if any, has answered)."""
        if self._stopped:
            return
        if self._in_flight:
            self._again = True
            return
        self._in_flight = True
        self.timer.stop()
        url = self._url()
        known = self.versions.get(url)

        def job(report: Report) -> tuple[Readiness, ServerVersion | None]:
            readiness = self._check()
            return readiness, known if known is not None else self._ask_version(url)

        def failed(code: str, message: str) -> None:
            self.versions.pop(url, None)  # it may come back upgraded
            if code == "server_unreachable":
                self._answered(
                    url,
                    ConnectionStatus.OFFLINE,
                    f"Offline: the server at {url} cannot be reached. Recording and encodes "
                    "still work; they are sent when it is back.",
                )
            else:
                self._answered(
                    url,
                    ConnectionStatus.ERROR,
                    f"The server at {url} answered with an error: {message}",
                )

        self._workers.start(
            job,
            name="readyz",
            on_finished=lambda answer: self._described(url, *answer),
            on_failed=failed,
        )

    def _ask_version(self, url: str) -> ServerVersion | None:
        """The server's version (on the worker thread); ``None`` where it cannot say."""
        if self._version is None:
            return None
        try:
            return self._version()
        except SubtoneError as e:
            log.warning("the server at %s does not say its version: %s", url, e)
            return None

    def _described(self, url: str, readiness: Readiness, version: ServerVersion | None) -> None:
        if version is not None:
            self.versions[url] = version
            problem = protocol_problem(version)
            if problem is not None:
                self._answered(
                    url,
                    ConnectionStatus.INCOMPATIBLE,
                    f"The server at {url} cannot be used. {problem}",
                )
                return
        self._answered(url, *describe_readiness(readiness, url))

    def _answered(self, url: str, status: ConnectionStatus, message: str) -> None:
        self._in_flight = False
        if self._stopped:
            return
        if url != self._url():  # the server was changed meanwhile: this answer is not its
            self._again = False
            self.check_now()
            return
        self.state.set(status, message)
        if self._again:
            self._again = False
            self.check_now()
            return
        online = status is ConnectionStatus.ONLINE
        self.timer.start(self._interval if online else self._offline_interval)
