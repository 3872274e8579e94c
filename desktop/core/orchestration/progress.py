"""Progress of an encode or decode: which step it is in, and how far along."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

__all__ = ["Progress", "ProgressEvent", "Stage", "notify"]


class Stage(StrEnum):
    """A step of an operation, for progress reporting."""

    PREPARE = "prepare"
    PLANE = "plane"
    HASH = "hash"
    UPLOAD = "upload"
    UPLOAD_PAYLOAD = "upload_payload"
    JOB = "job"
    DOWNLOAD = "download"
    APPLY = "apply"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS: Final = {
    Stage.PREPARE: "Sealing the secret",
    Stage.PLANE: "Reading the audio",
    Stage.HASH: "Checking the file",
    Stage.UPLOAD: "Uploading",
    Stage.UPLOAD_PAYLOAD: "Uploading the sealed secret",
    Stage.JOB: "Processing on the server",
    Stage.DOWNLOAD: "Downloading",
    Stage.APPLY: "Writing the stego file",
}


@dataclass(frozen=True)
class ProgressEvent:
    stage: Stage
    done: float
    """Bytes for uploads and downloads, 0..1 for the job, 0 or 1 for preparing."""
    total: float


Progress = Callable[[ProgressEvent], None]


def notify(progress: Progress | None, stage: Stage) -> Callable[[int, int], None]:
    """A ``(done, total)`` callback (what the uploader and downloads take) reporting ``stage``."""

    def report(done: int, total: int) -> None:
        if progress is not None:
            progress(ProgressEvent(stage, done, total))

    return report
