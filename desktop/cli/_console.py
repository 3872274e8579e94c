"""Terminal output for the CLI: progress bars, sizes, durations, errors."""

from __future__ import annotations

from types import TracebackType
from typing import Final

from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from desktop.core.orchestration.progress import ProgressEvent, Stage
from subtone.errors import SubtoneError

__all__ = [
    "ProgressView",
    "format_duration",
    "format_size",
    "parse_size",
    "print_error",
]

_BYTE_STAGES: Final = frozenset({Stage.HASH, Stage.UPLOAD, Stage.UPLOAD_PAYLOAD, Stage.DOWNLOAD})
_UNITS: Final = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1024**3,
}


def format_size(size: int) -> str:
    """``1234567`` → ``1.2 MB``."""
    return decimal(size)


def format_duration(seconds: float) -> str:
    """``3725.5`` → ``1:02:05.5``; ``65.25`` → ``1:05.2``."""
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    if hours:
        return f"{hours}:{minutes:02d}:{secs:04.1f}"
    return f"{minutes}:{secs:04.1f}"


def parse_size(text: str) -> int:
    """``"1.5MiB"``, ``"200k"``, ``"1234"`` → bytes."""
    value = text.strip().lower().replace(" ", "")
    number = value.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = value[len(number) :]
    if unit not in _UNITS:
        raise SubtoneError(
            f"Not a size: {text!r} (use bytes, or a unit such as 200k, 1.5MB, 2MiB).",
            code="invalid_size",
        )
    try:
        amount = float(number)
    except ValueError as e:
        raise SubtoneError(f"Not a size: {text!r}.", code="invalid_size") from e
    if amount <= 0:
        raise SubtoneError("The size must be positive.", code="invalid_size")
    return max(1, int(amount * _UNITS[unit]))


def print_error(console: Console, error: SubtoneError) -> None:
    """``error [code]: message`` on one line, never parsed as markup."""
    console.print(
        Text.assemble(("error", "bold red"), f" [{error.code}]: {error.message}"), soft_wrap=True
    )


class ProgressView:
    """One bar per stage of an operation, fed by the orchestration's progress events."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[info]}"),
            TimeRemainingColumn(),
            console=console,
        )
        self._tasks: dict[Stage, TaskID] = {}
        self._labels: dict[Stage, str] = {}

    def label(self, stage: Stage, text: str) -> None:
        """Name a stage's bar (``Uploading cover.wav``) before it starts."""
        self._labels[stage] = text

    def __call__(self, event: ProgressEvent) -> None:
        info = ""
        if event.stage in _BYTE_STAGES:
            info = f"{format_size(int(event.done))} / {format_size(int(event.total))}"
        task = self._tasks.get(event.stage)
        if task is None:
            description = self._labels.get(event.stage, event.stage.label)
            task = self._progress.add_task(description, total=event.total or None, info=info)
            self._tasks[event.stage] = task
        self._progress.update(task, completed=event.done, total=event.total or None, info=info)

    def __enter__(self) -> ProgressView:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._progress.stop()
