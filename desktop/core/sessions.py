"""Upload sessions kept on disk, so a restarted client finds its unfinished uploads.

A session ties a local file (its path, size, modification time and SHA-256) on one server to
the server's ``upload_id``. It is only a way to find the upload again: which parts are really
stored is always asked of the server (``GET /v1/uploads/{id}``). The ETags seen are kept for
diagnosis and as a fallback, never trusted over the server's list.

The store is one SQLite file under ``platformdirs.user_state_dir("subtone")``; each call opens
its own connection, so threads and processes may share it.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import platformdirs

from desktop.core.sqlite import SqliteFile

__all__ = [
    "APP_NAME",
    "DEFAULT_MAX_AGE_SECONDS",
    "SESSIONS_FILE_NAME",
    "FileIdentity",
    "SessionStore",
    "UploadSession",
    "default_sessions_path",
]

APP_NAME: Final = "subtone"
SESSIONS_FILE_NAME: Final = "uploads.sqlite3"
DEFAULT_MAX_AGE_SECONDS: Final = 30 * 24 * 3600
"""Sessions untouched this long are dropped when a store is first used (the server's uploads
expire sooner)."""

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS upload_sessions (
    upload_id   TEXT PRIMARY KEY,
    server      TEXT NOT NULL,
    path        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    mtime_ns    INTEGER NOT NULL,
    sha256      TEXT NOT NULL,
    part_size   INTEGER NOT NULL,
    part_count  INTEGER NOT NULL,
    object_id   TEXT,
    etags       TEXT NOT NULL DEFAULT '{}',
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS upload_sessions_file
    ON upload_sessions (server, path, size, mtime_ns, sha256);
"""


def default_sessions_path() -> Path:
    """``<user state dir>/subtone/uploads.sqlite3``."""
    return Path(platformdirs.user_state_dir(APP_NAME)) / SESSIONS_FILE_NAME


@dataclass(frozen=True)
class FileIdentity:
    """What makes two uploads "the same file": the same bytes at the same place."""

    path: str
    """Absolute, resolved."""
    size: int
    mtime_ns: int
    sha256: str


@dataclass(frozen=True)
class UploadSession:
    upload_id: str
    server: str
    file: FileIdentity
    part_size: int
    part_count: int
    object_id: str | None = None
    """Set once the upload completed: the object may be reused as it is."""
    etags: dict[int, str] = field(default_factory=dict)
    created_at: float = 0.0
    updated_at: float = 0.0


def _row_session(row: sqlite3.Row) -> UploadSession:
    raw = json.loads(row["etags"])
    return UploadSession(
        upload_id=row["upload_id"],
        server=row["server"],
        file=FileIdentity(row["path"], row["size"], row["mtime_ns"], row["sha256"]),
        part_size=row["part_size"],
        part_count=row["part_count"],
        object_id=row["object_id"],
        etags={int(k): str(v) for k, v in raw.items()},
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class SessionStore:
    """Upload sessions in one SQLite file (created, with its folder, on first use)."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS,
    ) -> None:
        self.path = Path(path) if path is not None else default_sessions_path()
        self._max_age = max_age_seconds
        self._db = SqliteFile(self.path, _SCHEMA, on_first_use=self._drop_stale)
        self._connect = self._db.connect

    def _drop_stale(self, conn: sqlite3.Connection) -> None:
        conn.execute(
            "DELETE FROM upload_sessions WHERE updated_at < ?", (time.time() - self._max_age,)
        )

    def find(self, server: str, file: FileIdentity) -> UploadSession | None:
        """The newest session for this file on this server, if any."""
        with self._connect() as conn:
            row = conn.execute(
                "SELECT * FROM upload_sessions WHERE server = ? AND path = ? AND size = ? "
                "AND mtime_ns = ? AND sha256 = ? ORDER BY updated_at DESC LIMIT 1",
                (server, file.path, file.size, file.mtime_ns, file.sha256),
            ).fetchone()
        return _row_session(row) if row is not None else None

    def get(self, upload_id: str) -> UploadSession | None:
        with self._connect() as conn:
            row = conn.execute(
                "SELECT * FROM upload_sessions WHERE upload_id = ?", (upload_id,)
            ).fetchone()
        return _row_session(row) if row is not None else None

    def all(self) -> list[UploadSession]:
        """Every session, newest first."""
        with self._connect() as conn:
            rows = conn.execute("SELECT * FROM upload_sessions ORDER BY updated_at DESC")
            return [_row_session(row) for row in rows]

    def save(self, session: UploadSession) -> UploadSession:
        """Insert or replace a session; returns it with its timestamps set."""
        now = time.time()
        created = session.created_at or now
        f = session.file
        with self._connect() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO upload_sessions (upload_id, server, path, size, "
                "mtime_ns, sha256, part_size, part_count, object_id, etags, created_at, "
                "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    session.upload_id,
                    session.server,
                    f.path,
                    f.size,
                    f.mtime_ns,
                    f.sha256,
                    session.part_size,
                    session.part_count,
                    session.object_id,
                    json.dumps({str(k): v for k, v in sorted(session.etags.items())}),
                    created,
                    now,
                ),
            )
        return UploadSession(
            upload_id=session.upload_id,
            server=session.server,
            file=session.file,
            part_size=session.part_size,
            part_count=session.part_count,
            object_id=session.object_id,
            etags=dict(session.etags),
            created_at=created,
            updated_at=now,
        )

    def record_part(self, upload_id: str, part_number: int, etag: str) -> None:
        """Remember a part's ETag as soon as storage accepted it."""
        with self._connect() as conn:
            conn.execute(
                "UPDATE upload_sessions SET etags = json_set(etags, ?, ?), updated_at = ? "
                "WHERE upload_id = ?",
                (f'$."{int(part_number)}"', etag, time.time(), upload_id),
            )

    def mark_completed(self, upload_id: str, object_id: str) -> None:
        with self._connect() as conn:
            conn.execute(
                "UPDATE upload_sessions SET object_id = ?, updated_at = ? WHERE upload_id = ?",
                (object_id, time.time(), upload_id),
            )

    def forget(self, upload_id: str) -> None:
        with self._connect() as conn:
            conn.execute("DELETE FROM upload_sessions WHERE upload_id = ?", (upload_id,))

    def prune(self, older_than_seconds: float) -> int:
        """Drop sessions untouched for this long (the server has expired them); returns how many."""
        with self._connect() as conn:
            cursor = conn.execute(
                "DELETE FROM upload_sessions WHERE updated_at < ?",
                (time.time() - older_than_seconds,),
            )
            return cursor.rowcount
