"""Resumable parallel uploads: the uploader's logic against a fake API and a fake storage."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import random
import threading
import time
from pathlib import Path

import httpx
import pytest
import tenacity

from desktop.core.api import ApiClient
from desktop.core.parts import SEND_SLICE_BYTES, PartBody
from desktop.core.retry import Backoff
from desktop.core.sessions import SessionStore
from desktop.core.sources import FileSource
from desktop.core.uploader import (
    HttpPartTransport,
    PartRejected,
    PartUrlExpired,
    UploadCancelled,
    Uploader,
    file_identity,
    sha256_file,
)
from subtone.errors import SubtoneError
from subtone.protocol import UploadState
from tests.desktop.fake_server import API, TOKEN, FakePartTransport, FakeServer

PART = 4096
NO_WAIT = Backoff(max_attempts=4, base_seconds=0.0, max_seconds=0.0)


@pytest.fixture
def server() -> FakeServer:
    return FakeServer(part_size=PART)


@pytest.fixture
def client(server: FakeServer):
    with ApiClient(API, TOKEN, transport=server.transport(), retry=NO_WAIT) as c:
        yield c


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    return SessionStore(tmp_path / "state" / "uploads.sqlite3")


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "cover.wav"
    path.write_bytes(random.Random(7).randbytes(PART * 7 + 123))  # 8 parts, the last short
    return path


def make(client, store, transport, **kwargs) -> Uploader:
    kwargs.setdefault("retry", NO_WAIT)
    return Uploader(client, store=store, transport=transport, **kwargs)


def test_upload_sends_every_part_and_completes(server, client, store, data_file):
    transport = FakePartTransport(server)
    progress: list[tuple[int, int]] = []

    result = make(client, store, transport).upload_file(
        data_file, progress=lambda d, t: progress.append((d, t))
    )

    assert sorted(transport.calls) == list(range(1, 9))
    assert server.objects[result.object.id].data == data_file.read_bytes()
    assert result.parts_sent == 8 and not result.resumed and not result.reused
    size = data_file.stat().st_size
    assert progress[0] == (0, size) and progress[-1] == (size, size)
    assert [d for d, _ in progress] == sorted(d for d, _ in progress)
    assert server.uploads[result.upload_id].body.name == "cover.wav"


def test_parts_go_in_parallel(server, client, store, data_file):
    transport = FakePartTransport(server)
    barrier = threading.Barrier(4, timeout=10)
    transport.before_put = lambda part: barrier.wait()  # only passes with 4 PUTs at once

    make(client, store, transport, parallel_parts=4).upload_file(data_file)

    assert len(transport.calls) == 8


def test_a_part_failing_twice_is_retried_alone(server, client, store, data_file):
    transport = FakePartTransport(server)
    transport.faults[3] = [PartRejected("boom", status=500), PartRejected("boom", status=503)]

    make(client, store, transport).upload_file(data_file)

    assert transport.calls.count(3) == 3
    assert all(transport.calls.count(n) == 1 for n in range(1, 9) if n != 3)


def test_a_part_that_keeps_failing_stops_the_upload(server, client, store, data_file):
    transport = FakePartTransport(server)
    transport.faults[2] = [PartRejected("boom", status=500) for _ in range(10)]

    with pytest.raises(SubtoneError) as caught:
        make(client, store, transport).upload_file(data_file)

    assert transport.calls.count(2) == NO_WAIT.max_attempts
    assert "Part 2 failed 4 times" in caught.value.message
    assert server.completed == []


def test_a_refused_part_is_not_retried(server, client, store, data_file):
    transport = FakePartTransport(server)
    transport.faults[5] = [PartRejected("too large", status=400, retryable=False)]

    with pytest.raises(PartRejected):
        make(client, store, transport, parallel_parts=1).upload_file(data_file)

    assert transport.calls.count(5) == 1


def test_retry_waits_grow_with_jitter():
    backoff = Backoff(max_attempts=5, base_seconds=1.0, max_seconds=5.0)
    assert [backoff.ceiling(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    wait = backoff.wait()
    state = tenacity.RetryCallState(retry_object=tenacity.Retrying(), fn=None, args=(), kwargs={})
    for n in range(1, 6):
        state.attempt_number = n
        assert 0.0 <= wait(state) <= backoff.ceiling(n)
    exact = Backoff(max_attempts=5, base_seconds=1.0, max_seconds=5.0, jitter=False).wait()
    assert exact(state) == 5.0


def test_a_part_gives_up_after_its_tries_with_the_last_error(server, client, store, data_file):
    transport = FakePartTransport(server)
    transport.faults[2] = [PartRejected("busy", status=503)] * NO_WAIT.max_attempts

    with pytest.raises(SubtoneError) as caught:
        make(client, store, transport, parallel_parts=1).upload_file(data_file)

    assert f"failed {NO_WAIT.max_attempts} times" in caught.value.message
    assert caught.value.code == "part_rejected"
    assert transport.calls.count(2) == NO_WAIT.max_attempts


def test_an_expired_url_is_presigned_again(server, client, store, data_file):
    transport = FakePartTransport(server)
    transport.faults[2] = [PartUrlExpired()]

    result = make(client, store, transport, parallel_parts=1).upload_file(data_file)

    assert server.presigned[0] == list(range(1, 9))  # one batch for every missing part
    assert server.presigned[1][0] == 2  # part 2's fresh URL
    assert transport.calls.count(2) == 2
    assert server.objects[result.object.id].data == data_file.read_bytes()


def test_http_transport_turns_403_into_a_fresh_url(server, client, store, data_file):
    """The same, through the real httpx part transport and the fake storage's 403."""
    upload_id = "up_000000000001"  # the fake's first id
    server.expire_once.add((upload_id, 3))
    transport = HttpPartTransport(transport=server.transport())

    result = make(client, store, transport).upload_file(data_file)

    assert result.upload_id == upload_id
    assert any(batch[0] == 3 for batch in server.presigned[1:])
    assert server.objects[result.object.id].data == data_file.read_bytes()


