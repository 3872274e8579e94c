"""One copy of the app at a time per user: two would continue the same tasks twice."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from PySide6.QtCore import QLockFile

__all__ = ["LOCK_FILE_NAME", "InstanceLock"]

LOCK_FILE_NAME: Final = "subtone-desktop.lock"
STALE_AFTER_MS: Final = 0
"""Never treat a lock as stale by age: QLockFile still takes over the lock of a copy that
died (its process is gone), which is what matters."""


class InstanceLock:
    """A ``QLockFile`` in the app's data folder, held while the app runs."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = folder / LOCK_FILE_NAME
        self._lock = QLockFile(str(self.path))
        self._lock.setStaleLockTime(STALE_AFTER_MS)

    def acquire(self) -> bool:
        """Take the lock now; ``False`` if another running copy holds it."""
        return bool(self._lock.tryLock(0))

    @property
    def holder(self) -> int | None:
        """The process id of the copy that holds the lock, when it can be read."""
        info = self._lock.getLockInfo()  # (pid, host, app), or a falsy value when unreadable
        if not info or not isinstance(info, tuple) or not isinstance(info[0], int):
            return None
        return info[0] or None

    def release(self) -> None:
        if self._lock.isLocked():
            self._lock.unlock()

    def __enter__(self) -> InstanceLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
