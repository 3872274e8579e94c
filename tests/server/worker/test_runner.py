"""The job runner with the in-process engine, a local folder store and the machine's Redis."""

from __future__ import annotations

import hashlib
import io
import logging
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
import redis

from server.integrations.storage import StorageUnavailable
from server.integrations.triton import TritonUnavailable
from server.jobs import runner
from server.jobs.progress import JobInterrupted
from server.jobs.repository import JobRecord, JobRepository
from server.uploads.repository import ObjectRecord
from subtone.protocol import JobKind, JobState
from subtone.stego import codec, patch
from tests.server.worker.support import (
    ENGINE,
    OTHER_TENANT,
    PAYLOAD,
    TENANT,
    FailingEngine,
    SlowEngine,
    World,
    cover_bytes,
    extract,
    make_deps,
    patched,
    plane_of,
    stored,
)

# -- success ---------------------------------------------------------------------------------


def test_an_embed_job_succeeds_and_its_result_extracts_bit_exact(world, tmp_path):
    cover = cover_bytes(tmp_path, seconds=3.0)
    job_id = world.embed_job(cover, PAYLOAD)

    runner.run(job_id, deps=world.deps)

    record = world.record(job_id)
    assert record.state is JobState.SUCCEEDED
    assert record.progress == 1.0
    assert record.result_object_id == runner.result_object_id(job_id)
    assert record.params == {}  # the position key is not kept
    result = world.deps.uploads.find_object(record.result_object_id)
    assert result is not None
    assert result.key == f"t/{TENANT}/results/{job_id}/patch.bin"
    assert (result.tenant, result.name, result.media_type) == (
        TENANT,
        "cover-patch.bin",
        patch.MEDIA_TYPE,
    )
    data = stored(world, job_id)
    assert len(data) == result.size < len(cover) / 12  # a patch, not audio
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    stego = patched(cover, data, world.k_pos)
    assert len(stego) == len(cover) and stego != cover
    assert extract(stego, world.k_pos) == PAYLOAD
    assert world.leftovers() == []


def test_an_extract_job_gives_back_the_sealed_payload(world, tmp_path):
    cover = cover_bytes(tmp_path, seconds=3.0, bits=24, channels=1)
    stego = io.BytesIO()
    codec.embed_stream(io.BytesIO(cover), stego, k_pos=world.k_pos, payload=PAYLOAD, engine=ENGINE)
    job_id = world.extract_job(stego.getvalue())

    runner.run(job_id, deps=world.deps)

    record = world.record(job_id)
    assert record.state is JobState.SUCCEEDED
    assert stored(world, job_id) == PAYLOAD
    result = world.deps.uploads.find_object(runner.result_object_id(job_id))
    assert result is not None
    assert result.key.endswith(f"/results/{job_id}/payload.bin")
    assert result.sha256 == hashlib.sha256(PAYLOAD).hexdigest()


# -- idempotency -------------------------------------------------------------------------------


class FlakyJobs(JobRepository):
    """Redis drops the connection the first time the job is marked succeeded."""

    failures = 1

    def succeed(self, job_id: str, result_object_id: str) -> JobRecord | None:
        if self.failures:
            self.failures -= 1
            raise redis.ConnectionError("connection reset (test)")
        return super().succeed(job_id, result_object_id)


def test_a_job_run_twice_gives_one_result_object_with_identical_bytes(
    settings, redis_client, store, tmp_path
):
    jobs = FlakyJobs(redis_client, prefix=settings.REDIS_PREFIX, ttl_seconds=3600)
    world = World(make_deps(settings, redis_client, store, jobs=jobs), store)
    job_id = world.embed_job(cover_bytes(tmp_path), PAYLOAD)

    with pytest.raises(redis.ConnectionError):
        runner.run(job_id, deps=world.deps)  # the result is stored, the job not yet marked
    assert world.record(job_id).state is JobState.QUEUED
    first = world.result_files(job_id)
    first_bytes = [p.read_bytes() for p in first]

    runner.run(job_id, deps=world.deps)  # the redelivery

    record = world.record(job_id)
    assert record.state is JobState.SUCCEEDED
    assert record.attempts == 2
    assert world.result_files(job_id) == first  # one object, same key
    assert [p.read_bytes() for p in first] == first_bytes  # identical bytes
    assert record.result_object_id == runner.result_object_id(job_id)
    assert world.leftovers() == []


