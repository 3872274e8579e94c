"""The checkpoint store of encodes and decodes: every task asked for, in one SQLite file.

One row per *task* serves both as the offline queue (rows still ``queued``) and as the
history (every row, newest first) in the app; the CLI keeps a throwaway one per command. A
row is a checkpoint: the ids of what was already uploaded, the job created, the file written,
so an interrupted task (a network drop, an app restart) continues where it stopped. Upload
parts are not tracked here: the client core's session store (``uploads.sqlite3``) does that,
and a row only names the upload it refers to.

Nothing secret is stored: a queued encode keeps its *sealed* payload (ciphertext) in a file,
and ``k_pos`` (which the server sees anyway); the passphrase is never written.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
import time
import uuid
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

import platformdirs

from desktop.core.sqlite import SqliteFile

__all__ = [
    "TASKS_FILE_NAME",
    "Task",
    "TaskKind",
    "TaskMode",
    "TaskStatus",
    "TaskStore",
    "default_tasks_path",
    "new_task_id",
]

APP_NAME: Final = "subtone"
TASKS_FILE_NAME: Final = "desktop.sqlite3"
SCHEMA_VERSION: Final = 3
"""3: ``mode``; 2: ``trace_id`` (each added to an older file on first use)."""
_FILE_MODE: Final = 0o600

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS tasks (
    id                TEXT PRIMARY KEY,
    kind              TEXT NOT NULL,            -- encode | decode
    status            TEXT NOT NULL,
    server            TEXT NOT NULL,
    created_at        REAL NOT NULL,
    updated_at        REAL NOT NULL,
    input_path        TEXT NOT NULL,            -- the cover (encode) or the stego file (decode)
    input_bytes       INTEGER NOT NULL,
    secret_path       TEXT,                     -- encode: the secret as chosen
    secret_name       TEXT,
    secret_media_type TEXT,
    secret_bytes      INTEGER,
    secret_is_recording INTEGER NOT NULL DEFAULT 0,
    sealed_path       TEXT,                     -- the sealed payload (encode) or result (decode)
    payload_bytes     INTEGER,
    capacity_bytes    INTEGER,
    k_pos             TEXT NOT NULL,
    job_nonce         TEXT NOT NULL,
    input_upload_id   TEXT,                     -- upload_sessions.upload_id in uploads.sqlite3
    input_object_id   TEXT,
    payload_upload_id TEXT,                     -- upload_sessions.upload_id in uploads.sqlite3
    payload_object_id TEXT,
    job_id            TEXT,
    job_state         TEXT,
    progress          REAL NOT NULL DEFAULT 0,
    output_path       TEXT,
    output_bytes      INTEGER,
    output_media_type TEXT,
    error_code        TEXT,
    error_message     TEXT,
    trace_id          TEXT,                     -- the job's trace id, for the operators
    mode              TEXT NOT NULL DEFAULT 'lsb' -- lsb | robust (survives re-encoding)
);
CREATE INDEX IF NOT EXISTS tasks_status ON tasks (status, created_at);
"""


class TaskKind(StrEnum):
    ENCODE = "encode"
    DECODE = "decode"


class TaskMode(StrEnum):
    """How the message is hidden."""

    LSB = "lsb"
    """In the least significant bits: large capacity, exact, lost on any re-encoding."""
    ROBUST = "robust"
    """In band-energy ratios (docs/robust.md): about 100 bits per second, survives Opus,
    MP3, resampling, gain and cropping; the server sees the cover's working mix."""
    AUTO = "auto"
    """Decode only: the LSB mode if the file holds an LSB message under the passphrase,
    else the robust mode."""


class TaskStatus(StrEnum):
    QUEUED = "queued"
    """Ready to send; waits for the server (offline) or for its turn."""
    UPLOADING = "uploading"
    PROCESSING = "processing"
    DOWNLOADING = "downloading"
    PAUSED = "paused"
    """Stopped by the user: resumed only when asked."""
    NEEDS_PASSPHRASE = "needs_passphrase"  # noqa: S105 - a status, not a secret
    """Decode: the sealed result is here, but the passphrase to open it was not kept."""
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED)

    @property
    def resumes_by_itself(self) -> bool:
        """Continued without being asked when the app starts or the server comes back."""
        return self in (
            TaskStatus.QUEUED,
            TaskStatus.UPLOADING,
            TaskStatus.PROCESSING,
            TaskStatus.DOWNLOADING,
        )

    @property
    def label(self) -> str:
        return _STATUS_LABELS[self]


