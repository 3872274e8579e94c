"""Encode → decode end to end on the real standalone stack, through the client core."""

from __future__ import annotations

import os
import time
from pathlib import Path

import httpx
import pytest

from desktop.core.api import ApiClient
from desktop.core.api_errors import ApiError
from desktop.core.orchestration import decode, encode
from desktop.core.sessions import SessionStore
from desktop.core.uploader import Uploader
from server.integrations.localstore import LocalStore
from subtone.errors import SubtoneError
from subtone.protocol import JobCreate, JobKind, JobParams, JobState
from subtone.stego import wav
from tests.planes import random_plane

PASSPHRASE = "pass-by-reference is the protocol"


def cover(path: Path, seconds: float = 20.0) -> Path:
    wav.generate_cover(path, seconds, rate=44_100, channels=2, bits=16, seed=3)
    return path


def client_for(stack, token: str | None = None) -> ApiClient:
    return ApiClient(stack.url, token or stack.token)


def test_encode_then_decode_gives_the_secret_back(stack, tmp_path):
    secret = tmp_path / "plans.pdf"
    secret.write_bytes(os.urandom(40_000))
    out = tmp_path / "stego.wav"
    with client_for(stack) as client, Uploader(client, store=SessionStore(tmp_path / "s.db")) as up:
        summary = encode(
            client, cover(tmp_path / "cover.wav"), secret, out, PASSPHRASE, uploader=up
        )
        assert out.stat().st_size == (tmp_path / "cover.wav").stat().st_size
        assert summary.k >= 1
        result = decode(client, out, tmp_path / "recovered", PASSPHRASE, uploader=up)
    assert result.output.read_bytes() == secret.read_bytes()
    assert result.name == "plans.pdf"


def test_wrong_passphrase_fails_plainly(stack, tmp_path):
    secret = tmp_path / "note.txt"
    secret.write_text("the eagle lands at dawn")
    out = tmp_path / "stego.wav"
    with client_for(stack) as client, Uploader(client, store=SessionStore(tmp_path / "s.db")) as up:
        encode(client, cover(tmp_path / "cover.wav", 5.0), secret, out, PASSPHRASE, uploader=up)
        with pytest.raises(SubtoneError) as e:
            decode(client, out, tmp_path / "recovered", "not the passphrase", uploader=up)
    assert e.value.code in ("no_payload", "wrong_passphrase")
    assert not (tmp_path / "recovered").exists() or not any((tmp_path / "recovered").iterdir())


def _wait_finished(client: ApiClient, job_id: str, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get_job(job_id)
        if job.state.finished:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {job.state} after {timeout} s")


def test_an_input_that_is_not_a_plane_fails_in_the_worker_with_its_code(stack, tmp_path):
    bogus = tmp_path / "cover.plane"
    bogus.write_bytes(b"RIFF" + os.urandom(6 * 1024 * 1024))
    payload = tmp_path / "payload.bin"
    payload.write_bytes(os.urandom(300))
    with client_for(stack) as client, Uploader(client, store=SessionStore(tmp_path / "s.db")) as up:
        cover_ref = up.upload_file(bogus).object
        payload_ref = up.upload_file(payload).object
        job = client.create_job(
            JobCreate(
                kind=JobKind.EMBED,
                inputs={"plane": cover_ref.id, "payload": payload_ref.id},
                params=JobParams(k_pos="ab" * 32),
            ),
            idempotency_key=f"bogus-{time.time_ns()}",
        )
        done = _wait_finished(client, job.id)
    assert done.state is JobState.FAILED
    assert done.error is not None and done.error.code == "malformed_plane"
    assert "plane" in done.error.message


def test_another_tenant_sees_nothing(stack, tmp_path):
    payload = tmp_path / "p.bin"
    payload.write_bytes(os.urandom(100))
    with client_for(stack) as alice, Uploader(alice, store=SessionStore(tmp_path / "s.db")) as up:
        ref = up.upload_file(payload).object
        job = alice.create_job(
            JobCreate(kind=JobKind.EXTRACT, inputs={"plane": ref.id},
                      params=JobParams(k_pos="cd" * 32)),
            idempotency_key=f"iso-{time.time_ns()}",
        )  # fmt: skip
        _wait_finished(alice, job.id)
    with client_for(stack, stack.other_token) as bob:
        for call in (lambda: bob.get_job(job.id), lambda: bob.cancel_job(job.id)):
            with pytest.raises(ApiError) as e:
                call()
            assert e.value.status == 404
        assert job.id not in {j.id for j in bob.list_jobs().jobs}
        with pytest.raises(ApiError) as e:
            bob.create_job(
                JobCreate(kind=JobKind.EXTRACT, inputs={"plane": ref.id},
                          params=JobParams(k_pos="cd" * 32)),
                idempotency_key="steal",
            )  # fmt: skip
        assert e.value.status == 404


def test_readyz_reports_every_dependency(stack):
    body = httpx.get(f"{stack.url}/readyz", timeout=5).json()
    assert body["ready"] is True
    assert set(body["checks"]) >= {"redis", "broker", "storage", "triton"}


def test_a_job_cancelled_through_the_api_stops_its_worker_and_leaves_nothing(stack, tmp_path):
    payload = tmp_path / "payload.bin"
    payload.write_bytes(os.urandom(2000))
    with client_for(stack) as client, Uploader(client, store=SessionStore(tmp_path / "s.db")) as up:
        cover_ref = up.upload_file(random_plane(tmp_path / "long.plane", 1_200_000_000)).object
        payload_ref = up.upload_file(payload).object
        job = client.create_job(
            JobCreate(
                kind=JobKind.EMBED,
                inputs={"plane": cover_ref.id, "payload": payload_ref.id},
                params=JobParams(k_pos="ef" * 32),
            ),
            idempotency_key=f"cancel-{time.time_ns()}",
        )
        deadline = time.monotonic() + 60
        # Cancelled as soon as a worker runs it (the job takes a few seconds).
        while (running := client.get_job(job.id)).state is not JobState.RUNNING:
            assert not running.state.finished, running
            assert time.monotonic() < deadline, "the job never started"
            time.sleep(0.05)
        asked = client.cancel_job(job.id)
        assert asked.state in (JobState.RUNNING, JobState.CANCELLED)
        done = _wait_finished(client, job.id, timeout=60)
    assert done.state is JobState.CANCELLED
    assert done.progress < 1.0
    assert done.result is None and done.download_url is None
    results = stack.settings.localstore_root / "t"
    assert not [p for p in results.rglob(f"results/{job.id}/*") if p.is_file()]
    # The worker aborted its multipart upload of the output: no part of it is left.
    store = LocalStore(stack.settings.localstore_root, stack.supervisor.signing_secret())
    assert [u for u in store.list_multipart_uploads("t/") if job.id in u.key] == []