def test_a_redelivered_finished_job_is_left_alone(world, tmp_path):
    job_id = world.embed_job(cover_bytes(tmp_path), PAYLOAD)
    runner.run(job_id, deps=world.deps)
    before = world.record(job_id)

    runner.run(job_id, deps=world.deps)

    assert world.record(job_id) == before


# -- invalid inputs ----------------------------------------------------------------------------


def _embed(
    cover: Callable[[Path], bytes], payload: bytes = PAYLOAD
) -> Callable[[World, Path], str]:
    return lambda world, tmp: world.embed_job(cover(tmp), payload)


def _extract_plain_cover(world: World, tmp: Path) -> str:
    return world.extract_job(cover_bytes(tmp))


def _raw_plane(data: Callable[[Path], bytes]) -> Callable[[World, Path], str]:
    def make(world: World, tmp: Path) -> str:
        lsb = world.put(data(tmp), "cover.plane")
        return world.job(JobKind.EMBED, {"plane": lsb, "payload": world.put(PAYLOAD, "s.bin")})

    return make


def _embed_with(lsb: Callable[[World, Path], ObjectRecord]) -> Callable[[World, Path], str]:
    def make(world: World, tmp: Path) -> str:
        inputs = {"plane": lsb(world, tmp), "payload": world.put(PAYLOAD, "s.bin")}
        return world.job(JobKind.EMBED, inputs)

    return make


def _other_tenants(world: World, tmp: Path) -> ObjectRecord:
    return world.put_plane(cover_bytes(tmp), tenant=OTHER_TENANT)


def _gone_from_storage(world: World, tmp: Path) -> ObjectRecord:
    lsb = world.put_plane(cover_bytes(tmp))
    world.store.delete(lsb.key)
    return lsb


def _of_another_size(world: World, tmp: Path) -> ObjectRecord:
    lsb = world.put_plane(cover_bytes(tmp))
    world.deps.uploads.save_object(lsb.model_copy(update={"size": lsb.size + 1}))
    return lsb


def _with_a_wrong_checksum(world: World, tmp: Path) -> ObjectRecord:
    lsb = world.put_plane(cover_bytes(tmp))
    world.deps.uploads.save_object(lsb.model_copy(update={"sha256": "0" * 64}))
    return lsb


def _bad_position_key(world: World, tmp: Path) -> str:
    return world.job(
        JobKind.EMBED,
        {"plane": world.put_plane(cover_bytes(tmp)), "payload": world.put(PAYLOAD, "s.bin")},
        k_pos_hex="abcd",
    )


@pytest.mark.parametrize(
    ("make_job", "code"),
    [
        (_raw_plane(lambda tmp: b"this is not a plane at all" * 100), "malformed_plane"),
        (_raw_plane(lambda tmp: plane_of(cover_bytes(tmp))[:-1000]), "malformed_plane"),
        (_raw_plane(lambda tmp: cover_bytes(tmp)), "malformed_plane"),
        (_embed(lambda tmp: cover_bytes(tmp, seconds=0.05)), "capacity_exceeded"),
        (_embed(lambda tmp: cover_bytes(tmp), payload=b""), "empty_secret"),
        (_extract_plain_cover, "no_payload"),
        (_embed_with(_other_tenants), "input_missing"),
        (_embed_with(_gone_from_storage), "input_missing"),
        (_embed_with(_of_another_size), "input_mismatch"),
        (_embed_with(_with_a_wrong_checksum), "checksum_mismatch"),
        (_bad_position_key, "invalid_params"),
    ],
)
def test_invalid_inputs_fail_with_their_code_and_leave_nothing_behind(
    world, tmp_path, make_job, code
):
    job_id = make_job(world, tmp_path)

    runner.run(job_id, deps=world.deps)  # settled: not raised, not retried

    record = world.record(job_id)
    assert (record.state, record.error_code) == (JobState.FAILED, code)
    assert record.error_message
    assert record.result_object_id is None
    assert world.result_files(job_id) == []
    assert world.leftovers() == []


def test_a_secret_over_the_limit_is_refused(settings, redis_client, store, tmp_path):
    small = settings.model_copy(update={"MAX_SECRET_BYTES": 100})
    world = World(make_deps(small, redis_client, store), store)
    job_id = world.embed_job(cover_bytes(tmp_path), PAYLOAD)

    runner.run(job_id, deps=world.deps)

    assert world.record(job_id).error_code == "secret_too_large"


# -- cancel, transient errors, shutdown, bugs ----------------------------------------------------