_STATUS_LABELS: Final = {
    TaskStatus.QUEUED: "Waiting to send",
    TaskStatus.UPLOADING: "Uploading",
    TaskStatus.PROCESSING: "Processing",
    TaskStatus.DOWNLOADING: "Downloading",
    TaskStatus.PAUSED: "Paused",
    TaskStatus.NEEDS_PASSPHRASE: "Needs the passphrase",
    TaskStatus.SUCCEEDED: "Done",
    TaskStatus.FAILED: "Failed",
    TaskStatus.CANCELLED: "Cancelled",
}


def new_task_id() -> str:
    return f"task_{uuid.uuid4().hex}"


def default_tasks_path() -> Path:
    """``<user state dir>/subtone/desktop.sqlite3`` (next to the core's ``uploads.sqlite3``)."""
    return Path(platformdirs.user_state_dir(APP_NAME)) / TASKS_FILE_NAME


@dataclass(frozen=True)
class Task:
    id: str
    kind: TaskKind
    status: TaskStatus
    server: str
    input_path: str
    input_bytes: int
    k_pos: str
    job_nonce: str
    created_at: float = 0.0
    updated_at: float = 0.0
    secret_path: str | None = None
    secret_name: str | None = None
    secret_media_type: str | None = None
    secret_bytes: int | None = None
    secret_is_recording: bool = False
    sealed_path: str | None = None
    payload_bytes: int | None = None
    capacity_bytes: int | None = None
    input_upload_id: str | None = None
    input_object_id: str | None = None
    payload_upload_id: str | None = None
    payload_object_id: str | None = None
    job_id: str | None = None
    job_state: str | None = None
    progress: float = 0.0
    output_path: str | None = None
    output_bytes: int | None = None
    output_media_type: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    trace_id: str | None = None
    """The trace id of the job's creation (``Job.trace_id``): what an operator finds the
    job by in the server's logs."""
    mode: TaskMode = TaskMode.LSB

    @property
    def input_name(self) -> str:
        return Path(self.input_path).name

    @property
    def output(self) -> Path | None:
        return Path(self.output_path) if self.output_path else None

    @property
    def reached_server(self) -> bool:
        """Something of it is on its server (an uploaded input, a job): it can only go on
        there. A task without any can be sent to another server just as well."""
        return any(
            (
                self.input_upload_id,
                self.input_object_id,
                self.payload_upload_id,
                self.payload_object_id,
                self.job_id,
            )
        )


