"""A typed client of the Subtone API, and of the short-lived storage URLs it hands out.

One :class:`ApiClient` holds two ``httpx.Client`` objects made once in its constructor: one
for the API (base URL, bearer token) and one for storage URLs (no token: a pre-signed URL
carries its own authority, and S3 refuses a request that has both). Both take the same
injectable transport, so tests drive the whole client with ``httpx.MockTransport``.

Every request and response body is a model of :mod:`subtone.protocol`. A non-2xx answer
becomes an :class:`~desktop.core.api_errors.ApiError` with the server's ``code`` and
``message``; a server that cannot be reached becomes a
:class:`~desktop.core.api_errors.ServerUnreachable`. Reads and idempotent writes are retried
(by tenacity) on transient failures (connection errors, 408, 429, 502-504) with jittered
backoff.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import BinaryIO, Final

import httpx
from httpx_sse import EventSource
from pydantic import BaseModel, ValidationError
from tenacity import RetryCallState

from desktop.core.api_errors import ApiError, parse, transient, unreachable, validate
from desktop.core.retry import Backoff
from desktop.core.stop import StopSignal
from desktop.core.tls import tls_context
from subtone.errors import SubtoneError
from subtone.protocol import (
    PROTOCOL_VERSION,
    CompletePart,
    CompleteRequest,
    Job,
    JobCreate,
    JobList,
    ObjectRef,
    PartsRequest,
    PresignedParts,
    Readiness,
    ServerVersion,
    UploadCreate,
    UploadCreated,
    UploadStatus,
)
from subtone.tracing import TRACEPARENT_HEADER, TraceParent, new_trace_id
from subtone.version import __version__

__all__ = [
    "API_PREFIX",
    "DEFAULT_API_RETRY",
    "DEFAULT_POLL",
    "DEFAULT_TIMEOUT_SECONDS",
    "IDEMPOTENCY_HEADER",
    "UNKNOWN_SERVER_VERSION",
    "ApiClient",
    "ByteProgress",
    "JobUpdate",
    "protocol_problem",
]

log = logging.getLogger(__name__)

API_PREFIX: Final = "/v1"
IDEMPOTENCY_HEADER: Final = "Idempotency-Key"
USER_AGENT: Final = "subtone-client/1"
DEFAULT_TIMEOUT_SECONDS: Final = 30.0
CONNECT_TIMEOUT_SECONDS: Final = 10.0
SSE_READ_TIMEOUT_SECONDS: Final = 60.0
"""The event stream may be quiet this long (the server pings well within it)."""
DOWNLOAD_CHUNK_BYTES: Final = 1 << 20
DEFAULT_API_RETRY: Final = Backoff(max_attempts=4, base_seconds=0.5, max_seconds=8.0)
DEFAULT_POLL: Final = Backoff(max_attempts=1, base_seconds=0.5, max_seconds=5.0, multiplier=1.5)
"""Polling: start at ``base_seconds``, grow while nothing changes, back to the start on news."""
EVENT_STREAM: Final = "text/event-stream"
JOB_EVENT: Final = "job"

UNKNOWN_SERVER_VERSION: Final = "unknown"
"""What :meth:`ApiClient.server_version` says of a server older than ``/version``."""

JobUpdate = Callable[[Job], None]
ByteProgress = Callable[[int, int], None]
"""``(bytes done, bytes in all)``."""


def protocol_problem(server: ServerVersion) -> str | None:
    """What to tell a person when the server speaks another protocol than this client (whose
    requests it would then refuse or misread); ``None`` when they match."""
    if server.protocol == PROTOCOL_VERSION:
        return None
    which = "Subtone on this computer" if server.protocol > PROTOCOL_VERSION else "the server"
    return (
        f"The server speaks protocol {server.protocol} (Subtone {server.server}); Subtone "
        f"{__version__} on this computer speaks protocol {PROTOCOL_VERSION}. Update {which}: "
        "until then nothing is sent to it."
    )


def _shut(response: httpx.Response) -> None:
    """Break a read blocked on ``response`` (from another thread): shut its socket down."""
    stream = response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def _interrupt_on(stop: threading.Event | None, response: httpx.Response) -> Iterator[None]:
    """While inside, a :class:`StopSignal` being set shuts the response's connection at once."""
    if not isinstance(stop, StopSignal):
        yield
        return
    remove = stop.on_set(lambda: _shut(response))
    try:
        yield
    finally:
        remove()