def test_http_transport_maps_storage_answers():
    answers = {
        "/ok": httpx.Response(200, headers={"ETag": '"abc"'}),
        "/expired": httpx.Response(403),
        "/busy": httpx.Response(503),
        "/bad": httpx.Response(400, text="<Error>EntityTooSmall</Error>"),
        "/noetag": httpx.Response(200),
    }

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/down":
            raise httpx.ConnectError("refused")
        return answers[request.url.path]

    transport = HttpPartTransport(transport=httpx.MockTransport(handler))
    assert transport.put("http://s/ok", PartBody.of(b"x")) == '"abc"'
    with pytest.raises(PartUrlExpired):
        transport.put("http://s/expired", PartBody.of(b"x"))
    with pytest.raises(PartRejected) as busy:
        transport.put("http://s/busy", PartBody.of(b"x"))
    assert busy.value.retryable
    with pytest.raises(PartRejected) as bad:
        transport.put("http://s/bad", PartBody.of(b"x"))
    assert not bad.value.retryable and "EntityTooSmall" in bad.value.message
    with pytest.raises(PartRejected) as down:
        transport.put("http://s/down", PartBody.of(b"x"))
    assert down.value.retryable
    with pytest.raises(PartRejected) as no_etag:
        transport.put("http://s/noetag", PartBody.of(b"x"))
    assert not no_etag.value.retryable
    transport.close()


def test_http_transport_sends_a_part_with_its_length_in_pieces():
    # A part goes out in pieces (so httpcore does not copy the rest of it after every
    # send) yet framed by Content-Length, never chunked: S3 refuses a chunked pre-signed
    # PUT, and the local store checks the declared length against the part's limit first.
    seen: dict[str, object] = {}

    class Storage(http.server.BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            seen["headers"] = dict(self.headers)
            seen["body"] = self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("ETag", '"e1"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    data = random.Random(5).randbytes(3 * SEND_SLICE_BYTES + 7)
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), Storage) as storage:
        serving = threading.Thread(target=storage.serve_forever, daemon=True)
        serving.start()
        transport = HttpPartTransport()
        try:
            url = f"http://127.0.0.1:{storage.server_address[1]}/part?sig=1"
            assert transport.put(url, PartBody.of(data)) == '"e1"'
        finally:
            transport.close()
            storage.shutdown()
            serving.join(10)
    headers = {k.lower(): v for k, v in seen["headers"].items()}  # type: ignore[attr-defined]
    assert headers["content-length"] == str(len(data))
    assert "transfer-encoding" not in headers
    assert seen["body"] == data