_COLUMNS: Final = tuple(f.name for f in dataclasses.fields(Task))
_ADDED_COLUMNS: Final = {"trace_id": "TEXT", "mode": "TEXT NOT NULL DEFAULT 'lsb'"}
"""Columns added since version 1, added to an older file as it is opened."""


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a file made by an older version up to this schema (the rows stay; a newer
    client's extra columns are left alone)."""
    have = {row["name"] for row in conn.execute("PRAGMA table_info(tasks)")}
    for name, kind in _ADDED_COLUMNS.items():
        if name in have:
            continue
        try:
            conn.execute(f"ALTER TABLE tasks ADD COLUMN {name} {kind}")
        except sqlite3.OperationalError as e:  # another client added it just now
            if "duplicate column" not in str(e):
                raise


def _row_task(row: sqlite3.Row) -> Task:
    values: dict[str, Any] = {name: row[name] for name in _COLUMNS}
    values["kind"] = TaskKind(values["kind"])
    values["status"] = TaskStatus(values["status"])
    values["mode"] = TaskMode(values["mode"])
    values["secret_is_recording"] = bool(values["secret_is_recording"])
    return Task(**values)


class TaskStore:
    """Tasks in one SQLite file, created (owner-only) on first use. Thread-safe: each call
    opens its own connection."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path is not None else default_tasks_path()
        self._db = SqliteFile(
            self.path,
            _SCHEMA,
            user_version=SCHEMA_VERSION,
            file_mode=_FILE_MODE,
            on_first_use=_migrate,
        )
        self._connect = self._db.connect

    def add(self, task: Task) -> Task:
        now = time.time()
        task = dataclasses.replace(task, created_at=task.created_at or now, updated_at=now)
        values = dataclasses.asdict(task)
        values["kind"] = task.kind.value
        values["status"] = task.status.value
        values["mode"] = task.mode.value
        values["secret_is_recording"] = int(task.secret_is_recording)
        names = ", ".join(_COLUMNS)
        marks = ", ".join(f":{n}" for n in _COLUMNS)
        with self._connect() as conn:
            conn.execute(f"INSERT INTO tasks ({names}) VALUES ({marks})", values)  # noqa: S608
        return task

    def get(self, task_id: str) -> Task | None:
        with self._connect() as conn:
            row = conn.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone()
        return _row_task(row) if row is not None else None

    def require(self, task_id: str) -> Task:
        task = self.get(task_id)
        if task is None:
            raise KeyError(task_id)
        return task

    def update(self, task_id: str, **changes: Any) -> Task:
        """Set some fields (and ``updated_at``); returns the task as stored."""
        unknown = set(changes) - set(_COLUMNS)
        if unknown or {"id", "created_at"} & set(changes):
            raise ValueError(f"cannot update {sorted(unknown or changes)}")
        values = {
            k: (v.value if isinstance(v, StrEnum) else int(v) if isinstance(v, bool) else v)
            for k, v in changes.items()
        }
        values["updated_at"] = time.time()
        assignments = ", ".join(f"{k} = :{k}" for k in values)
        with self._connect() as conn:
            conn.execute(
                f"UPDATE tasks SET {assignments} WHERE id = :task_id",  # noqa: S608
                values | {"task_id": task_id},
            )
        return self.require(task_id)

    def all(self, *, limit: int | None = None) -> list[Task]:
        """Every task, newest first."""
        sql = "SELECT * FROM tasks ORDER BY created_at DESC, rowid DESC"
        with self._connect() as conn:
            if limit is not None:
                rows = conn.execute(sql + " LIMIT ?", (limit,)).fetchall()
            else:
                rows = conn.execute(sql).fetchall()
        return [_row_task(r) for r in rows]

    def unfinished(self) -> list[Task]:
        """Tasks not yet succeeded, failed or cancelled, oldest first (the queue's order)."""
        finished = tuple(s.value for s in TaskStatus if s.finished)
        with self._connect() as conn:
            rows = conn.execute(
                "SELECT * FROM tasks WHERE status NOT IN (?, ?, ?) ORDER BY created_at, rowid",
                finished,
            ).fetchall()
        return [_row_task(r) for r in rows]

    def follow_server(
        self, server: str, *, exclude: set[str] | frozenset[str] = frozenset()
    ) -> list[Task]:
        """Move the unfinished tasks that have not reached their server yet (no upload, no
        job) to ``server``; returns them as now stored. Tasks in ``exclude`` (running now) are
        left alone: a run may yet reach its server."""
        finished = tuple(s.value for s in TaskStatus if s.finished)
        moved = [
            t.id
            for t in self.unfinished()
            if t.server != server and not t.reached_server and t.id not in exclude
        ]
        if not moved:
            return []
        marks = ", ".join("?" for _ in moved)
        with self._connect() as conn:
            conn.execute(
                f"UPDATE tasks SET server = ?, updated_at = ? WHERE id IN ({marks}) "  # noqa: S608
                "AND status NOT IN (?, ?, ?) AND input_upload_id IS NULL "
                "AND input_object_id IS NULL AND payload_upload_id IS NULL "
                "AND payload_object_id IS NULL AND job_id IS NULL",
                (server, time.time(), *moved, *finished),
            )
        tasks = (self.get(task_id) for task_id in moved)
        return [t for t in tasks if t is not None and t.server == server]

    def remove(self, task_id: str) -> None:
        with self._connect() as conn:
            conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
