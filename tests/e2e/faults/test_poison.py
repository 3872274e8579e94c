"""A poison job: a cover that crashes the model. It ends in the dead-letter queue with a
failed job record after its retries; Triton's model is reloaded each time, and the worker
goes on serving other jobs."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from dramatiq.common import xq_name

from server.jobs.tasks import RETRIES_EXHAUSTED
from server.standalone.tritonserver import MODEL_REPOSITORY
from subtone.protocol import JobState
from subtone.stego import wav
from tests.e2e.faults.support import (
    download,
    expected_stego,
    finished,
    make_cover,
    record,
    submit_embed,
)
from tests.stack import rabbit_vhost, running_stack

pytestmark = pytest.mark.integration

POISON_MODEL = Path(__file__).with_name("poison") / "model.py"
PLANE_MARKER = [0xDE, 0xAD, 0xBE, 0xEF]
"""What poison/model.py looks for at the start of a window's LSB plane."""
MARKER = 1000 + np.unpackbits(np.array(PLANE_MARKER, np.uint8), bitorder="little").astype(np.int16)
"""The first samples of the poisoned cover: their LSBs are PLANE_MARKER."""
MAX_RETRIES = 2


def poisoned_repository(folder: Path) -> Path:
    repository = shutil.copytree(
        MODEL_REPOSITORY, folder, ignore=shutil.ignore_patterns("__pycache__")
    )
    version = repository / "stego_embed" / "1"
    (version / "model.py").rename(version / "real_model.py")
    shutil.copy(POISON_MODEL, version / "model.py")
    return repository


def poisoned_cover(path: Path) -> Path:
    make_cover(path, 3)
    with path.open("r+b") as f:
        info, _ = wav.read_header(f)
        f.seek(info.prefix_size)
        f.write(MARKER.astype("<i2").tobytes())  # the first samples of window 0
    return path


def dead_letters(vhost_url: str, queue: str) -> int:
    vhost = vhost_url.rsplit("/", 1)[1]
    out = subprocess.run(
        ["rabbitmqctl", "-q", "--no-table-headers", "list_queues", "-p", vhost, "name", "messages"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return int(dict(line.split("\t") for line in out.splitlines() if "\t" in line)[queue])


def test_a_cover_that_crashes_the_model_is_dead_lettered_and_others_still_run(tmp_path):
    settings = {"JOB_MAX_RETRIES": MAX_RETRIES, "RETRY_MIN_BACKOFF_SECONDS": 0.2,
                "RETRY_MAX_BACKOFF_SECONDS": 1.0}  # fmt: skip
    with (
        rabbit_vhost() as broker,
        running_stack(
            tmp_path / "stack",
            broker,
            model_repository=poisoned_repository(tmp_path / "models"),
            **settings,
        ) as stack,
    ):
        poison = submit_embed(stack, poisoned_cover(tmp_path / "poison.wav"))
        failed = finished(stack, poison.job_id)

        assert failed.state is JobState.FAILED, failed
        assert failed.error is not None and failed.error.code == RETRIES_EXHAUSTED
        assert "model crashed" in failed.error.message
        assert record(stack, poison.job_id).attempts == MAX_RETRIES + 1
        assert dead_letters(broker, xq_name(stack.settings.QUEUE_NAME)) == 1
        log = (stack.supervisor.logs / "worker.log").read_text()
        assert log.count("crashed (its stub died): reloading it") == MAX_RETRIES + 1

        healthy = submit_embed(stack, make_cover(tmp_path / "fine.wav", 3, seed=4))
        done = finished(stack, healthy.job_id)
        assert done.state is JobState.SUCCEEDED, done
        got = download(stack, done, tmp_path / "got.wav", healthy).read_bytes()
        assert got == expected_stego(healthy, tmp_path / "expected.wav")