def test_a_file_part_is_read_in_pieces_as_it_is_sent_and_again_for_a_retry(tmp_path):
    data = random.Random(9).randbytes(2 * SEND_SLICE_BYTES + 11)
    path = tmp_path / "plane.bin"
    path.write_bytes(data)
    source = FileSource(file_identity(path))
    body = source.body(5, len(data) - 5)
    pieces = list(body)
    assert body.size == len(data) - 5 and max(len(p) for p in pieces) == SEND_SLICE_BYTES
    assert b"".join(pieces) == data[5:] == b"".join(body)  # a retried PUT reads it again


def test_a_file_that_shrinks_under_a_part_being_sent_stops_it(tmp_path):
    path = tmp_path / "plane.bin"
    path.write_bytes(bytes(3 * SEND_SLICE_BYTES))
    pieces = iter(FileSource(file_identity(path)).body(0, 3 * SEND_SLICE_BYTES))
    assert len(next(pieces)) == SEND_SLICE_BYTES
    os.truncate(path, SEND_SLICE_BYTES + 3)
    assert len(next(pieces)) == 3
    with pytest.raises(SubtoneError) as changed:
        next(pieces)
    assert changed.value.code == "file_changed"


def test_a_file_that_shrinks_during_an_upload_completes_nothing(server, client, store, data_file):
    transport = FakePartTransport(server)

    def shrink(part: int) -> None:
        if part == 3:
            os.truncate(data_file, PART * 2)

    transport.before_put = shrink
    with pytest.raises(SubtoneError) as changed:
        make(client, store, transport, parallel_parts=1).upload_file(data_file)
    assert changed.value.code == "file_changed"
    assert not server.objects


def test_completion_lists_etags_in_part_order(server, client, store, data_file):
    transport = FakePartTransport(server)
    delays = random.Random(3)
    transport.before_put = lambda part: time.sleep(delays.uniform(0, 0.02))

    make(client, store, transport, parallel_parts=4).upload_file(data_file)

    (sent,) = server.completed
    assert [n for n, _ in sent] == list(range(1, 9))
    data = data_file.read_bytes()
    for n, etag in sent:
        assert etag == hashlib.md5(data[(n - 1) * PART : n * PART]).hexdigest()


def test_resume_sends_only_the_missing_parts(server, client, store, data_file):
    first = FakePartTransport(server)
    first.faults[6] = [PartRejected("network down", status=None, retryable=False)]
    with pytest.raises(PartRejected):
        make(client, store, first, parallel_parts=1).upload_file(data_file)
    assert sorted(set(first.calls)) == [1, 2, 3, 4, 5, 6]
    stored = sorted(server.uploads["up_000000000001"].parts)
    assert stored == [1, 2, 3, 4, 5]

    # A new process: new store object on the same file, new uploader, new transport.
    again = FakePartTransport(server)
    result = make(client, SessionStore(store.path), again).upload_file(data_file)

    assert result.resumed and result.upload_id == "up_000000000001"
    assert sorted(again.calls) == [6, 7, 8]
    assert result.parts_sent == 3
    assert len(server.uploads) == 1
    assert server.objects[result.object.id].data == data_file.read_bytes()


def test_resume_trusts_the_server_over_the_local_record(server, client, store, data_file):
    make(client, store, FakePartTransport(server)).upload_file(data_file)
    upload = server.uploads["up_000000000001"]
    # Say the upload never completed and storage lost part 4: only part 4 is sent again.
    upload.state, upload.object = UploadState.UPLOADING, None
    del upload.parts[4]
    again = FakePartTransport(server)

    make(client, SessionStore(store.path), again).upload_file(data_file)

    assert again.calls == [4]


def test_a_completed_upload_is_reused(server, client, store, data_file):
    first = make(client, store, FakePartTransport(server)).upload_file(data_file)
    again = FakePartTransport(server)

    second = make(client, store, again).upload_file(data_file)

    assert second.reused and second.object == first.object
    assert again.calls == []


def test_an_upload_the_server_forgot_starts_anew(server, client, store, data_file):
    make(client, store, FakePartTransport(server)).upload_file(data_file)
    server.uploads.clear()

    result = make(client, store, FakePartTransport(server)).upload_file(data_file)

    assert not result.resumed and result.upload_id != "up_000000000001"


def test_a_changed_file_is_a_new_upload(server, client, store, data_file):
    make(client, store, FakePartTransport(server)).upload_file(data_file)
    data_file.write_bytes(data_file.read_bytes()[::-1])

    result = make(client, store, FakePartTransport(server)).upload_file(data_file)

    assert not result.resumed and len(server.uploads) == 2


