"""Helpers of the worker's tests: jobs and objects recorded the way the API records them,
generated covers, slowed or failing engines, and rabbitmqctl queries."""

from __future__ import annotations

import hashlib
import io
import secrets
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import redis

from server.integrations.localstore import LocalStore
from server.integrations.storage import ObjectStore
from server.jobs.lease import JobLeases
from server.jobs.repository import JobRecord, JobRepository
from server.jobs.runner import RunnerDeps
from server.kit.clock import utcnow
from server.kit.ids import new_id
from server.settings import Settings
from server.uploads.repository import ObjectRecord, UploadRepository
from subtone.protocol import JobKind
from subtone.stego import codec, patch, plane, wav
from subtone.stego.engine import EmbedTask, ExtractTask, InProcessEngine, WindowEngine

REDIS_URL = "redis://127.0.0.1:6379/0"
TENANT = "alice"
OTHER_TENANT = "bob"
PART_SIZE_BYTES = 256 * 1024
"""Small parts, so that a test cover spans several."""
PROGRESS_INTERVAL_SECONDS = 0.02
HEARTBEAT_SECONDS = 0.1
TTL_SECONDS = 3600
LEASE_SECONDS = 1.5
ENGINE = InProcessEngine()
PAYLOAD = bytes(range(256)) * 40


def make_deps(
    settings: Settings,
    client: redis.Redis,
    store: ObjectStore,
    engine: WindowEngine | None = None,
    jobs: JobRepository | None = None,
) -> RunnerDeps:
    prefix = settings.REDIS_PREFIX
    return RunnerDeps(
        jobs=jobs or JobRepository(client, prefix=prefix, ttl_seconds=TTL_SECONDS),
        leases=JobLeases(client, prefix=prefix, ttl_seconds=LEASE_SECONDS),
        uploads=UploadRepository(client, prefix=prefix, ttl_seconds=TTL_SECONDS),
        store=store,
        engine=engine or InProcessEngine(),
        settings=settings,
        progress_interval_seconds=PROGRESS_INTERVAL_SECONDS,
        heartbeat_seconds=HEARTBEAT_SECONDS,
    )


def cover_bytes(
    tmp_path: Path, seconds: float = 3.0, *, channels: int = 2, bits: int = 16
) -> bytes:
    """A generated PCM WAV cover (a window holds about 3 s of stereo at 44.1 kHz)."""
    path = tmp_path / f"cover-{uuid.uuid4().hex[:6]}.wav"
    wav.generate_cover(path, seconds, channels=channels, bits=bits)
    data = path.read_bytes()
    path.unlink()
    return data


def plane_of(audio: bytes) -> bytes:
    """The LSB plane a client uploads for the WAV ``audio``."""
    out = io.BytesIO()
    plane.write_plane(io.BytesIO(audio), out)
    return out.getvalue()


