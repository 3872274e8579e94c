"""Encode and decode, orchestrated once for the desktop app and the CLI (Qt-free).

- :mod:`.progress`: the stages and progress events both front-ends show.
- :mod:`.store`: the checkpoint store (one row per task).
- :mod:`.steps`: the steps that move no file (capacity, sealing, the job).
- :mod:`.transfer`: the steps that move files (:func:`upload_inputs`, :func:`finish_encode`):
  the protocol's swap points.
- :mod:`.prepare`: the local half of a task (check, seal, queue; needs the passphrase).
- :mod:`.runner`: the steps in order over the store: resume, pause and cancel.
- :mod:`.workdir`: the work folder: where outputs go, and its clean-up.
- :mod:`.oneshot`: one call to a file the caller names (the CLI).

The names below are loaded when first used (:pep:`562`): a caller that needs only
:class:`Stage` (the CLI's console) does not import the codec, numpy's kernels or HTTP.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from subtone.lazy import lazy_attributes

if TYPE_CHECKING:
    from desktop.core.orchestration.oneshot import DecodeSummary, EncodeSummary, decode, encode
    from desktop.core.orchestration.prepare import prepare_decode, prepare_encode
    from desktop.core.orchestration.progress import Progress, ProgressEvent, Stage
    from desktop.core.orchestration.runner import (
        Runtime,
        is_transient,
        open_result,
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

_HOMES = {
    "COVER_MEDIA_TYPE": "desktop.core.orchestration.transfer",
    "DecodeSummary": "desktop.core.orchestration.oneshot",
    "EncodeSummary": "desktop.core.orchestration.oneshot",
    "JobFailed": "desktop.core.orchestration.steps",
    "PAYLOAD_MEDIA_TYPE": "desktop.core.orchestration.transfer",
    "PAYLOAD_NAME": "desktop.core.orchestration.transfer",
    "Progress": "desktop.core.orchestration.progress",
    "ProgressEvent": "desktop.core.orchestration.progress",
    "Runtime": "desktop.core.orchestration.runner",
    "Stage": "desktop.core.orchestration.progress",
    "StopReason": "desktop.core.stop",
    "StopToken": "desktop.core.stop",
    "Task": "desktop.core.orchestration.store",
    "TaskKind": "desktop.core.orchestration.store",
    "TaskMode": "desktop.core.orchestration.store",
    "TaskStatus": "desktop.core.orchestration.store",
    "TaskStore": "desktop.core.orchestration.store",
    "decode": "desktop.core.orchestration.oneshot",
    "discard_work": "desktop.core.orchestration.workdir",
    "encode": "desktop.core.orchestration.oneshot",
    "finish_encode": "desktop.core.orchestration.transfer",
    "is_transient": "desktop.core.orchestration.runner",
    "job_idempotency_key": "desktop.core.orchestration.steps",
    "max_secret_bytes": "desktop.core.orchestration.steps",
    "new_task_id": "desktop.core.orchestration.store",
    "open_result": "desktop.core.orchestration.runner",
    "prepare_decode": "desktop.core.orchestration.prepare",
    "prepare_encode": "desktop.core.orchestration.prepare",
    "remove_task_files": "desktop.core.orchestration.workdir",
    "run_task": "desktop.core.orchestration.runner",
    "succeeded": "desktop.core.orchestration.steps",
    "sweep_work_dir": "desktop.core.orchestration.workdir",
    "upload_inputs": "desktop.core.orchestration.transfer",
}


__getattr__ = lazy_attributes(__name__, _HOMES)


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
