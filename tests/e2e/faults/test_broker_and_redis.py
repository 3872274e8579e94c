"""RabbitMQ and Redis restarted under the stack (nodes of the test's own, not the machine's):
queued jobs, job records and upload sessions all survive."""

from __future__ import annotations

import httpx
import pytest

from desktop.core.api import ApiClient
from subtone.protocol import CompletePart, JobState, UploadCreate
from tests.e2e.faults.services import private_rabbitmq, private_redis, rabbitmq_missing
from tests.e2e.faults.support import (
    download,
    expected_stego,
    finished,
    make_cover,
    restart,
    stop,
    submit_embed,
)
from tests.stack import rabbit_vhost, running_stack

pytestmark = pytest.mark.integration

MiB = 1024 * 1024


def test_jobs_queued_across_a_rabbitmq_crash_are_all_run(tmp_path):
    assert rabbitmq_missing() is None, rabbitmq_missing()  # scripts/setup.sh installs it
    with (
        private_rabbitmq(tmp_path / "rabbit") as node,
        running_stack(tmp_path / "stack", node.url) as stack,
    ):
        queue = stack.settings.QUEUE_NAME
        stop(stack, "worker")  # nobody consumes: the jobs wait in the queue
        waiting = [submit_embed(stack, make_cover(tmp_path / f"c{n}.wav", 2, seed=n))
                   for n in range(5)]  # fmt: skip
        assert node.messages(queue) == 5  # each POST returned after RabbitMQ confirmed it

        node.kill()  # a crash: no clean shutdown
        node.start()
        assert node.messages(queue) == 5  # durable queue, persistent messages

        # The API's connection died with the broker: the next job still gets through.
        waiting.append(submit_embed(stack, make_cover(tmp_path / "c5.wav", 2, seed=5)))
        restart(stack)  # the worker again
        for submitted in waiting:
            done = finished(stack, submitted.job_id)
            assert done.state is JobState.SUCCEEDED, done
            got = download(stack, done, tmp_path / "got.wav", submitted).read_bytes()
            assert got == expected_stego(submitted, tmp_path / "expected.wav")

        # A running worker rides out a broker restart too.
        node.kill()
        node.start()
        late = submit_embed(stack, make_cover(tmp_path / "c6.wav", 2, seed=6))
        assert finished(stack, late.job_id, timeout=240).state is JobState.SUCCEEDED
        assert node.messages(queue) == 0


def test_job_records_and_upload_sessions_survive_a_redis_crash(tmp_path):
    with (
        private_redis(tmp_path / "redis") as server,
        rabbit_vhost() as broker,
        running_stack(
            tmp_path / "stack", broker, redis_url=server.url, PART_SIZE_BYTES=5 * MiB
        ) as stack,
    ):
        before = submit_embed(stack, make_cover(tmp_path / "cover.wav", 3))
        assert finished(stack, before.job_id).state is JobState.SUCCEEDED
        data = bytes(range(256)) * (12 * MiB // 256)
        with ApiClient(stack.url, stack.token) as client:
            upload = client.create_upload(
                UploadCreate(name="half.bin", size=len(data), sha256=_sha256(data))
            )
            (first,) = client.presign_parts(upload.upload_id, [1]).parts
            assert httpx.put(first.url, content=data[: upload.part_size]).is_success

        server.kill()  # SIGKILL: only what the append-only file holds survives
        server.start()

        with ApiClient(stack.url, stack.token) as client:  # the token survived too
            again = client.get_job(before.job_id)
            assert again.state is JobState.SUCCEEDED and again.download_url is not None
            got = download(stack, again, tmp_path / "got.wav", before).read_bytes()
            assert got == expected_stego(before, tmp_path / "expected.wav")

            status = client.upload_status(upload.upload_id)
            assert [p.part_number for p in status.parts] == [1]  # resume from part 2
            rest = client.presign_parts(upload.upload_id, [2, 3]).parts
            parts = [CompletePart(part_number=1, etag=status.parts[0].etag)]
            for part in rest:
                start = (part.part_number - 1) * upload.part_size
                response = httpx.put(part.url, content=data[start : start + upload.part_size])
                parts.append(
                    CompletePart(part_number=part.part_number, etag=response.headers["etag"])
                )
            ref = client.complete_upload(upload.upload_id, parts)
            assert ref.size == len(data)

        after = submit_embed(stack, make_cover(tmp_path / "cover2.wav", 3, seed=2))
        assert finished(stack, after.job_id).state is JobState.SUCCEEDED


def _sha256(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()
