"""A stop flag that can also break a blocking read at once (Qt-free).

Long calls of the client core take a ``threading.Event`` and check it between steps. A call
blocked on the network (an event stream that sends nothing for a while) only sees the flag
at its next line. :class:`StopSignal` is an ``Event`` that also runs callbacks when it is
set, so such a call can register one that closes its connection from the stopping side.

A :class:`StopToken` adds *why* a run of a task was stopped (pause, cancel, shutdown): the
orchestration (:mod:`desktop.core.orchestration`) leaves the task paused, cancelled, or as it
was, accordingly.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from enum import StrEnum

__all__ = ["StopReason", "StopSignal", "StopToken"]

log = logging.getLogger(__name__)


class StopSignal(threading.Event):
    """A ``threading.Event`` that runs its callbacks (once each) when set."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._next = 0

    def set(self) -> None:
        with self._lock:
            super().set()
            callbacks, self._callbacks = list(self._callbacks.values()), {}
        for callback in callbacks:
            _run(callback)

    def on_set(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Run ``callback`` when set (at once if already set); returns a remover."""
        with self._lock:
            if not self.is_set():
                key = self._next
                self._next += 1
                self._callbacks[key] = callback

                def remove() -> None:
                    with self._lock:
                        self._callbacks.pop(key, None)

                return remove
        _run(callback)
        return _nothing


def _run(callback: Callable[[], None]) -> None:
    try:
        callback()
    except Exception:  # a callback that fails must not stop the others
        log.exception("stop callback %r failed", callback)


def _nothing() -> None:
    """A remover with nothing to remove."""


class StopReason(StrEnum):
    PAUSE = "pause"
    """The user paused: the task waits until resumed."""
    CANCEL = "cancel"
    """The user gave up: the server job is cancelled too."""
    SHUTDOWN = "shutdown"
    """The client is closing: the task continues by itself at the next start."""


class StopToken:
    """Asks a run to stop at its next check, and says why; the core's cancel ``Event`` is
    :attr:`event`.

    ``event`` may be given (a caller's own cancel ``Event``): when it is set without
    :meth:`stop`, the reason is ``unset_reason``.
    """

    def __init__(
        self,
        event: threading.Event | None = None,
        *,
        unset_reason: StopReason = StopReason.SHUTDOWN,
    ) -> None:
        self.event: threading.Event = event if event is not None else StopSignal()
        """A :class:`StopSignal` unless given: it breaks a blocking wait on the server's event
        stream at once when set."""
        self._reason: StopReason | None = None
        self._unset_reason = unset_reason

    def stop(self, reason: StopReason) -> None:
        if self._reason is None or reason is StopReason.CANCEL:
            self._reason = reason
        self.event.set()

    @property
    def reason(self) -> StopReason | None:
        if self._reason is None and self.event.is_set():
            return self._unset_reason
        return self._reason

    @property
    def stopped(self) -> bool:
        return self.event.is_set()