def test_a_job_cancelled_while_it_runs_stops_with_no_output(
    settings, redis_client, store, tmp_path
):
    world = World(make_deps(settings, redis_client, store), store)
    job_id = world.embed_job(cover_bytes(tmp_path, seconds=6.0), PAYLOAD)
    cancel = threading.Event()

    def on_window() -> None:
        if not cancel.is_set():
            cancel.set()
            world.deps.jobs.cancel(job_id)  # what the API does on DELETE

    slow = make_deps(settings, redis_client, store, engine=SlowEngine(0.1, on_window))
    runner.run(job_id, deps=slow)

    record = world.record(job_id)
    assert record.state is JobState.CANCELLED
    assert 0.0 <= record.progress < 1.0
    assert record.result_object_id is None
    assert world.result_files(job_id) == []
    assert world.leftovers() == []


class UnavailableStore:
    """The local store, unreachable from the first write of the result on (a part, or the
    whole of a result smaller than a part)."""

    def __init__(self, inner):
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def upload_part(self, key, upload_id, part_number, data):
        raise StorageUnavailable("storage went away (test)")

    def put_bytes(self, key, data, content_type):
        raise StorageUnavailable("storage went away (test)")


def test_a_storage_outage_requeues_the_job_and_raises(settings, redis_client, store, tmp_path):
    world = World(make_deps(settings, redis_client, store), store)
    job_id = world.embed_job(cover_bytes(tmp_path), PAYLOAD)
    deps = make_deps(settings, redis_client, UnavailableStore(store))

    with pytest.raises(StorageUnavailable):
        runner.run(job_id, deps=deps)

    assert world.record(job_id).state is JobState.QUEUED
    assert world.leftovers() == []


def test_a_triton_outage_requeues_the_job_and_raises(settings, redis_client, store, tmp_path):
    world = World(make_deps(settings, redis_client, store), store)
    job_id = world.embed_job(cover_bytes(tmp_path), PAYLOAD)
    deps = make_deps(
        settings, redis_client, store, engine=FailingEngine(TritonUnavailable("down (test)"))
    )

    with pytest.raises(TritonUnavailable):
        runner.run(job_id, deps=deps)

    record = world.record(job_id)
    assert (record.state, record.attempts) == (JobState.QUEUED, 1)
    assert world.leftovers() == []


def test_a_shutting_down_worker_hands_the_job_back(settings, redis_client, store, tmp_path):
    world = World(make_deps(settings, redis_client, store), store)
    job_id = world.embed_job(cover_bytes(tmp_path, seconds=6.0), PAYLOAD)
    deps = make_deps(settings, redis_client, store, engine=SlowEngine(0.05))
    deps.stopping.set()

    with pytest.raises(JobInterrupted):
        runner.run(job_id, deps=deps)

    assert world.record(job_id).state is JobState.QUEUED
    assert world.leftovers() == []


def test_an_unexpected_error_fails_the_job_and_logs_no_secret(
    settings, redis_client, store, tmp_path, caplog
):
    world = World(make_deps(settings, redis_client, store), store)
    job_id = world.embed_job(cover_bytes(tmp_path), PAYLOAD)
    deps = make_deps(settings, redis_client, store, engine=FailingEngine(ZeroDivisionError("bug")))

    with caplog.at_level(logging.DEBUG):
        runner.run(job_id, deps=deps)

    record = world.record(job_id)
    assert (record.state, record.error_code) == (JobState.FAILED, runner.INTERNAL_ERROR)
    assert record.error_message == runner.INTERNAL_ERROR_MESSAGE
    assert "ZeroDivisionError" in caplog.text  # the operators have the traceback
    assert world.k_pos.hex() not in caplog.text
    assert PAYLOAD.hex()[:64] not in caplog.text
    assert world.leftovers() == []


def test_progress_is_reported_while_the_job_runs(settings, redis_client, store, tmp_path):
    world = World(make_deps(settings, redis_client, store), store)
    job_id = world.embed_job(cover_bytes(tmp_path, seconds=20.0), PAYLOAD)
    seen: list[float] = []
    deps = make_deps(
        settings,
        redis_client,
        store,
        engine=SlowEngine(0.05, lambda: seen.append(world.record(job_id).progress)),
    )

    runner.run(job_id, deps=deps)

    assert world.record(job_id).state is JobState.SUCCEEDED
    assert any(0.0 < p < 1.0 for p in seen)
    assert seen == sorted(seen)
