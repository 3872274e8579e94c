"""One SQLite file of the client's own state, opened the same way by every store that has one.

The task store (:mod:`desktop.core.orchestration.store`) and the upload sessions
(:mod:`desktop.core.sessions`) each keep a file under the user's state folder. Both need the
same things: the folder made (owner-only) on first use, the schema applied once, a busy timeout
so threads and processes can share the file, rows by name, and each use one transaction that
is committed or rolled back. This is that code, once.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

__all__ = ["DIR_MODE", "SQLITE_TIMEOUT_SECONDS", "SqliteFile"]

SQLITE_TIMEOUT_SECONDS: Final = 10.0
DIR_MODE: Final = 0o700


class SqliteFile:
    """A SQLite file created (with its folder) and given its schema on first use.

    Each :meth:`connect` opens its own connection, so the object may be shared by threads.
    ``file_mode`` (when given) is applied to the file once it exists; ``on_first_use`` runs
    once, in its own transaction, after the schema (for housekeeping such as pruning).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        schema: str,
        *,
        user_version: int | None = None,
        file_mode: int | None = None,
        on_first_use: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self._schema = schema
        self._user_version = user_version
        self._file_mode = file_mode
        self._on_first_use = on_first_use
        self._ready = False
        self._lock = threading.Lock()

    def _prepare(self, conn: sqlite3.Connection) -> None:
        # Write-ahead logging: readers never block the writer nor the writer them, so many
        # clients on one machine (the app, several CLI runs) share the file without
        # "database is locked"; writers take turns within the busy timeout.
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(self._schema)
        if self._user_version is not None:
            conn.execute(f"PRAGMA user_version = {int(self._user_version)}")
        if self._file_mode is not None:
            self.path.chmod(self._file_mode)
        if self._on_first_use is not None:
            with conn:
                self._on_first_use(conn)

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A connection inside one transaction: committed on success, rolled back on error."""
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        conn = sqlite3.connect(self.path, timeout=SQLITE_TIMEOUT_SECONDS)
        try:
            conn.row_factory = sqlite3.Row
            # With WAL, NORMAL syncs at checkpoints, not at each commit: a crash of the
            # machine may lose the last commits, never the file's consistency. Both stores
            # can lose them (the server is the reference: a session's parts and a task's job
            # are asked of it again), and a commit no longer waits for the disk, where on
            # ext4 an fsync also waits for every other file's pending writes (the stego
            # file's 500 MB copy, made at the same time).
            conn.execute("PRAGMA synchronous=NORMAL")
            if not self._ready:
                with self._lock:
                    if not self._ready:
                        self._prepare(conn)
                        self._ready = True
            with conn:
                yield conn
        finally:
            conn.close()