def patched(cover: bytes, patch_bytes: bytes, k_pos: bytes) -> bytes:
    """What the client makes of an embed's result: its cover with the patch applied."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "cover.wav"
        source.write_bytes(cover)
        out = Path(tmp) / "stego.wav"
        patch.apply_patch_file(source, io.BytesIO(patch_bytes), out, k_pos=k_pos)
        return out.read_bytes()


@dataclass
class World:
    """Objects and jobs of the tests, recorded the way the API records them."""

    deps: RunnerDeps
    store: LocalStore
    k_pos: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    covers: dict[str, bytes] = field(default_factory=dict)

    def put(self, data: bytes, name: str, tenant: str = TENANT) -> ObjectRecord:
        object_id = new_id("obj")
        key = f"t/{tenant}/uploads/{object_id}/{name}"
        self.store.put_bytes(key, data, "application/octet-stream")
        record = ObjectRecord(
            id=object_id,
            tenant=tenant,
            key=key,
            name=name,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            media_type="application/octet-stream",
            created_at=utcnow(),
        )
        self.deps.uploads.save_object(record)
        return record

    def job(
        self,
        kind: JobKind,
        inputs: dict[str, ObjectRecord],
        *,
        k_pos_hex: str | None = None,
        tenant: str = TENANT,
        trace_id: str | None = None,
    ) -> str:
        now = utcnow()
        record = JobRecord(
            id=new_id("job"),
            tenant=tenant,
            kind=kind,
            inputs={name: obj.id for name, obj in inputs.items()},
            params={"k_pos": self.k_pos.hex() if k_pos_hex is None else k_pos_hex},
            created_at=now,
            updated_at=now,
            trace_id=trace_id,
        )
        self.deps.jobs.create(record, idempotency_key=None, body_hash="")
        return record.id

    def embed_job(self, cover: bytes, payload: bytes, *, trace_id: str | None = None) -> str:
        """An embed job as a client makes it: the cover's LSB plane and the payload."""
        job_id = self.job(
            JobKind.EMBED,
            {"plane": self.put_plane(cover), "payload": self.put(payload, "secret.bin")},
            trace_id=trace_id,
        )
        self.covers[job_id] = cover
        return job_id

    def stego(self, job_id: str) -> bytes:
        """The stego file the client makes of the embed job's result (its patch)."""
        return patched(self.covers[job_id], stored(self, job_id), self.k_pos)

    def extract_job(self, stego: bytes) -> str:
        return self.job(JobKind.EXTRACT, {"plane": self.put_plane(stego)})

    def put_plane(self, audio: bytes, tenant: str = TENANT) -> ObjectRecord:
        return self.put(plane_of(audio), "cover.plane", tenant=tenant)

    def record(self, job_id: str) -> JobRecord:
        found = self.deps.jobs.get(job_id)
        assert found is not None
        return found

    def leftovers(self, tenant: str = TENANT) -> list[object]:
        """Multipart uploads still open under the tenant's results."""
        return list(self.store.list_multipart_uploads(f"t/{tenant}/results/"))

    def result_files(self, job_id: str, tenant: str = TENANT) -> list[Path]:
        folder = self.store.root / "t" / tenant / "results" / job_id
        return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def stored(world: World, job_id: str) -> bytes:
    record = world.record(job_id)
    assert record.result_object_id is not None
    result = world.deps.uploads.find_object(record.result_object_id)
    assert result is not None
    return b"".join(world.store.read(result.key))


def extract(data: bytes, k_pos: bytes) -> bytes:
    return codec.extract_stream(io.BytesIO(data), k_pos=k_pos, engine=ENGINE)


class SlowEngine:
    """The in-process engine, slowed down, calling ``on_window`` before each window's task."""

    def __init__(self, delay: float, on_window: Callable[[], None] = lambda: None) -> None:
        self.delay = delay
        self.on_window = on_window

    def _each(self, tasks: Sequence[ExtractTask]) -> None:
        for _ in tasks:
            self.on_window()
            time.sleep(self.delay)

    def embed(self, tasks: Sequence[EmbedTask]) -> list[npt.NDArray[np.int32]]:
        self._each(tasks)
        return ENGINE.embed(tasks)

    def extract(self, tasks: Sequence[ExtractTask]) -> list[npt.NDArray[np.uint8]]:
        self._each(tasks)
        return ENGINE.extract(tasks)

    def close(self) -> None:
        pass


class CountingEngine(SlowEngine):
    """Counts the windows it embeds, across threads."""

    def __init__(self, delay: float = 0.02) -> None:
        self.windows = 0
        self._lock = threading.Lock()
        super().__init__(delay, on_window=self._count)

    def _count(self) -> None:
        with self._lock:
            self.windows += 1


class FailingEngine(SlowEngine):
    def __init__(self, error: BaseException) -> None:
        super().__init__(0.0)
        self.error = error

    def embed(self, tasks: Sequence[EmbedTask]) -> list[npt.NDArray[np.int32]]:
        raise self.error

    def extract(self, tasks: Sequence[ExtractTask]) -> list[npt.NDArray[np.uint8]]:
        raise self.error


def rabbitmqctl_rows(vhost: str, *command: str) -> list[list[str]]:
    """Tab-separated rows of ``rabbitmqctl <command> -p vhost`` (no header)."""
    out = subprocess.run(
        ["rabbitmqctl", "-q", "--no-table-headers", *command, "-p", vhost],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [line.split("\t") for line in out.splitlines() if line.strip()]
