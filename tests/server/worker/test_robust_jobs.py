"""The robust-mode jobs with the in-process robust engine, a local folder store and the
machine's Redis: the residual the job stores is what the in-process embed makes, an extract
finds the payload, and every refusal has its own code (``no_payload``, ``capacity_exceeded``,
``cover_too_long``, ``mode_unavailable``) before the engine is asked."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
import pytest

from server.jobs import runner
from subtone.protocol import JobKind, JobState
from subtone.robust import apply_residual_file, cover_mix, embed_file, mix_capacity, wire
from subtone.robust.engine import InProcessRobustEngine
from subtone.stego import wav
from tests.server.worker.support import TENANT, World, stored

PAYLOAD = bytes(range(60))


class CountingRobustEngine(InProcessRobustEngine):
    def __init__(self) -> None:
        self.calls = 0

    def robust_embed(self, mix, k_pos, payload):
        self.calls += 1
        return super().robust_embed(mix, k_pos, payload)

    def robust_extract(self, mix, k_pos):
        self.calls += 1
        return super().robust_extract(mix, k_pos)


@pytest.fixture
def engine() -> CountingRobustEngine:
    return CountingRobustEngine()


@pytest.fixture
def robust_world(world: World, engine: CountingRobustEngine) -> World:
    return dataclasses.replace(world, deps=dataclasses.replace(world.deps, robust=engine))


def _cover(tmp_path: Path, seconds: float = 10.0) -> Path:
    path = tmp_path / "cover.wav"
    wav.generate_cover(path, seconds, rate=44_100, channels=2, bits=16, seed=3)
    return path


def _mix(path: Path) -> bytes:
    out = io.BytesIO()
    wire.write_mix(out, cover_mix(path)[1])
    return out.getvalue()


def test_a_robust_embed_job_stores_the_residual_of_the_in_process_embed(robust_world, tmp_path):
    world = robust_world
    cover = _cover(tmp_path)
    mix = _mix(cover)
    job_id = world.job(
        JobKind.ROBUST_EMBED,
        {"mix": world.put(mix, "cover.mix"), "payload": world.put(PAYLOAD, "payload.bin")},
    )

    runner.run(job_id, deps=world.deps)

    record = world.record(job_id)
    assert record.state is JobState.SUCCEEDED, record.error_code
    assert record.params == {}  # the position key is not kept
    result = world.deps.uploads.find_object(record.result_object_id)
    assert result is not None
    assert result.key == f"t/{TENANT}/results/{job_id}/residual.bin"
    assert (result.name, result.media_type) == ("cover-residual.bin", wire.RESIDUAL_MEDIA_TYPE)
    data = stored(world, job_id)
    assert len(data) <= len(mix) / 2 < cover.stat().st_size / 5  # not the audio back
    residual = wire.read_residual(io.BytesIO(data), len(data))
    apply_residual_file(cover, residual, tmp_path / "stego.wav")
    embed_file(cover, tmp_path / "local.wav", world.k_pos, PAYLOAD)
    assert (tmp_path / "stego.wav").read_bytes() == (tmp_path / "local.wav").read_bytes()


def test_a_robust_extract_job_gives_back_the_payload_or_no_payload(robust_world, tmp_path):
    world = robust_world
    cover = _cover(tmp_path)
    embed_file(cover, tmp_path / "stego.wav", world.k_pos, PAYLOAD)
    mix = world.put(_mix(tmp_path / "stego.wav"), "stego.mix")
    found = world.job(JobKind.ROBUST_EXTRACT, {"mix": mix})
    wrong = world.job(JobKind.ROBUST_EXTRACT, {"mix": mix}, k_pos_hex=bytes(32).hex())

    runner.run(found, deps=world.deps)
    runner.run(wrong, deps=world.deps)

    assert world.record(found).state is JobState.SUCCEEDED
    assert stored(world, found) == PAYLOAD
    record = world.record(wrong)
    assert (record.state, record.error_code) == (JobState.FAILED, "no_payload")
    assert "passphrase" in (record.error_message or "")


def test_a_secret_too_large_is_refused_before_the_engine_is_asked(robust_world, engine, tmp_path):
    world = robust_world
    mix = _mix(_cover(tmp_path))
    room = mix_capacity(wire.read_mix_header(io.BytesIO(mix), len(mix)))
    job_id = world.job(
        JobKind.ROBUST_EMBED,
        {"mix": world.put(mix, "c.mix"), "payload": world.put(bytes(room + 1), "p.bin")},
    )
    runner.run(job_id, deps=world.deps)
    record = world.record(job_id)
    assert (record.state, record.error_code) == (JobState.FAILED, "capacity_exceeded")
    assert engine.calls == 0


def test_a_cover_longer_than_the_server_takes_is_refused(robust_world, engine):
    world = robust_world
    settings = world.deps.settings.model_copy(update={"MAX_ROBUST_SECONDS": 2.0})
    world = dataclasses.replace(world, deps=dataclasses.replace(world.deps, settings=settings))
    out = io.BytesIO()
    wire.write_mix(out, np.zeros(16_000 * 3, dtype=np.float32))
    job_id = world.job(JobKind.ROBUST_EXTRACT, {"mix": world.put(out.getvalue(), "long.mix")})
    runner.run(job_id, deps=world.deps)
    assert world.record(job_id).error_code == "cover_too_long"
    assert engine.calls == 0


def test_a_malformed_mix_is_refused(robust_world, engine):
    world = robust_world
    job_id = world.job(JobKind.ROBUST_EXTRACT, {"mix": world.put(b"RIFF" + bytes(60), "x.mix")})
    runner.run(job_id, deps=world.deps)
    assert world.record(job_id).error_code == "malformed_mix"
    assert engine.calls == 0


def test_a_worker_without_a_robust_engine_says_so(world):
    out = io.BytesIO()
    wire.write_mix(out, np.zeros(16_000 * 3, dtype=np.float32))
    job_id = world.job(JobKind.ROBUST_EXTRACT, {"mix": world.put(out.getvalue(), "a.mix")})
    runner.run(job_id, deps=world.deps)
    record = world.record(job_id)
    assert (record.state, record.error_code) == (JobState.FAILED, "mode_unavailable")
