"""The typed API client: errors, retries, the event stream and its polling fallback."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import threading
import time

import httpx
import pytest

from desktop.core.api import UNKNOWN_SERVER_VERSION, ApiClient, protocol_problem
from desktop.core.api_errors import ApiError, ServerUnreachable
from desktop.core.retry import Backoff
from desktop.core.stop import StopSignal
from subtone.errors import SubtoneError
from subtone.protocol import (
    PROTOCOL_VERSION,
    JobCreate,
    JobKind,
    JobParams,
    JobState,
    ServerVersion,
    UploadCreate,
)
from subtone.stego import plane
from subtone.version import __version__
from tests.desktop.fake_server import API, TOKEN, FakeServer, error, random_plane

NO_WAIT = Backoff(max_attempts=3, base_seconds=0.0, max_seconds=0.0)
FAST_POLL = Backoff(max_attempts=1, base_seconds=0.01, max_seconds=0.04, multiplier=2.0)
K_POS = "ab" * 32


def client_for(handler, **kwargs) -> ApiClient:
    kwargs.setdefault("retry", NO_WAIT)
    return ApiClient(API, TOKEN, transport=httpx.MockTransport(handler), **kwargs)


def embed_request(server: FakeServer | None = None) -> JobCreate:
    ids = ["obj_000000000001", "obj_000000000002"]
    if server is not None:
        ids = [server.add_object(random_plane(), "c.plane", plane.MEDIA_TYPE).id]
        ids.append(server.add_object(b"payload", "payload.bin", "application/octet-stream").id)
    return JobCreate(
        kind=JobKind.EMBED,
        inputs={"plane": ids[0], "payload": ids[1]},
        params=JobParams(k_pos=K_POS),
    )


def test_the_server_says_its_version_and_protocol():
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/version"
        return httpx.Response(200, json={"server": "0.3.1", "protocol": 7, "build": "later"})

    assert client_for(answer).server_version() == ServerVersion(server="0.3.1", protocol=7)


def test_a_server_without_the_version_endpoint_gives_its_protocol_through_openapi():
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/version":
            return error(404, "not_found", "Not Found")
        return httpx.Response(200, json={"info": {"title": "Subtone", "version": "2"}})

    version = client_for(answer).server_version()
    assert version == ServerVersion(server=UNKNOWN_SERVER_VERSION, protocol=2)


def test_a_server_that_says_no_protocol_is_a_bad_response():
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/version":
            return httpx.Response(404, text="no")
        return httpx.Response(200, json={"info": {"version": "0.1.0-beta"}})

    with pytest.raises(ApiError) as caught:
        client_for(answer).server_version()
    assert caught.value.code == "bad_response"


def test_another_protocol_is_named_with_what_to_update():
    assert protocol_problem(ServerVersion(server=__version__, protocol=PROTOCOL_VERSION)) is None
    newer = protocol_problem(ServerVersion(server="9.0.0", protocol=PROTOCOL_VERSION + 1))
    assert newer is not None and newer.startswith(
        f"The server speaks protocol {PROTOCOL_VERSION + 1} (Subtone 9.0.0); Subtone "
        f"{__version__} on this computer speaks protocol {PROTOCOL_VERSION}."
    )
    assert "Update Subtone on this computer" in newer
    older = protocol_problem(ServerVersion(server="0.0.1", protocol=PROTOCOL_VERSION - 1))
    assert older is not None and "Update the server" in older


def test_an_error_body_becomes_api_error_with_the_servers_code():
    client = client_for(lambda r: error(404, "not_found", "There is no job job_x."))
    with pytest.raises(ApiError) as caught:
        client.get_job("job_0000000000")
    assert (caught.value.code, caught.value.status) == ("not_found", 404)
    assert caught.value.message == "There is no job job_x."
    assert str(caught.value) == "[not_found] There is no job job_x."


def test_a_body_that_is_not_json_still_gives_a_code():
    client = client_for(lambda r: httpx.Response(401, text="go away"))
    with pytest.raises(ApiError) as caught:
        client.list_jobs()
    assert caught.value.code == "unauthorized"
    assert "go away" in caught.value.message


def test_reads_are_retried_on_transient_errors():
    answers = [httpx.Response(503), httpx.Response(502)]
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return answers.pop(0) if answers else httpx.Response(200, json={"jobs": []})

    assert client_for(handler).list_jobs().jobs == []
    assert len(calls) == 3


def test_a_retry_waits_as_long_as_the_server_asks():
    answers = [httpx.Response(503, headers={"retry-after": "2"}), httpx.Response(429)]
    sleeps: list[float] = []

    def handler(request: httpx.Request) -> httpx.Response:
        return answers.pop(0) if answers else httpx.Response(200, json={"jobs": []})

    slow = Backoff(max_attempts=3, base_seconds=7.0, max_seconds=7.0, jitter=False)
    client = ApiClient(
        API, TOKEN, transport=httpx.MockTransport(handler), retry=slow, sleep=sleeps.append
    )
    assert client.list_jobs().jobs == []
    assert sleeps == [2.0, 7.0]  # Retry-After, then the backoff's own wait


def test_retries_give_up_with_the_last_error():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503, text="busy")

    with pytest.raises(ApiError) as caught:
        client_for(handler).list_jobs()
    assert caught.value.code == "server_error" and caught.value.status == 503
    assert len(calls) == NO_WAIT.max_attempts


def test_creating_an_upload_is_not_retried():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503)

    with pytest.raises(ApiError):
        client_for(handler).create_upload(UploadCreate(name="a", size=1, sha256="0" * 64))
    assert len(calls) == 1


def test_a_connection_failure_is_server_unreachable():
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with pytest.raises(ServerUnreachable) as caught:
        client_for(handler).list_jobs()
    assert caught.value.code == "server_unreachable"
    assert API in caught.value.message


def test_requests_carry_the_token_and_the_idempotency_key():
    server = FakeServer()
    client = ApiClient(API, TOKEN, transport=server.transport())
    job = client.create_job(embed_request(), idempotency_key="key-1")
    again = client.create_job(embed_request(), idempotency_key="key-1")
    assert job.id == again.id and len(server.jobs) == 1
    sent = server.requests[0]
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"
    assert sent.headers["idempotency-key"] == "key-1"
    assert sent.headers["content-type"] == "application/json"


def test_follow_job_uses_the_event_stream():
    server = FakeServer()
    client = ApiClient(API, TOKEN, transport=server.transport())
    job = client.create_job(embed_request(server), idempotency_key="k")
    server.fail_job = ("no_payload", "nothing")  # any finish will do
    seen = []

    final = client.follow_job(job.id, seen.append)

    assert [j.state for j in seen] == [JobState.QUEUED, JobState.RUNNING, JobState.FAILED]
    assert final.state is JobState.FAILED
    paths = [r.url.path for r in server.requests]
    assert f"/v1/jobs/{job.id}/events" in paths
    assert f"/v1/jobs/{job.id}" not in paths  # no polling


def test_follow_job_polls_when_the_stream_is_unavailable():
    server = FakeServer(sse=False)
    client = ApiClient(API, TOKEN, transport=server.transport(), poll=FAST_POLL)
    job = client.create_job(embed_request(server), idempotency_key="k")
    seen = []

    final = client.follow_job(job.id, seen.append)

    assert final.state is JobState.SUCCEEDED
    assert [j.state for j in seen] == [JobState.RUNNING, JobState.SUCCEEDED]


def test_follow_job_polls_at_once_when_the_server_refuses_more_streams():
    """The server caps open streams per token: 429 ``too_many_streams`` means poll now (the
    ``Retry-After`` is for the stream, not for the job)."""
    server = FakeServer()
    sleeps: list[float] = []
    client = ApiClient(
        API, TOKEN, transport=server.transport(), poll=FAST_POLL, sleep=sleeps.append
    )
    job = client.create_job(embed_request(server), idempotency_key="k")
    refused = error(429, "too_many_streams", "This token already has 16 job event streams open")
    refused.headers["Retry-After"] = "30"
    server.hooks[f"/v1/jobs/{job.id}/events"] = lambda r: refused

    final = client.follow_job(job.id)

    assert final.state is JobState.SUCCEEDED
    paths = [r.url.path for r in server.requests]
    assert paths.count(f"/v1/jobs/{job.id}/events") == 1, "the stream is not retried"
    assert f"/v1/jobs/{job.id}" in paths
    assert all(s < 30 for s in sleeps), sleeps


def test_follow_job_polls_when_the_stream_ends_early():
    server = FakeServer()
    client = ApiClient(API, TOKEN, transport=server.transport(), poll=FAST_POLL)
    job = client.create_job(embed_request(server), idempotency_key="k")
    events = f"event: job\ndata: {job.model_dump_json()}\n\n"
    server.hooks[f"/v1/jobs/{job.id}/events"] = lambda r: httpx.Response(
        200, headers={"content-type": "text/event-stream"}, text=events
    )

    final = client.follow_job(job.id)

    assert final.state is JobState.SUCCEEDED


def test_polling_waits_longer_while_nothing_changes():
    server = FakeServer(sse=False)
    sleeps: list[float] = []
    poll = Backoff(max_attempts=1, base_seconds=1.0, max_seconds=4.0, multiplier=2.0)
    client = ApiClient(API, TOKEN, transport=server.transport(), poll=poll, sleep=sleeps.append)
    job = client.create_job(embed_request(server), idempotency_key="k")
    server.job_steps[job.id] = [(JobState.RUNNING, 0.5)]
    original = server.advance
    calls = {"n": 0}

    def slow(job_id: str):
        calls["n"] += 1
        if calls["n"] == 5:
            server.job_steps[job_id] = [(JobState.SUCCEEDED, 1.0)]
        return original(job_id)

    server.advance = slow  # running, then unchanged three times, then done

    client.follow_job(job.id, use_events=False)

    assert sleeps == [1.0, 2.0, 4.0, 4.0]


def test_download_checks_size_and_checksum_and_sends_no_token():
    body = b"x" * 3000

    def handler(request: httpx.Request) -> httpx.Response:
        assert "authorization" not in request.headers
        return httpx.Response(200, content=body)

    client = client_for(handler)
    out = io.BytesIO()
    seen = []
    n = client.download(
        "http://store.test/o",
        out,
        expected_size=3000,
        expected_sha256=hashlib.sha256(body).hexdigest(),
        progress=lambda d, t: seen.append((d, t)),
    )
    assert n == 3000 and out.getvalue() == body and seen[-1] == (3000, 3000)
    with pytest.raises(SubtoneError) as caught:
        client.download("http://store.test/o", io.BytesIO(), expected_sha256="0" * 64)
    assert caught.value.code == "download_corrupt"
    with pytest.raises(SubtoneError) as short:
        client.download("http://store.test/o", io.BytesIO(), expected_size=4000)
    assert short.value.code == "download_incomplete"


def test_an_expired_download_link_says_so():
    client = client_for(lambda r: httpx.Response(403, text="<Error>AccessDenied</Error>"))
    with pytest.raises(ApiError) as caught:
        client.download("http://store.test/o", io.BytesIO())
    assert caught.value.code == "url_expired"


def test_readiness_reads_a_503_body():
    client = client_for(
        lambda r: httpx.Response(503, json={"ready": False, "checks": {"redis": "down"}})
    )
    ready = client.readiness()
    assert not ready.ready and ready.checks == {"redis": "down"}


def test_job_events_skip_pings_and_other_events_and_join_data_lines():
    server = FakeServer()
    client = ApiClient(API, TOKEN, transport=server.transport(), poll=FAST_POLL)
    job = client.create_job(embed_request(server), idempotency_key="k")
    done = job.model_copy(update={"progress": 1.0})
    head, _, tail = done.model_dump_json().partition(",")
    events = (
        f": ping\n\nevent: other\ndata: {{}}\n\nevent: job\nid: 1\ndata: {head},\ndata: {tail}\n\n"
    )
    server.hooks[f"/v1/jobs/{job.id}/events"] = lambda r: httpx.Response(
        200, headers={"content-type": "text/event-stream"}, text=events
    )

    assert list(client.job_events(job.id)) == [done]


class _SilentStream(http.server.BaseHTTPRequestHandler):
    """Answers an event stream with one job event, then holds it open, sending nothing
    (no pings), until the test releases it: as a server whose job makes no progress."""

    protocol_version = "HTTP/1.1"
    job: str = ""
    release: threading.Event

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        event = f"event: job\ndata: {self.job}\n\n".encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
        self.wfile.flush()
        self.release.wait(30)

    def log_message(self, *args):
        pass


@pytest.fixture
def silent_stream():
    """A real HTTP server (a thread of this process) whose event stream goes quiet."""
    now = "2030-01-01T00:00:00Z"
    running = {
        "id": "job_000000000001", "kind": "stego.embed", "state": "running", "progress": 0.25,
        "inputs": {"plane": "obj_000000000001"}, "created_at": now, "updated_at": now,
    }  # fmt: skip
    handler = type("Handler", (_SilentStream,), {"job": json.dumps(running)})
    handler.release = threading.Event()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", running["id"]
    handler.release.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_a_stop_signal_breaks_a_quiet_event_stream_at_once(silent_stream):
    url, job_id = silent_stream
    stop = StopSignal()
    seen, result = [], {}
    with ApiClient(url, TOKEN, retry=NO_WAIT) as client:
        follower = threading.Thread(
            target=lambda: result.update(job=client.follow_job(job_id, seen.append, stop=stop))
        )
        follower.start()
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            follower.join(0.01)
        assert seen, "the first event did not arrive"
        stopped_at = time.monotonic()
        stop.set()
        follower.join(5)
        took = time.monotonic() - stopped_at
    assert not follower.is_alive()
    assert took < 1.0, f"the stop took {took:.1f} s"
    assert result["job"].state is JobState.RUNNING  # the last state seen, not polled again


def test_stop_signal_callbacks_run_once_and_can_be_removed():
    stop = StopSignal()
    calls = []
    stop.on_set(lambda: calls.append("a"))
    remove = stop.on_set(lambda: calls.append("b"))
    remove()
    stop.on_set(lambda: 1 / 0)  # a failing callback does not stop the others
    stop.on_set(lambda: calls.append("c"))
    stop.set()
    stop.set()
    assert calls == ["a", "c"] and stop.is_set()
    stop.on_set(lambda: calls.append("late"))  # already set: runs at once
    assert calls == ["a", "c", "late"]
