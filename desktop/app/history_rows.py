"""What the History screen says of a task and of an unfinished upload (no Qt here)."""

from __future__ import annotations

from pathlib import Path
from typing import Final

from desktop.app.formatting import format_size, format_timestamp
from desktop.app.messages import title_for
from desktop.app.stages import DECODE_STEPS, ENCODE_STEPS, stage_of
from desktop.core.orchestration import Task, TaskKind, TaskStatus
from desktop.core.sessions import UploadSession

__all__ = [
    "OTHER_SERVER_TEXT",
    "playable",
    "session_text",
    "size_text",
    "state_text",
    "step_name",
]

OTHER_SERVER_TEXT: Final = "For another server"


def size_text(task: Task) -> str:
    """``12 MB + 40 KB → 12 MB`` (cover + sealed secret → stego file) for an encode;
    ``12 MB → 40 KB`` for a decode."""
    if task.kind is TaskKind.ENCODE:
        text = f"{format_size(task.input_bytes)} + {format_size(task.payload_bytes or 0)}"
    else:
        text = format_size(task.input_bytes)
    if task.output_bytes is not None:
        text += f" → {format_size(task.output_bytes)}"
    return text


def state_text(task: Task, *, other_server: bool = False) -> str:
    """The State column: a failure by its title, a task made for another server as such,
    else the status (with the progress while processing)."""
    if task.status is TaskStatus.FAILED and task.error_code:
        return f"Failed: {title_for(task.error_code)}"  # the code itself means nothing here
    if other_server:
        return OTHER_SERVER_TEXT
    if task.status is TaskStatus.PROCESSING:
        return f"Processing {task.progress:.0%}"
    return task.status.label


def step_name(kind: TaskKind, text: str) -> str:
    """The running step, named for the kind of task ("Uploading the stego file")."""
    stage = stage_of(text)
    steps = ENCODE_STEPS if kind is TaskKind.ENCODE else DECODE_STEPS
    return next((s.doing for s in steps if s.stage is stage), text.split(":")[0].rstrip("…"))


def playable(task: Task) -> bool:
    """A decoded voice message (or other audio secret) whose file is still there. Stego
    files are not offered: they are as large as their cover, and sound just like it."""
    output = task.output
    return (
        task.kind is TaskKind.DECODE
        and task.status is TaskStatus.SUCCEEDED
        and (task.output_media_type or "").startswith("audio/")
        and output is not None
        and output.is_file()
    )


def session_text(session: UploadSession) -> str:
    """An unfinished upload: its file, the parts storage holds, its size, when it last sent."""
    stored = len(session.etags)
    name = Path(session.file.path).name
    return (
        f"{name}: {stored} of {session.part_count} parts stored "
        f"({format_size(session.file.size)}), last sent {format_timestamp(session.updated_at)}"
    )
