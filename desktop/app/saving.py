"""Saving a task's output where the person asks (Qt-free): the name offered, the places
refused, and a copy that reports its progress and never leaves half a file behind."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Final

from desktop.core.orchestration import Task, TaskKind
from subtone.errors import SubtoneError
from subtone.files import atomic_output

__all__ = ["STEGO_SUFFIX", "copy_with_progress", "refused_target", "suggested_path"]

STEGO_SUFFIX: Final = "-stego"
"""Added to the cover's name for the stego file offered, so the cover is never overwritten."""
COPY_CHUNK_BYTES: Final = 4 * 1024 * 1024
SAVED_FILE_MODE: Final = 0o644
"""A saved stego file or secret: readable by others, like any file the user saves."""


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def suggested_path(task: Task, folder: Path) -> Path:
    """Where the save dialog starts: ``<cover>-stego.wav`` for an encode, the secret's own
    name for a decode; never the task's input file itself."""
    source = task.output
    if task.kind is TaskKind.ENCODE:
        cover = Path(task.input_path)
        name = f"{cover.stem}{STEGO_SUFFIX}{cover.suffix or '.wav'}"
    else:
        name = source.name if source is not None else "secret"
    candidate = folder / name
    n = 2
    while _same(candidate, Path(task.input_path)):
        candidate = folder / f"{Path(name).stem}-{n}{Path(name).suffix}"
        n += 1
    return candidate


def refused_target(task: Task, target: Path) -> str | None:
    """Why ``target`` may not be written (``None``: it may)."""
    if _same(target, Path(task.input_path)):
        what = "cover" if task.kind is TaskKind.ENCODE else "stego file"
        return (
            f"{target.name} is the original {what}: saving there would overwrite it. "
            "Choose another name."
        )
    return None


def copy_with_progress(
    source: Path, target: Path, progress: Callable[[int, int], None] | None = None
) -> int:
    """Copy ``source`` to ``target`` in chunks (slow for a big file: call it off the GUI
    thread); ``target`` appears only once complete. Returns the bytes copied; raises
    :class:`SubtoneError` (``save_failed``) with the reason."""
    done = 0
    try:
        total = source.stat().st_size
        with source.open("rb") as src, atomic_output(target, mode=SAVED_FILE_MODE) as dst:
            while chunk := src.read(COPY_CHUNK_BYTES):
                dst.write(chunk)
                done += len(chunk)
                if progress is not None:
                    progress(done, total)
    except OSError as e:
        raise SubtoneError(f"Could not save to {target}: {e.strerror}.", code="save_failed") from e
    return done
