"""A stop flag that can also break a blocking read at once (Qt-free).

Long calls of the client core take a ``threading.Event`` and check it between steps. A call
blocked on the network (an event stream that sends nothing for a while) only sees the flag
at its next line. :class:`StopSignal` is an ``Event`` that also runs callbacks when it is
set, so such a call can register one that closes its connection from the stopping side.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

__all__ = ["StopSignal"]

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
