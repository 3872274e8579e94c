"""An in-memory Subtone API and storage behind ``httpx.MockTransport``, for client tests.

It speaks the protocol's bodies (subtone.protocol models), checks the bearer token, hands
out part URLs on a fake storage host (which must never see the token), runs jobs through
scripted states, and "embeds" by remembering which payload a result carries, so a client
can round-trip encode → decode against it.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np

from desktop.core.uploader import PartBody, PartRejected, PartUrlExpired
from subtone.errors import SubtoneError
from subtone.protocol import (
    CompleteRequest,
    ErrorInfo,
    Job,
    JobCreate,
    JobKind,
    JobList,
    JobState,
    ObjectRef,
    PartsRequest,
    PresignedPart,
    PresignedParts,
    StoredPart,
    UploadCreate,
    UploadCreated,
    UploadState,
    UploadStatus,
)
from subtone.robust import embed_mix, extract_mix, wire
from subtone.stego import codec, patch, plane
from subtone.stego.engine import InProcessEngine
from subtone.tracing import TRACEPARENT_HEADER, parse_traceparent

API = "http://api.test"
STORE = "http://store.test"
TOKEN = "tok_secret"
NOW = datetime(2030, 1, 1, tzinfo=UTC)


def error(status: int, code: str, message: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message}})


@dataclass
class FakeUpload:
    id: str
    body: UploadCreate
    part_size: int
    part_count: int
    parts: dict[int, bytes] = field(default_factory=dict)
    state: UploadState = UploadState.UPLOADING
    object: ObjectRef | None = None


@dataclass
class FakeObject:
    ref: ObjectRef
    data: bytes


def embed_patch(plane_object: bytes, payload: bytes, k_pos: bytes) -> bytes:
    """What the real worker returns for an embed: the patch, made by the real codec."""
    src = io.BytesIO(plane_object)
    header = plane.read_plane_header(src, len(plane_object))
    out = io.BytesIO()
    writer = patch.PatchWriter(out, header.samples)
    codec.embed_plane(
        src, samples=header.samples, k_pos=k_pos, payload=payload, engine=InProcessEngine(),
        on_window_flips=writer.window,
    )  # fmt: skip
    writer.close()
    return out.getvalue()


def random_plane(samples: int = 16_000, seed: int = 1) -> bytes:
    """A well-formed LSB plane object of ``samples`` random bits (for jobs made by hand)."""
    bits = np.random.default_rng(seed).integers(0, 256, codec.plane_size(samples), np.uint8)
    return plane.PlaneHeader(samples=samples, bits_per_sample=16).pack() + bits.tobytes()


def extract_payload(plane_object: bytes, k_pos: bytes) -> bytes:
    """What the real worker returns for an extract (raises ``no_payload``)."""
    src = io.BytesIO(plane_object)
    header = plane.read_plane_header(src, len(plane_object))
    return codec.extract_plane(src, samples=header.samples, k_pos=k_pos, engine=InProcessEngine())


class FakeServer:
    def __init__(self, *, part_size: int = 4096, sse: bool = True) -> None:
        self.part_size = part_size
        self.sse = sse
        self.lock = threading.RLock()
        self.uploads: dict[str, FakeUpload] = {}
        self.objects: dict[str, FakeObject] = {}
        self.jobs: dict[str, Job] = {}
        self.job_steps: dict[str, list[tuple[JobState, float]]] = {}
        self.idempotency: dict[str, str] = {}
        self.params: dict[str, str] = {}
        """Job id → the k_pos it was created with."""
        self.requests: list[httpx.Request] = []
        self.presigned: list[list[int]] = []
        self.completed: list[list[tuple[int, str]]] = []
        self.puts: list[int] = []
        self.expire_once: set[tuple[str, int]] = set()
        """(upload id, part) whose first URL answers 403."""
        self.fail_job: tuple[str, str] | None = None
        """(code, message) every job fails with."""
        self.corrupt_download = False
        self.hooks: dict[str, Callable[[httpx.Request], httpx.Response | None]] = {}
        """Path → a function that may answer a request instead of the fake."""
        self._ids = 0
        self._url_version: dict[tuple[str, int], int] = {}

    # --- plumbing ------------------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        with self.lock:
            self._ids += 1
            return f"{prefix}_{self._ids:012d}"

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        with self.lock:
            self.requests.append(request)
        hook = self.hooks.get(request.url.path)
        if hook is not None:
            answer = hook(request)
            if answer is not None:
                return answer
        if request.url.host == "store.test":
            assert "authorization" not in request.headers, "the token leaked to storage"
            return self._storage(request)
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return error(401, "unauthorized", "A valid API token is required.")
        return self._api(request)

    def bodies(self) -> bytes:
        """Every request body and URL the fake saw (to check what reached the server)."""
        return b"\n".join(bytes(str(r.url), "utf-8") + b" " + r.content for r in self.requests)

    # --- storage -------------------------------------------------------------------

    def _storage(self, request: httpx.Request) -> httpx.Response:
        kind, *rest = request.url.path.strip("/").split("/")
        if request.method == "PUT" and kind == "part":
            upload_id, number = rest[0], int(rest[1])
            try:
                etag = self.store_part(
                    upload_id, number, int(request.url.params["v"]), request.content
                )
            except PartUrlExpired:
                return httpx.Response(403, text="<Error><Code>AccessDenied</Code></Error>")
            return httpx.Response(200, headers={"ETag": f'"{etag}"'})
        if request.method == "GET" and kind == "object":
            obj = self.objects[rest[0]]
            data = obj.data[:-1] if self.corrupt_download else obj.data
            return httpx.Response(200, content=data)
        return httpx.Response(404)

    def store_part(self, upload_id: str, number: int, version: int, data: bytes) -> str:
        """What a PUT to a part URL does; raises PartUrlExpired for an expired URL."""
        with self.lock:
            key = (upload_id, number)
            if key in self.expire_once and version == 1:
                raise PartUrlExpired()
            upload = self.uploads[upload_id]
            if upload.state is not UploadState.UPLOADING:
                raise PartRejected("no such upload", status=404, retryable=False)
            upload.parts[number] = data
            self.puts.append(number)
            return hashlib.md5(data).hexdigest()

    # --- API -----------------------------------------------------------------------

    def _api(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.strip("/").split("/")
        method = request.method
        match (method, path):
            case ("POST", ["v1", "uploads"]):
                return self._create_upload(UploadCreate.model_validate_json(request.content))
            case ("GET", ["v1", "uploads", upload_id]):
                return self._upload_status(upload_id)
            case ("POST", ["v1", "uploads", upload_id, "parts"]):
                body = PartsRequest.model_validate_json(request.content)
                return self._presign(upload_id, body.part_numbers)
            case ("POST", ["v1", "uploads", upload_id, "complete"]):
                return self._complete(
                    upload_id, CompleteRequest.model_validate_json(request.content)
                )
            case ("DELETE", ["v1", "uploads", upload_id]):
                self.uploads[upload_id].state = UploadState.ABORTED
                return httpx.Response(204)
            case ("POST", ["v1", "jobs"]):
                body = JobCreate.model_validate_json(request.content)
                trace = parse_traceparent(request.headers.get(TRACEPARENT_HEADER))
                answer = self._create_job(body, request.headers.get("idempotency-key"))
                return self._traced(answer, trace.trace_id if trace is not None else None)
            case ("GET", ["v1", "jobs"]):
                jobs = sorted(self.jobs.values(), key=lambda j: j.created_at, reverse=True)
                return httpx.Response(200, content=JobList(jobs=jobs).model_dump_json())
            case ("GET", ["v1", "jobs", job_id]):
                if job_id not in self.jobs:
                    return error(404, "not_found", f"There is no job {job_id}.")
                return httpx.Response(200, content=self.advance(job_id).model_dump_json())
            case ("GET", ["v1", "jobs", job_id, "events"]):
                return self._events(job_id)
            case ("POST", ["v1", "jobs", job_id, "cancel"]):
                with self.lock:
                    job = self.jobs[job_id]
                    if not job.state.finished:
                        job = job.model_copy(update={"state": JobState.CANCELLED})
                        self.jobs[job_id] = job
                        self.job_steps[job_id] = []
                return httpx.Response(200, content=job.model_dump_json())
        return error(404, "not_found", f"No route {method} {request.url.path}.")

    def _create_upload(self, body: UploadCreate) -> httpx.Response:
        upload = FakeUpload(
            id=self.new_id("up"),
            body=body,
            part_size=self.part_size,
            part_count=max(1, math.ceil(body.size / self.part_size)),
        )
        self.uploads[upload.id] = upload
        created = UploadCreated(
            upload_id=upload.id,
            part_size=upload.part_size,
            part_count=upload.part_count,
            expires_at=NOW,
        )
        return httpx.Response(201, content=created.model_dump_json())

    def _upload_status(self, upload_id: str) -> httpx.Response:
        upload = self.uploads.get(upload_id)
        if upload is None:
            return error(404, "not_found", "There is no such upload.")
        with self.lock:
            stored = [
                StoredPart(part_number=n, etag=hashlib.md5(d).hexdigest(), size=len(d))
                for n, d in sorted(upload.parts.items())
            ]
        status = UploadStatus(
            upload_id=upload.id,
            name=upload.body.name,
            size=upload.body.size,
            sha256=upload.body.sha256,
            part_size=upload.part_size,
            part_count=upload.part_count,
            state=upload.state,
            parts=stored,
            object=upload.object,
            created_at=NOW,
        )
        return httpx.Response(200, content=status.model_dump_json())

    def _presign(self, upload_id: str, numbers: list[int]) -> httpx.Response:
        with self.lock:
            self.presigned.append(list(numbers))
            parts = []
            for n in numbers:
                version = self._url_version.get((upload_id, n), 0) + 1
                self._url_version[(upload_id, n)] = version
                parts.append(
                    PresignedPart(
                        part_number=n,
                        url=f"{STORE}/part/{upload_id}/{n}?v={version}",
                        expires_at=datetime.now(UTC) + timedelta(minutes=15),
                    )
                )
        return httpx.Response(200, content=PresignedParts(parts=parts).model_dump_json())

    def _complete(self, upload_id: str, body: CompleteRequest) -> httpx.Response:
        upload = self.uploads[upload_id]
        given = [(p.part_number, p.etag.strip('"')) for p in body.parts]
        self.completed.append(given)
        with self.lock:
            want = [(n, hashlib.md5(d).hexdigest()) for n, d in sorted(upload.parts.items())]
        if given != want or len(want) != upload.part_count:
            return error(400, "invalid_parts", "The part list does not match storage.")
        data = b"".join(upload.parts[n] for n in sorted(upload.parts))
        assert hashlib.sha256(data).hexdigest() == upload.body.sha256
        ref = self.add_object(data, upload.body.name, upload.body.media_type)
        upload.state, upload.object = UploadState.COMPLETED, ref
        return httpx.Response(200, content=ref.model_dump_json())

    def add_object(self, data: bytes, name: str, media_type: str) -> ObjectRef:
        ref = ObjectRef(
            id=self.new_id("obj"),
            name=name,
            size=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            media_type=media_type,
        )
        self.objects[ref.id] = FakeObject(ref, data)
        return ref

    # --- jobs ----------------------------------------------------------------------

    def _traced(self, answer: httpx.Response, trace_id: str | None) -> httpx.Response:
        """The created job keeps the trace id of the request that created it (as the API
        does)."""
        if answer.status_code != 202 or trace_id is None:
            return answer
        with self.lock:
            job = self.jobs[Job.model_validate_json(answer.content).id]
            if job.trace_id is None:
                job = self.jobs[job.id] = job.model_copy(update={"trace_id": trace_id})
        return httpx.Response(202, content=job.model_dump_json())

    def _create_job(self, body: JobCreate, key: str | None) -> httpx.Response:
        assert key, "jobs are created with an Idempotency-Key"
        with self.lock:
            if key in self.idempotency:
                return httpx.Response(
                    202, content=self.jobs[self.idempotency[key]].model_dump_json()
                )
            job = Job(
                id=self.new_id("job"),
                kind=body.kind,
                state=JobState.QUEUED,
                progress=0.0,
                inputs=dict(body.inputs),
                created_at=NOW + timedelta(seconds=len(self.jobs)),
                updated_at=NOW,
            )
            self.jobs[job.id] = job
            self.idempotency[key] = job.id
            self.job_steps[job.id] = [(JobState.RUNNING, 0.5), (JobState.SUCCEEDED, 1.0)]
            self.params[job.id] = body.params.k_pos
        return httpx.Response(202, content=job.model_dump_json())

    def advance(self, job_id: str) -> Job:
        """The job one step further along its script."""
        with self.lock:
            steps = self.job_steps[job_id]
            if not steps:
                return self.jobs[job_id]
            state, progress = steps.pop(0)
            job = self.jobs[job_id]
            update: dict[str, object] = {"state": state, "progress": progress}
            if state is JobState.SUCCEEDED:
                update |= self._finish(job)
            job = job.model_copy(update=update)
            self.jobs[job_id] = job
            return job

    def _finish(self, job: Job) -> dict[str, object]:
        k_pos = self.params[job.id]
        if self.fail_job is not None:
            code, message = self.fail_job
            return {"state": JobState.FAILED, "error": ErrorInfo(code=code, message=message)}
        if job.kind.robust:
            return self._finish_robust(job, bytes.fromhex(k_pos))
        lsb = self.objects[job.inputs["plane"]]
        try:
            if job.kind is JobKind.EMBED:
                payload = self.objects[job.inputs["payload"]].data
                data = embed_patch(lsb.data, payload, bytes.fromhex(k_pos))
                ref = self.add_object(data, "cover-patch.bin", patch.MEDIA_TYPE)
            else:
                found = extract_payload(lsb.data, bytes.fromhex(k_pos))
                ref = self.add_object(found, "payload.bin", "application/octet-stream")
        except SubtoneError as e:
            return {"state": JobState.FAILED, "error": ErrorInfo(code=e.code, message=e.message)}
        return {"result": ref, "download_url": f"{STORE}/object/{ref.id}?sig=x"}

    def _finish_robust(self, job: Job, k_pos: bytes) -> dict[str, object]:
        """What the real worker returns for a robust job, made by the real robust core."""
        data = self.objects[job.inputs["mix"]].data
        mix = wire.read_mix(io.BytesIO(data), len(data))
        try:
            if job.kind is JobKind.ROBUST_EMBED:
                payload = self.objects[job.inputs["payload"]].data
                out = io.BytesIO()
                wire.write_residual(out, embed_mix(mix, k_pos, payload))
                ref = self.add_object(
                    out.getvalue(), "cover-residual.bin", wire.RESIDUAL_MEDIA_TYPE
                )
            else:
                found = extract_mix(mix, k_pos)
                ref = self.add_object(found, "payload.bin", "application/octet-stream")
        except SubtoneError as e:
            return {"state": JobState.FAILED, "error": ErrorInfo(code=e.code, message=e.message)}
        return {"result": ref, "download_url": f"{STORE}/object/{ref.id}?sig=x"}

    def _events(self, job_id: str) -> httpx.Response:
        if not self.sse:
            return error(404, "not_found", "No event stream here.")
        lines = [": ping", ""]
        job = self.jobs[job_id]
        lines += ["event: job", f"data: {job.model_dump_json()}", ""]
        while not job.state.finished and self.job_steps[job_id]:
            job = self.advance(job_id)
            lines += [": ping", "event: job", f"data: {job.model_dump_json()}", ""]
        return httpx.Response(
            200,
            headers={"content-type": "text/event-stream"},
            content="\r\n".join(lines).encode() + b"\r\n",
        )


class FakePartTransport:
    """A PartTransport that stores parts straight into a FakeServer, with scripted faults."""

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.calls: list[int] = []
        self.faults: dict[int, list[Exception]] = {}
        """Part → errors its next PUTs raise, in order."""
        self.before_put: Callable[[int], None] | None = None
        self.lock = threading.Lock()

    def put(self, url: str, body: PartBody) -> str:
        data = b"".join(body)
        parsed = httpx.URL(url)
        _, upload_id, number = parsed.path.strip("/").split("/")
        part = int(number)
        with self.lock:
            self.calls.append(part)
            faults = self.faults.get(part)
            fault = faults.pop(0) if faults else None
        if self.before_put is not None:
            self.before_put(part)
        if fault is not None:
            raise fault
        etag = self.server.store_part(upload_id, part, int(parsed.params["v"]), data)
        return f'"{etag}"'


def json_body(request: httpx.Request) -> object:
    return json.loads(request.content)