class ApiClient:
    """The Subtone API over HTTP. Thread-safe (httpx clients are); close it when done."""

    def __init__(
        self,
        base_url: str,
        token: str | None,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        retry: Backoff = DEFAULT_API_RETRY,
        poll: Backoff = DEFAULT_POLL,
        sleep: Callable[[float], None] = time.sleep,
        trace_id: str | None = None,
    ) -> None:
        """``trace_id``: the trace every call of this client belongs to (a new one when
        ``None``; :mod:`subtone.tracing`): each request carries it in ``traceparent``."""
        self.base_url = base_url.rstrip("/")
        self.trace_id = trace_id or new_trace_id()
        log.debug("trace id %s", self.trace_id)
        self._retry = retry
        self._retry_wait = retry.wait()
        self._poll = poll
        self._sleep = sleep
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT_SECONDS))
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            transport=transport,
            verify=tls_context(),
            timeout=self._timeout,
            event_hooks={"request": [self._trace]},
        )
        self._storage = httpx.Client(
            headers={"User-Agent": USER_AGENT},
            transport=transport,
            verify=tls_context(),
            timeout=self._timeout,
        )

    def _trace(self, request: httpx.Request) -> None:
        """Every API request is a new span of this client's trace."""
        request.headers[TRACEPARENT_HEADER] = TraceParent.new(self.trace_id).header()

    def close(self) -> None:
        self._http.close()
        self._storage.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Plumbing --------------------------------------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        body: BaseModel | None = None,
        headers: dict[str, str] | None = None,
        retry: bool = False,
    ) -> httpx.Response:
        """One request, retried on transient failures when ``retry`` (safe to repeat)."""
        # Unset optional fields are left out, so a body is what an older server expects.
        content = body.model_dump_json(exclude_none=True).encode() if body is not None else None
        send_headers = dict(headers or {})
        if content is not None:
            send_headers["Content-Type"] = "application/json"

        def once() -> httpx.Response:
            try:
                response = self._http.request(method, path, content=content, headers=send_headers)
            except httpx.TransportError as e:
                raise unreachable(f"the Subtone server at {self.base_url}", e) from e
            if not response.is_success:
                raise ApiError.from_response(response)
            return response

        if not retry:
            return once()
        return self._retry.retrying(retry=transient, sleep=self._sleep, wait=self._wait)(once)

    def _wait(self, state: RetryCallState) -> float:
        """The server's ``Retry-After`` when it gave one, else the backoff's own wait."""
        outcome = state.outcome
        error = outcome.exception() if outcome is not None else None
        if isinstance(error, ApiError) and error.retry_after is not None:
            return error.retry_after
        return float(self._retry_wait(state))

    # Service ---------------------------------------------------------------------------

    def readiness(self) -> Readiness:
        """``GET /readyz``: whether the stack can take work, and each dependency's state.

        A stack that is not ready answers 503 with the same body, which is returned too.
        """
        try:
            response = self._http.get("/readyz")
        except httpx.TransportError as e:
            raise unreachable(f"the Subtone server at {self.base_url}", e) from e
        if response.is_success or response.status_code == httpx.codes.SERVICE_UNAVAILABLE:
            try:
                return Readiness.model_validate_json(response.content)
            except ValidationError:
                pass
        raise ApiError.from_response(response)

    def server_version(self) -> ServerVersion:
        """``GET /version``: the server's version and the protocol it speaks. A server older
        than that endpoint is asked its OpenAPI document, whose version is its protocol's."""
        try:
            return parse(ServerVersion, self._send("GET", "/version", retry=True))
        except ApiError as e:
            if e.status != httpx.codes.NOT_FOUND:
                raise
        response = self._send("GET", "/openapi.json", retry=True)
        try:
            protocol = int(response.json()["info"]["version"])
        except (ValueError, KeyError, TypeError) as e:
            raise ApiError(
                f"The server at {self.base_url} does not say which protocol it speaks; "
                "is it a Subtone server?",
                code="bad_response",
                status=response.status_code,
            ) from e
        return ServerVersion(server=UNKNOWN_SERVER_VERSION, protocol=protocol)

    # Uploads ---------------------------------------------------------------------------

    def create_upload(self, request: UploadCreate) -> UploadCreated:
        """``POST /v1/uploads``: start a multipart upload."""
        return parse(UploadCreated, self._send("POST", f"{API_PREFIX}/uploads", body=request))

    def presign_parts(self, upload_id: str, part_numbers: Sequence[int]) -> PresignedParts:
        """``POST /v1/uploads/{id}/parts``: short-lived PUT URLs for these parts."""
        response = self._send(
            "POST",
            f"{API_PREFIX}/uploads/{upload_id}/parts",
            body=PartsRequest(part_numbers=list(part_numbers)),
            retry=True,
        )
        return parse(PresignedParts, response)

    def upload_status(self, upload_id: str) -> UploadStatus:
        """``GET /v1/uploads/{id}``: the upload, with the parts storage already holds."""
        response = self._send("GET", f"{API_PREFIX}/uploads/{upload_id}", retry=True)
        return parse(UploadStatus, response)

    def complete_upload(self, upload_id: str, parts: Sequence[CompletePart]) -> ObjectRef:
        """``POST /v1/uploads/{id}/complete``: assemble the parts into an object."""
        response = self._send(
            "POST",
            f"{API_PREFIX}/uploads/{upload_id}/complete",
            body=CompleteRequest(parts=list(parts)),
        )
        return parse(ObjectRef, response)

    def abort_upload(self, upload_id: str) -> None:
        """``DELETE /v1/uploads/{id}``: drop the upload and the parts sent so far."""
        self._send("DELETE", f"{API_PREFIX}/uploads/{upload_id}", retry=True)

    # Jobs ------------------------------------------------------------------------------

    def create_job(self, request: JobCreate, *, idempotency_key: str) -> Job:
        """``POST /v1/jobs``; the key makes a retried request return the same job."""
        response = self._send(
            "POST",
            f"{API_PREFIX}/jobs",
            body=request,
            headers={IDEMPOTENCY_HEADER: idempotency_key},
            retry=True,
        )
        return parse(Job, response)

    def get_job(self, job_id: str) -> Job:
        """``GET /v1/jobs/{id}``."""
        return parse(Job, self._send("GET", f"{API_PREFIX}/jobs/{job_id}", retry=True))

    def list_jobs(self) -> JobList:
        """``GET /v1/jobs``: this tenant's recent jobs, newest first."""
        return parse(JobList, self._send("GET", f"{API_PREFIX}/jobs", retry=True))

    def cancel_job(self, job_id: str) -> Job:
        """``POST /v1/jobs/{id}/cancel``; returns the job as it stands afterwards."""
        response = self._send("POST", f"{API_PREFIX}/jobs/{job_id}/cancel", retry=True)
        try:
            return Job.model_validate_json(response.content)
        except ValidationError:
            return self.get_job(job_id)

    def job_events(self, job_id: str, *, stop: threading.Event | None = None) -> Iterator[Job]:
        """``GET /v1/jobs/{id}/events``: the job each time it changes, until the stream ends.

        Ends early once ``stop`` is set: checked at each event and, when it is a
        :class:`StopSignal`, at once, by shutting the connection from the stopping side (the
        stream is parsed by ``httpx-sse``, which does not surface comment pings).
        """
        path = f"{API_PREFIX}/jobs/{job_id}/events"
        timeout = httpx.Timeout(
            connect=self._timeout.connect,
            read=SSE_READ_TIMEOUT_SECONDS,
            write=self._timeout.write,
            pool=self._timeout.pool,
        )
        headers = {"Accept": EVENT_STREAM, "Cache-Control": "no-cache"}
        try:
            with self._http.stream("GET", path, headers=headers, timeout=timeout) as response:
                if not response.is_success:
                    response.read()
                    raise ApiError.from_response(response)
                if not response.headers.get("content-type", "").startswith(EVENT_STREAM):
                    raise ApiError(
                        "The server did not answer with an event stream.",
                        code="bad_response",
                        status=response.status_code,
                    )
                with _interrupt_on(stop, response):
                    for event in EventSource(response).iter_sse():
                        if stop is not None and stop.is_set():
                            return
                        if event.event == JOB_EVENT:
                            yield validate(Job, event.data, f"GET {path}", response.status_code)
        except httpx.TransportError as e:
            if stop is not None and stop.is_set():
                return  # the connection was shut because of the stop
            raise unreachable(f"the Subtone server at {self.base_url}", e) from e

    def follow_job(
        self,
        job_id: str,
        on_update: JobUpdate | None = None,
        *,
        stop: threading.Event | None = None,
        use_events: bool = True,
    ) -> Job:
        """Follow a job until it finishes (or ``stop`` is set), calling ``on_update`` on change.

        Listens to the event stream; if the stream cannot be opened, breaks, or ends early,
        polls ``GET /v1/jobs/{id}`` instead, waiting longer while nothing changes. Returns
        the last state seen: finished, unless ``stop`` was set.
        """
        last: Job | None = None

        def seen(job: Job) -> None:
            nonlocal last
            if job != last and on_update is not None:
                on_update(job)
            last = job

        if use_events:
            try:
                for job in self.job_events(job_id, stop=stop):
                    seen(job)
                    if job.state.finished:
                        return job
            except SubtoneError as e:
                log.info("job events for %s unavailable (%s); polling instead", job_id, e)
            if stop is not None and stop.is_set() and last is not None:
                return last
        return self._poll_job(job_id, seen, stop)

    def _poll_job(
        self, job_id: str, seen: Callable[[Job], None], stop: threading.Event | None
    ) -> Job:
        attempt = 1
        previous: Job | None = None
        while True:
            job = self.get_job(job_id)
            seen(job)
            if job.state.finished:
                return job
            attempt = 1 if job != previous else attempt + 1
            previous = job
            delay = self._poll.ceiling(attempt)
            if stop is not None:
                if stop.wait(delay):
                    return job
            else:
                self._sleep(delay)

    # Storage ---------------------------------------------------------------------------

    def download(
        self,
        url: str,
        dest: BinaryIO,
        *,
        expected_size: int | None = None,
        expected_sha256: str | None = None,
        progress: ByteProgress | None = None,
        stop: threading.Event | None = None,
    ) -> int:
        """Stream a pre-signed GET URL into ``dest``; returns the bytes written.

        Checks the size and the SHA-256 when they are known. An expired URL raises
        :class:`ApiError` with code ``url_expired`` (ask the API for a fresh one).
        """
        digest = hashlib.sha256()
        done = 0
        try:
            with self._storage.stream("GET", url) as response:
                if response.status_code == httpx.codes.FORBIDDEN:
                    raise ApiError("The download link has expired.", code="url_expired", status=403)
                if not response.is_success:
                    response.read()
                    raise ApiError.from_response(response)
                total = expected_size
                if total is None:
                    total = int(response.headers.get("content-length", "0") or 0)
                for chunk in response.iter_bytes(DOWNLOAD_CHUNK_BYTES):
                    if stop is not None and stop.is_set():
                        raise SubtoneError("The download was cancelled.", code="cancelled")
                    dest.write(chunk)
                    digest.update(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, max(total, done))
        except httpx.TransportError as e:
            raise unreachable("the storage server", e) from e
        if expected_size is not None and done != expected_size:
            raise SubtoneError(
                f"The download stopped at {done:,} of {expected_size:,} bytes.",
                code="download_incomplete",
            )
        if expected_sha256 is not None and digest.hexdigest() != expected_sha256:
            raise SubtoneError(
                "The downloaded file does not match its checksum.", code="download_corrupt"
            )
        return done
