"""Encode and decode, orchestrated once for the desktop app and the CLI (Qt-free).

- :mod:`.progress`: the stages and progress events both front-ends show.
- :mod:`.store`: the checkpoint store (one row per task).
- :mod:`.steps`: the steps that move no file (capacity, sealing, the job).
- :mod:`.transfer`: the steps that move files (:func:`upload_inputs`, :func:`finish_encode`):
  the protocol's swap points.
- :mod:`.runner`: the steps in order over the store: resume, pause and cancel.
- :mod:`.workdir`: the work folder: where outputs go, and its clean-up.
- :mod:`.oneshot`: one call to a file the caller names (the CLI).
"""

from desktop.core.orchestration.oneshot import DecodeSummary, EncodeSummary, decode, encode
from desktop.core.orchestration.progress import Progress, ProgressEvent, Stage
from desktop.core.orchestration.runner import (
    Runtime,
    is_transient,
    open_result,
    prepare_decode,
    prepare_encode,
    run_task,
)
from desktop.core.orchestration.steps import (
    JobFailed,
    job_idempotency_key,
    max_secret_bytes,
    succeeded,
)
from desktop.core.orchestration.store import (
    Task,
    TaskKind,
    TaskMode,
    TaskStatus,
    TaskStore,
    new_task_id,
)
from desktop.core.orchestration.transfer import (
    COVER_MEDIA_TYPE,
    PAYLOAD_MEDIA_TYPE,
    PAYLOAD_NAME,
    finish_encode,
    upload_inputs,
)
from desktop.core.orchestration.workdir import discard_work, remove_task_files, sweep_work_dir
from desktop.core.stop import StopReason, StopToken

__all__ = [
    "COVER_MEDIA_TYPE",
    "PAYLOAD_MEDIA_TYPE",
    "PAYLOAD_NAME",
    "DecodeSummary",
    "EncodeSummary",
    "JobFailed",
    "Progress",
    "ProgressEvent",
    "Runtime",
    "Stage",
    "StopReason",
    "StopToken",
    "Task",
    "TaskKind",
    "TaskMode",
    "TaskStatus",
    "TaskStore",
    "decode",
    "discard_work",
    "encode",
    "finish_encode",
    "is_transient",
    "job_idempotency_key",
    "max_secret_bytes",
    "new_task_id",
    "open_result",
    "prepare_decode",
    "prepare_encode",
    "remove_task_files",
    "run_task",
    "succeeded",
    "sweep_work_dir",
    "upload_inputs",
]
