"""The steps of an encode or a decode as the screens list them (Qt-free).

The pipeline reports each step as a line of text that starts with the core's stage label
("Uploading: 3 MB of 12 MB · …"). Here that label is recognised, renamed for the kind of
task (a decode seals nothing), and the steps are weighted into one overall fraction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from desktop.core.orchestration import Stage

__all__ = ["DECODE_STEPS", "ENCODE_STEPS", "Step", "StepProgress", "stage_of"]


@dataclass(frozen=True)
class Step:
    stage: Stage
    name: str
    """What the list shows, as a task to do ("Upload the cover")."""
    doing: str
    """What the progress line says while it runs ("Uploading the cover")."""
    weight: float
    """Its share of the overall bar (uploads and the server's work take longest)."""


ENCODE_STEPS: Final = (
    Step(Stage.PREPARE, "Seal the secret", "Sealing the secret", 1),
    Step(Stage.PLANE, "Read the cover", "Reading the cover", 3),
    Step(Stage.HASH, "Check what is sent", "Checking what is sent", 1),
    Step(Stage.UPLOAD, "Send the cover's LSB plane", "Sending the cover's LSB plane", 2),
    Step(Stage.UPLOAD_PAYLOAD, "Upload the sealed secret", "Uploading the sealed secret", 1),
    Step(Stage.JOB, "Hide it in the cover (server)", "Hiding it in the cover", 3),
    Step(Stage.DOWNLOAD, "Download the changes", "Downloading the changes", 1),
    Step(Stage.APPLY, "Write the stego file", "Writing the stego file", 3),
)
DECODE_STEPS: Final = (
    Step(Stage.PREPARE, "Derive the key", "Deriving the key from the passphrase", 1),
    Step(Stage.PLANE, "Read the stego file", "Reading the stego file", 3),
    Step(Stage.HASH, "Check what is sent", "Checking what is sent", 1),
    Step(Stage.UPLOAD, "Send its LSB plane", "Sending the stego file's LSB plane", 2),
    Step(Stage.JOB, "Find the message (server)", "Looking for the message", 3),
    Step(Stage.DOWNLOAD, "Download and open it", "Downloading the message", 1),
)

_BY_LABEL: Final = sorted(Stage, key=lambda s: len(s.label), reverse=True)


def stage_of(text: str) -> Stage | None:
    """The stage a progress line is about (longest label first: "Uploading the sealed
    secret" before "Uploading"); ``None`` for other lines ("Preparing…")."""
    for stage in _BY_LABEL:
        if text.startswith(stage.label):
            return stage
    return None


class StepProgress:
    """Which steps are done, which one runs, and the overall fraction."""

    def __init__(self, steps: tuple[Step, ...]) -> None:
        self.steps = steps
        self.current = -1
        """Index of the running step (-1: none yet)."""
        self.fraction = 0.0
        """How far the running step is."""
        self.finished = False

    def reset(self) -> None:
        self.current, self.fraction, self.finished = -1, 0.0, False

    def index_of(self, stage: Stage) -> int | None:
        for i, step in enumerate(self.steps):
            if step.stage is stage:
                return i
        return None

    def update(self, fraction: float, text: str) -> str:
        """Take one progress line; returns it with the step named for this kind of task."""
        stage = stage_of(text)
        index = self.index_of(stage) if stage is not None else None
        if index is None or stage is None:
            return text
        if index >= self.current:  # a resumed task skips the steps already done
            self.current, self.fraction = index, max(0.0, min(1.0, fraction))
        return self.steps[index].doing + text[len(stage.label) :]

    def finish(self) -> None:
        self.current, self.fraction, self.finished = len(self.steps), 1.0, True

    def done(self, index: int) -> bool:
        return (
            self.finished
            or index < self.current
            or (index == self.current and self.fraction >= 1.0)
        )

    @property
    def overall(self) -> float:
        if self.finished:
            return 1.0
        total = sum(s.weight for s in self.steps)
        before = sum(s.weight for s in self.steps[: max(0, self.current)])
        running = self.steps[self.current].weight * self.fraction if self.current >= 0 else 0.0
        return (before + running) / total if total else 0.0
