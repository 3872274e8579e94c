"""What the fault tests do to a stack: submit an embed job the way the client does (seal
locally, upload, create), wait on it, and check its result bit for bit against the codec."""

from __future__ import annotations

import os
import secrets
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from desktop.core.api import ApiClient
from desktop.core.envelope import KdfParams, seal
from desktop.core.uploader import Uploader
from server.integrations.localstore import LocalStore
from server.jobs.repository import JobRecord, JobRepository
from subtone.protocol import Job, JobCreate, JobKind, JobParams
from subtone.stego import codec, patch, plane, wav
from subtone.stego.engine import InProcessEngine
from tests.stack import Stack

FAST_KDF = KdfParams(log2_n=10, r=8, p=1)
"""Cheap scrypt for the tests' own sealing (the format records the parameters)."""
POLL_SECONDS = 0.05


def make_cover(path: Path, megabytes: float, seed: int = 1) -> Path:
    wav.generate_cover(path, megabytes * 1e6 / (44_100 * 4), rate=44_100, channels=2, bits=16,
                       seed=seed)  # fmt: skip
    return path


@dataclass
class Submitted:
    job_id: str
    cover: Path | None
    """The cover, where the job was made from one (else only its plane exists)."""
    plane: Path
    k_pos: bytes
    payload: bytes


def submit_embed(
    stack: Stack, cover: Path, *, secret: bytes | None = None, key: str | None = None
) -> Submitted:
    """An embed of ``cover`` as a client sends it: its LSB plane and a sealed payload."""
    lsb = cover.with_suffix(".plane")
    with cover.open("rb") as src, lsb.open("wb") as dst:
        plane.write_plane(src, dst)
    submitted = submit_plane(stack, lsb, secret=secret, key=key)
    return Submitted(submitted.job_id, cover, lsb, submitted.k_pos, submitted.payload)


def submit_plane(
    stack: Stack, lsb: Path, *, secret: bytes | None = None, key: str | None = None
) -> Submitted:
    """An embed job over the plane ``lsb`` (a long job needs only a large plane)."""
    sealed = seal(
        secret or os.urandom(3000),
        name="secret.bin",
        media_type="application/octet-stream",
        passphrase=secrets.token_hex(8),
        position_kdf=FAST_KDF,
    )
    with ApiClient(stack.url, stack.token) as client, Uploader(client) as uploader:
        plane_ref = uploader.upload_file(lsb).object
        payload_ref = uploader.upload_bytes(sealed.payload, name="payload.bin").object
        job = client.create_job(
            JobCreate(
                kind=JobKind.EMBED,
                inputs={"plane": plane_ref.id, "payload": payload_ref.id},
                params=JobParams(k_pos=sealed.k_pos.hex()),
            ),
            idempotency_key=key or secrets.token_hex(8),
        )
    return Submitted(job.id, None, lsb, sealed.k_pos, sealed.payload)


def job(stack: Stack, job_id: str) -> Job:
    with ApiClient(stack.url, stack.token) as client:
        return client.get_job(job_id)


def record(stack: Stack, job_id: str) -> JobRecord:
    """The job as the server stores it (attempts and lost runs included)."""
    found = JobRepository(stack.redis, prefix=stack.settings.REDIS_PREFIX, ttl_seconds=60).get(
        job_id
    )
    assert found is not None
    return found


def wait_until(condition: Callable[[], object], what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(POLL_SECONDS)


def finished(stack: Stack, job_id: str, timeout: float = 180.0) -> Job:
    wait_until(lambda: job(stack, job_id).state.finished, f"job {job_id} to finish", timeout)
    return job(stack, job_id)


def download_result(stack: Stack, done: Job, dest: Path) -> Path:
    """The job's result object, as stored."""
    assert done.download_url is not None, done
    with ApiClient(stack.url, stack.token) as client, dest.open("wb") as out:
        client.download(done.download_url, out)
    return dest


def download(stack: Stack, done: Job, dest: Path, submitted: Submitted) -> Path:
    """The stego file the client makes of the embed job ``done``: its result (a patch)
    downloaded and applied to the submitted cover."""
    assert submitted.cover is not None
    patch_file = download_result(stack, done, dest.with_suffix(".patch"))
    with patch_file.open("rb") as f:
        patch.apply_patch_file(submitted.cover, f, dest, k_pos=submitted.k_pos)
    return dest


def expected_stego(submitted: Submitted, dest: Path) -> bytes:
    """The stego file the job must lead to, computed here by the codec on the same inputs."""
    assert submitted.cover is not None
    codec.embed_file(
        submitted.cover, dest, k_pos=submitted.k_pos, payload=submitted.payload,
        engine=InProcessEngine(),
    )  # fmt: skip
    return dest.read_bytes()


def pid_of(stack: Stack, name: str) -> int:
    return stack.supervisor.pids()[name]


def kill(stack: Stack, name: str) -> int:
    """SIGKILL one of the stack's processes (and its children: Triton's model stubs);
    supervisord starts it again by itself. Returns the killed pid."""
    pid = pid_of(stack, name)
    os.killpg(pid, signal.SIGKILL)
    wait_until(lambda: not _alive(pid), f"{name} to die", 30)
    return pid


def stop(stack: Stack, name: str) -> None:
    """Stop one of the stack's processes for good (until :func:`restart`)."""
    stack.supervisor.stop_service(name, report=lambda _: None)


def restart(stack: Stack) -> None:
    """Start again whatever of the stack is not running (``subtone standalone up``)."""
    stack.supervisor.up(report=lambda _: None)


def _alive(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    return done == 0


def open_uploads(stack: Stack) -> list[object]:
    """Multipart uploads left open in the stack's local store."""
    store = LocalStore(stack.settings.localstore_root, stack.supervisor.signing_secret())
    return list(store.list_multipart_uploads("t/"))