def test_cancel_stops_between_parts_and_resumes_later(server, client, store, data_file):
    cancel = threading.Event()
    transport = FakePartTransport(server)

    def after_two(part: int) -> None:
        if len(transport.calls) == 2:
            cancel.set()

    transport.before_put = after_two
    with pytest.raises(UploadCancelled) as caught:
        make(client, store, transport, parallel_parts=1).upload_file(data_file, cancel=cancel)

    assert caught.value.code == "cancelled"
    assert transport.calls == [1, 2]  # the part in flight finished; no other started
    assert server.completed == []

    again = FakePartTransport(server)
    make(client, store, again, parallel_parts=1).upload_file(data_file)
    assert again.calls == [3, 4, 5, 6, 7, 8]


def test_upload_bytes_keeps_no_session(server, client, store):
    transport = FakePartTransport(server)

    result = make(client, store, transport).upload_bytes(
        b"sealed" * 1000, name="payload.bin", media_type="application/octet-stream"
    )

    assert server.objects[result.object.id].data == b"sealed" * 1000
    assert store.all() == []


def test_sha256_file_streams(tmp_path: Path):
    path = tmp_path / "f"
    path.write_bytes(b"abc" * 100_000)
    seen: list[int] = []
    assert (
        sha256_file(path, progress=lambda d, t: seen.append(d))
        == hashlib.sha256(b"abc" * 100_000).hexdigest()
    )
    assert seen[-1] == 300_000


def test_an_empty_file_is_refused(client, store, tmp_path: Path, server):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(SubtoneError) as caught:
        make(client, store, FakePartTransport(server)).upload_file(empty)
    assert caught.value.code == "empty_file"


def _created_bodies(server: FakeServer) -> list[dict]:
    return [
        json.loads(r.content)
        for r in server.requests
        if r.method == "POST" and r.url.path == "/v1/uploads"
    ]


def test_the_part_size_asked_for_is_sent_and_the_servers_answer_wins(
    server, client, store, data_file
):
    uploader = make(client, store, FakePartTransport(server), part_size=8 * 1024 * 1024)
    result = uploader.upload_file(data_file)
    assert _created_bodies(server)[0]["part_size"] == 8 * 1024 * 1024
    # The fake server plans its own 4 KiB parts: the client follows the server's plan.
    assert result.parts_total == 8
    assert sorted(server.puts) == list(range(1, 9))


def test_without_a_part_size_none_is_sent(server, client, store, data_file):
    make(client, store, FakePartTransport(server)).upload_file(data_file)
    assert "part_size" not in _created_bodies(server)[0]


@pytest.mark.parametrize("bad", [5 * 1024 * 1024 - 1, 5 * 1024**3 + 1])
def test_a_part_size_outside_s3s_limits_is_refused(client, store, bad):
    with pytest.raises(ValueError, match="part_size"):
        make(client, store, None, part_size=bad)


def test_a_sha256_the_caller_knows_is_declared_without_reading_the_file(
    server, client, store, data_file
):
    """A caller that wrote the file (the client's LSB plane) hashed it as it wrote it: the
    file is not read to hash it again, and the digest declared is the one given."""
    known = hashlib.sha256(data_file.read_bytes()).hexdigest()
    hashed: list[int] = []
    uploader = make(client, store, FakePartTransport(server))
    assert not uploader.has_session_for(file_identity(data_file))

    result = uploader.upload_file(
        data_file, sha256=known, hash_progress=lambda d, t: hashed.append(d)
    )

    assert hashed == []
    assert [b["sha256"] for b in _created_bodies(server)] == [known]
    assert server.objects[result.object.id].data == data_file.read_bytes()
    assert uploader.has_session_for(file_identity(data_file))  # it vouches for these bytes


def test_a_session_vouches_only_for_the_bytes_it_sent(server, client, store, data_file):
    make(client, store, FakePartTransport(server)).upload_file(data_file)
    sent = data_file.stat()
    data_file.write_bytes(bytes(sent.st_size))  # other bytes, the same size and time
    os.utime(data_file, ns=(sent.st_atime_ns, sent.st_mtime_ns))

    assert not make(client, store, FakePartTransport(server)).has_session_for(
        file_identity(data_file)
    )
    assert not Uploader(client).has_session_for(file_identity(data_file))  # keeps none
