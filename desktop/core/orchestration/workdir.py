"""The work folder of the tasks: sealed payloads waiting to be sent, results, recovered
secrets; where a task's outputs go, and the clean-up of what no task needs any more."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Final, Protocol

from desktop.core.envelope import safe_name
from desktop.core.orchestration.store import Task, TaskStatus, TaskStore

__all__ = [
    "PRIVATE_FILE_MODE",
    "RECOVERED_FOLDER",
    "RESULTS_FOLDER",
    "SEALED_FOLDER",
    "OutputPlan",
    "WorkDirOutputs",
    "discard_work",
    "folder",
    "remove_task_files",
    "sweep_work_dir",
]

SEALED_FOLDER: Final = "sealed"
RESULTS_FOLDER: Final = "results"
RECOVERED_FOLDER: Final = "recovered"
DIR_MODE: Final = 0o700
PRIVATE_FILE_MODE: Final = 0o600
"""A sealed payload or a recovered secret: the owner's only."""


class OutputPlan(Protocol):
    """Where a task's output file goes (asked when it is written, so a resumed task needs no
    stored target)."""

    def stego(self, task: Task) -> Path:
        """An encode's stego file."""
        ...

    def secret(self, task: Task, name: str) -> Path:
        """A decode's recovered secret, whose own (safe) name is ``name``."""
        ...


class WorkDirOutputs:
    """The app's plan: each task's output in its own folder of the work folder."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir

    def stego(self, task: Task) -> Path:
        return folder(self.work_dir / RESULTS_FOLDER / task.id) / safe_name(task.input_name)

    def secret(self, task: Task, name: str) -> Path:
        return folder(self.work_dir / RECOVERED_FOLDER / task.id) / name


def folder(path: Path) -> Path:
    """``path``, made (owner-only) if needed."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    return path


def discard_work(task: Task, work_dir: Path | None = None) -> None:
    """A task that failed or was cancelled cannot go on: drop what only its run needed (the
    sealed payload of an encode, the downloaded sealed result of a decode, the LSB plane or
    robust working mix not yet sent: a decode's is found only with ``work_dir``, it has no
    sealed file yet). Its inputs (the cover, the secret, a recording not sent) stay."""
    if task.status not in (TaskStatus.FAILED, TaskStatus.CANCELLED):
        return
    if task.sealed_path:
        Path(task.sealed_path).unlink(missing_ok=True)
        Path(task.sealed_path).with_suffix(".plane").unlink(missing_ok=True)
        Path(task.sealed_path).with_suffix(".mix").unlink(missing_ok=True)
    if work_dir is not None:
        (work_dir / SEALED_FOLDER / f"{task.id}.plane").unlink(missing_ok=True)
        (work_dir / SEALED_FOLDER / f"{task.id}.mix").unlink(missing_ok=True)


def _task_folders(work_dir: Path, task_id: str) -> list[Path]:
    return [work_dir / RESULTS_FOLDER / task_id, work_dir / RECOVERED_FOLDER / task_id]


def remove_task_files(work_dir: Path, task: Task) -> None:
    """Delete the app's own files of a task being forgotten: its output in the work folder
    and its sealed file. Copies saved elsewhere, and the task's inputs, are not touched."""
    if task.sealed_path and Path(task.sealed_path).resolve().is_relative_to(work_dir.resolve()):
        Path(task.sealed_path).unlink(missing_ok=True)
    for path in _task_folders(work_dir, task.id):
        shutil.rmtree(path, ignore_errors=True)


def sweep_work_dir(store: TaskStore, work_dir: Path) -> list[Path]:
    """At start (nothing running): delete what no task needs any more; returns what went.

    That is: half-written files a crash left (``.*.part``), sealed files of tasks that are
    gone or finished, and output folders of tasks no longer in the store.
    """
    removed: list[Path] = []
    sealed = work_dir / SEALED_FOLDER
    for kind in (sealed, work_dir / RESULTS_FOLDER, work_dir / RECOVERED_FOLDER):
        if not kind.is_dir():
            continue
        for leftover in kind.rglob(".*.part"):
            leftover.unlink(missing_ok=True)
            removed.append(leftover)
    if sealed.is_dir():
        for path in sealed.iterdir():
            own = path.suffix in (".sealed", ".result", ".plane", ".mix")
            task = store.get(path.stem) if own else None
            if path.is_file() and (task is None or task.status.finished):
                path.unlink(missing_ok=True)
                removed.append(path)
    for kind_name in (RESULTS_FOLDER, RECOVERED_FOLDER):
        outputs = work_dir / kind_name
        if not outputs.is_dir():
            continue
        for path in outputs.iterdir():
            if path.is_dir() and store.get(path.name) is None:
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    return removed
