"""Background work off the GUI thread, reporting back only through signals.

A :class:`Worker` runs one function on a ``QThreadPool`` thread. The function gets a
``report(fraction, text)`` callable; the worker emits ``progress(float, str)`` as it goes,
then ``finished(object)`` with the result or ``failed(str code, str message)``. Its signals
object lives in the GUI thread, so every slot runs there: a worker never touches a widget.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from subtone.errors import SubtoneError

__all__ = ["Report", "Worker", "WorkerPool", "WorkerSignals"]

log = logging.getLogger(__name__)

Report = Callable[[float, str], None]
Job = Callable[[Report], Any]


class WorkerSignals(QObject):
    progress = Signal(float, str)
    finished = Signal(object)
    failed = Signal(str, str)


class Worker(QRunnable):
    def __init__(self, fn: Job, name: str = "") -> None:
        super().__init__()
        self.setAutoDelete(False)  # the pool below keeps it until it reported
        self.signals = WorkerSignals()
        self.name = name
        self._fn = fn

    def _report(self, fraction: float, text: str) -> None:
        self.signals.progress.emit(float(fraction), text)

    def run(self) -> None:
        try:
            result = self._fn(self._report)
        except SubtoneError as e:
            self.signals.failed.emit(e.code, e.message)
        except Exception as e:
            log.exception("background work %s failed", self.name or self._fn)
            self.signals.failed.emit("internal_error", f"{type(e).__name__}: {e}")
        else:
            self.signals.finished.emit(result)


class WorkerPool(QObject):
    """Starts workers on a private thread pool and holds them until they finish or fail."""

    def __init__(self, parent: QObject | None = None, *, max_threads: int = 8) -> None:
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(max_threads)
        self._alive: set[Worker] = set()

    def start(
        self,
        fn: Job,
        *,
        name: str = "",
        on_progress: Callable[[float, str], None] | None = None,
        on_finished: Callable[[Any], None] | None = None,
        on_failed: Callable[[str, str], None] | None = None,
    ) -> Worker:
        worker = Worker(fn, name)
        signals = worker.signals
        if on_progress is not None:
            signals.progress.connect(on_progress)
        if on_finished is not None:
            signals.finished.connect(on_finished)
        if on_failed is not None:
            signals.failed.connect(on_failed)
        signals.finished.connect(lambda _result: self._alive.discard(worker))
        signals.failed.connect(lambda _code, _message: self._alive.discard(worker))
        self._alive.add(worker)
        self.pool.start(worker)
        return worker

    @property
    def active(self) -> int:
        return len(self._alive)

    def wait(self, timeout_ms: int) -> bool:
        """Wait for every worker to end; whether they all did in time."""
        return self.pool.waitForDone(timeout_ms)
