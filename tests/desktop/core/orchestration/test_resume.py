"""Resume, pause and cancel, written once in the core: each checkpoint is honoured (what is
done is not done again) and each stop leaves the task where the next run expects it."""

from __future__ import annotations

import hashlib
import io
import os
import sqlite3
import stat
import threading
from pathlib import Path

import pytest

from desktop.core.api import ApiClient
from desktop.core.orchestration import (
    Runtime,
    Stage,
    StopReason,
    StopToken,
    TaskKind,
    TaskStatus,
    TaskStore,
    encode,
    prepare_encode,
    run_task,
    upload_inputs,
)
from desktop.core.orchestration.transfer import PAYLOAD_NAME, InputSlot
from desktop.core.sessions import FileIdentity, SessionStore
from desktop.core.sqlite import SqliteFile
from desktop.core.uploader import UploadCancelled, Uploader, UploadResult, file_identity
from subtone.protocol import JobState
from subtone.stego import plane
from tests.desktop.app_support import (
    CHEAP,
    NO_WAIT,
    Switchboard,
    SwitchedParts,
    plane_frames,
    write_wav,
)
from tests.desktop.fake_server import API, TOKEN, FakeServer, random_plane


@pytest.fixture
def board() -> Switchboard:
    return Switchboard(FakeServer(part_size=4096))


@pytest.fixture
def parts(board: Switchboard) -> SwitchedParts:
    return SwitchedParts(board)


@pytest.fixture
def runtime(board: Switchboard, parts: SwitchedParts, tmp_path: Path):
    client = ApiClient(API, TOKEN, transport=board.transport(), retry=NO_WAIT)
    uploads = SessionStore(tmp_path / "state" / "uploads.sqlite3")
    uploader = Uploader(client, store=uploads, transport=parts, parallel_parts=1, retry=NO_WAIT)
    store = TaskStore(tmp_path / "state" / "tasks.sqlite3")
    yield Runtime(client, uploader, store, tmp_path / "work")
    uploader.close()
    client.close()


@pytest.fixture
def task_id(runtime: Runtime, tmp_path: Path) -> str:
    cover = write_wav(tmp_path / "cover.wav", plane_frames(8, 4096))  # its plane: 8 parts
    secret = tmp_path / "plan.txt"
    secret.write_bytes(b"meet at noon " * 8)
    task = prepare_encode(
        runtime.store,
        runtime.work_dir,
        server=API,
        cover=cover,
        secret=secret,
        passphrase="correct horse",
        position_kdf=CHEAP,
    )
    return task.id


def api_calls(server: FakeServer, method: str, path: str) -> int:
    return sum(1 for r in server.requests if r.method == method and r.url.path == path)


def test_a_pause_during_the_job_resumes_following_the_same_job(runtime, board, task_id):
    server = board.server
    server.sse = False
    stop = StopToken()
    real_advance = server.advance

    def advance_then_pause(job_id):
        stop.stop(StopReason.PAUSE)
        return real_advance(job_id)

    server.advance = advance_then_pause
    paused = run_task(runtime, task_id, stop=stop)
    assert paused.status is TaskStatus.PAUSED and paused.job_id is not None
    server.advance = real_advance
    puts, uploads = len(server.puts), api_calls(server, "POST", "/v1/uploads")

    done = run_task(runtime, task_id)

    assert done.status is TaskStatus.SUCCEEDED and done.job_id == paused.job_id
    assert api_calls(server, "POST", "/v1/jobs") == 1 and len(server.jobs) == 1
    assert len(server.puts) == puts and api_calls(server, "POST", "/v1/uploads") == uploads
    assert not any(r.url.path.endswith("/cancel") for r in server.requests)


def test_a_pause_after_the_plane_resumes_with_the_payload_only(runtime, task_id):
    stop = StopToken()
    heard: list[InputSlot] = []

    def pause_after(slot: InputSlot, result: UploadResult) -> None:
        heard.append(slot)
        stop.stop(StopReason.PAUSE)

    paused = run_task(runtime, task_id, stop=stop, on_uploaded=pause_after)
    assert paused.status is TaskStatus.PAUSED and paused.input_object_id is not None
    assert paused.payload_object_id is None and paused.job_id is None

    done = run_task(runtime, task_id, on_uploaded=lambda slot, _: heard.append(slot))

    assert done.status is TaskStatus.SUCCEEDED
    assert heard == [InputSlot.SOURCE, InputSlot.PAYLOAD]  # the plane was not sent again
    assert done.input_object_id == paused.input_object_id


def test_a_drop_during_the_download_resumes_with_the_download_only(runtime, board, task_id):
    server = board.server
    real_finish = server._finish

    def finish_then_drop(job):
        board.offline = True  # the result is ready, then the network goes
        return real_finish(job)

    server._finish = finish_then_drop
    with pytest.raises(Exception, match="Cannot reach"):
        run_task(runtime, task_id)
    waiting = runtime.store.require(task_id)
    assert waiting.status is TaskStatus.QUEUED and waiting.job_id is not None
    assert waiting.output_path is None
    board.offline = False
    server._finish = real_finish
    puts, uploads = len(server.puts), api_calls(server, "POST", "/v1/uploads")

    done = run_task(runtime, task_id)

    assert done.status is TaskStatus.SUCCEEDED and done.output.is_file()
    assert api_calls(server, "POST", "/v1/jobs") == 1
    assert len(server.puts) == puts and api_calls(server, "POST", "/v1/uploads") == uploads


def test_a_cancel_while_uploading_creates_no_job_and_stays_cancelled(
    runtime, board, parts, task_id
):
    stop = StopToken()
    parts.before_put = lambda n: stop.stop(StopReason.CANCEL) if n == 3 else None
    sealed = Path(runtime.store.require(task_id).sealed_path)

    cancelled = run_task(runtime, task_id, stop=stop)

    assert cancelled.status is TaskStatus.CANCELLED and not board.server.jobs
    (upload,) = board.server.uploads.values()
    assert upload.body.name == "cover.plane" and 1 <= len(upload.parts) < 8  # cut short
    assert not sealed.exists() and not sealed.with_suffix(".plane").exists()
    seen = len(board.server.requests)
    assert run_task(runtime, task_id).status is TaskStatus.CANCELLED
    assert len(board.server.requests) == seen  # a finished task is not touched again


def test_a_job_gone_from_the_server_is_created_again(runtime, board, task_id):
    server = board.server
    stop = StopToken()
    real_create = server._create_job

    def create_then_stop(body, key):
        answer = real_create(body, key)
        stop.stop(StopReason.SHUTDOWN)
        return answer

    server._create_job = create_then_stop
    server.sse = False
    first = run_task(runtime, task_id, stop=stop)
    assert first.status is TaskStatus.PROCESSING
    server._create_job = real_create
    server.jobs.clear()  # the server lost its records
    server.idempotency.clear()

    done = run_task(runtime, task_id)

    assert done.status is TaskStatus.SUCCEEDED and done.job_id != first.job_id


def test_the_clis_cancel_event_cancels_the_server_job_and_writes_nothing(board, parts, tmp_path):
    cover = write_wav(tmp_path / "cover.wav", 16_000)
    secret = tmp_path / "plan.txt"
    secret.write_bytes(b"meet at noon")
    server = board.server
    server.sse = False
    cancel = threading.Event()
    real_advance = server.advance

    def advance_then_cancel(job_id):
        cancel.set()
        return real_advance(job_id)

    server.advance = advance_then_cancel
    out = tmp_path / "out.wav"
    with ApiClient(API, TOKEN, transport=board.transport(), retry=NO_WAIT) as client:
        uploader = Uploader(client, transport=parts, retry=NO_WAIT)
        with pytest.raises(UploadCancelled):
            encode(
                client,
                cover,
                secret,
                out,
                "pw",
                uploader=uploader,
                cancel=cancel,
                position_kdf=CHEAP,
            )
    assert not out.exists()
    (job,) = server.jobs.values()
    assert job.state is JobState.CANCELLED


class _RecordingUploader:
    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.sent: list[str] = []
        self.declared: list[str | None] = []
        self.sessions: set[FileIdentity] = set()

    def upload_file(
        self, path, *, name, media_type, progress, hash_progress=None, cancel=None, sha256=None
    ):
        self.sent.append(name)
        self.declared.append(sha256)
        ref = self.server.add_object(Path(path).read_bytes(), name, media_type)
        return UploadResult(ref, f"up_{name}", 1, ref.size, resumed=False, reused=False)

    def has_session_for(self, identity: FileIdentity) -> bool:
        return identity in self.sessions


class _MemoryCheckpoint:
    def __init__(self, **done: str) -> None:
        self.done = {InputSlot(k): v for k, v in done.items()}

    def uploaded(self, slot: InputSlot) -> str | None:
        return self.done.get(slot)

    def record(self, slot: InputSlot, result: UploadResult) -> None:
        self.done[slot] = result.object.id


def _send_decode(
    uploader: _RecordingUploader, source: Path, lsb: Path, stages: list[Stage] | None = None
) -> dict[str, str]:
    """``upload_inputs`` of a decode with nothing uploaded yet (its stages into ``stages``)."""
    return upload_inputs(
        uploader,  # type: ignore[arg-type]
        TaskKind.DECODE,
        source,
        None,
        lsb_plane=lsb,
        checkpoint=_MemoryCheckpoint(),
        progress=None if stages is None else (lambda e: stages.append(e.stage)),
        cancel=threading.Event(),
    )


def test_upload_inputs_sends_only_what_the_checkpoint_lacks(tmp_path):
    cover, sealed = write_wav(tmp_path / "cover.wav", 16_000), tmp_path / "x.sealed"
    sealed.write_bytes(b"sealed")
    lsb = tmp_path / "x.plane"
    server = FakeServer()
    uploader = _RecordingUploader(server)
    checkpoint = _MemoryCheckpoint(input="obj_cover")
    stages: list[Stage] = []

    inputs = upload_inputs(
        uploader,  # type: ignore[arg-type]
        TaskKind.ENCODE,
        cover,
        sealed,
        lsb_plane=lsb,
        checkpoint=checkpoint,
        progress=lambda e: stages.append(e.stage),
        cancel=threading.Event(),
    )

    assert uploader.sent == [PAYLOAD_NAME]  # the secret's own name never leaves
    assert inputs == {"plane": "obj_cover", "payload": checkpoint.done[InputSlot.PAYLOAD]}
    assert Stage.PLANE not in stages and not lsb.exists()  # sent already: not read again
    decode_inputs = _send_decode(uploader, cover, lsb)
    assert list(decode_inputs) == ["plane"] and uploader.sent == [PAYLOAD_NAME, "cover.plane"]
    sent = server.objects[decode_inputs["plane"]]
    with cover.open("rb") as src:
        expected = io.BytesIO()
        plane.write_plane(src, expected)
    assert sent.data == expected.getvalue() and sent.ref.media_type == plane.MEDIA_TYPE
    assert not lsb.exists()  # sent: the local plane is dropped


def test_upload_inputs_sends_a_plane_already_written_without_reading_the_cover(tmp_path):
    lsb = tmp_path / "x.plane"
    lsb.write_bytes(random_plane(8_000))  # written by a run that stopped while sending it
    uploader = _RecordingUploader(server := FakeServer())
    uploader.sessions.add(file_identity(lsb))  # its upload, saved with the plane's SHA-256
    stages: list[Stage] = []

    gone = tmp_path / "gone.wav"  # not read: it is not even there
    inputs = _send_decode(uploader, gone, lsb, stages)

    assert server.objects[inputs["plane"]].data == random_plane(8_000)
    assert Stage.PLANE not in stages and not lsb.exists()
    assert uploader.declared == [hashlib.sha256(random_plane(8_000)).hexdigest()]


@pytest.mark.parametrize("vouched", ["no session", "a session for other bytes"])
def test_a_plane_no_upload_vouches_for_is_derived_again(tmp_path, vouched):
    """A plane is written without fsync: one an earlier run left (a crash of the machine may
    have left it with other bytes) is sent only if its upload session names those very
    bytes; otherwise it is read again from the file, and the right plane is sent."""
    stego = write_wav(tmp_path / "stego.wav", 16_000)
    with stego.open("rb") as src:
        expected = io.BytesIO()
        plane.write_plane(src, expected)
    lsb = tmp_path / "x.plane"
    lsb.write_bytes(expected.getvalue())
    uploader = _RecordingUploader(server := FakeServer())
    if vouched == "a session for other bytes":
        uploader.sessions.add(file_identity(lsb))
    written = lsb.stat()
    lsb.write_bytes(bytes(written.st_size))  # what the disk kept of it: zeros...
    os.utime(lsb, ns=(written.st_atime_ns, written.st_mtime_ns))  # ...the same size and time
    stages: list[Stage] = []

    inputs = _send_decode(uploader, stego, lsb, stages)

    assert server.objects[inputs["plane"]].data == expected.getvalue()
    assert Stage.PLANE in stages and not lsb.exists()
    assert uploader.declared == [hashlib.sha256(expected.getvalue()).hexdigest()]


def test_a_stop_token_keeps_a_cancel_over_a_pause():
    token = StopToken()
    token.stop(StopReason.CANCEL)
    token.stop(StopReason.PAUSE)
    assert token.reason is StopReason.CANCEL and token.stopped
    paused = StopToken()
    paused.stop(StopReason.PAUSE)
    paused.stop(StopReason.CANCEL)
    assert paused.reason is StopReason.CANCEL
    outside = threading.Event()
    theirs = StopToken(outside, unset_reason=StopReason.CANCEL)
    assert theirs.reason is None
    outside.set()
    assert theirs.stopped and theirs.reason is StopReason.CANCEL


def test_a_sqlite_file_is_made_private_and_prepared_once(tmp_path):
    runs: list[int] = []
    db = SqliteFile(
        tmp_path / "deep" / "state.sqlite3",
        "CREATE TABLE IF NOT EXISTS t (x INTEGER);",
        user_version=3,
        file_mode=0o600,
        on_first_use=lambda conn: runs.append(1),
    )
    with db.connect() as conn:
        conn.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(sqlite3.IntegrityError), db.connect() as conn:
        conn.execute("INSERT INTO t VALUES (2)")
        raise sqlite3.IntegrityError("rolled back")
    with db.connect() as conn:
        assert [r["x"] for r in conn.execute("SELECT x FROM t")] == [1]
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 3
    assert runs == [1]
    assert stat.S_IMODE(db.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(db.path.parent.stat().st_mode) == 0o700


def test_only_tasks_that_reached_no_server_follow_a_new_one(tmp_path):
    from desktop.core.orchestration import Task

    store = TaskStore(tmp_path / "tasks.sqlite3")

    def add(task_id: str, status: TaskStatus = TaskStatus.QUEUED, **fields) -> None:
        store.add(
            Task(
                id=task_id,
                kind=TaskKind.ENCODE,
                status=status,
                server="http://typo.test",
                input_path="/c.wav",
                input_bytes=1,
                k_pos="00",
                job_nonce="n",
                **fields,
            )
        )

    add("fresh")
    add("paused", TaskStatus.PAUSED)
    add("running")
    add("uploaded", input_object_id="obj_1")
    add("partly", payload_upload_id="up_2")
    add("with_job", TaskStatus.PROCESSING, job_id="job_1")
    add("done", TaskStatus.SUCCEEDED)
    moved = store.follow_server("http://right.test", exclude={"running"})
    assert sorted(t.id for t in moved) == ["fresh", "paused"]
    servers = {t.id: t.server for t in store.all()}
    assert servers == {
        "fresh": "http://right.test",
        "paused": "http://right.test",
        "running": "http://typo.test",
        "uploaded": "http://typo.test",
        "partly": "http://typo.test",
        "with_job": "http://typo.test",
        "done": "http://typo.test",
    }
    assert store.follow_server("http://right.test", exclude={"running"}) == []


def test_a_version_1_task_file_gains_the_trace_id_and_mode_and_keeps_its_rows(tmp_path):
    from desktop.core.orchestration.store import _SCHEMA, SCHEMA_VERSION, TaskMode

    path = tmp_path / "tasks.sqlite3"
    start = _SCHEMA.index(",\n    trace_id")
    old_schema = _SCHEMA[:start] + _SCHEMA[_SCHEMA.index("\n);", start) :]
    assert "trace_id" not in old_schema and "mode" not in old_schema
    conn = sqlite3.connect(path)
    conn.executescript(old_schema)
    conn.execute("PRAGMA user_version = 1")
    conn.execute(
        "INSERT INTO tasks (id, kind, status, server, created_at, updated_at, input_path, "
        "input_bytes, k_pos, job_nonce) VALUES ('t1', 'encode', 'queued', 'http://a', 1, 1, "
        "'/c.wav', 1, '00', 'n')"
    )
    conn.commit()
    conn.close()
    store = TaskStore(path)
    task = store.require("t1")
    assert task.trace_id is None and task.status is TaskStatus.QUEUED
    assert task.mode is TaskMode.LSB  # a task written before the robust mode
    assert store.update("t1", trace_id="ab" * 16).trace_id == "ab" * 16
    assert TaskStore(path).require("t1").trace_id == "ab" * 16  # a second opening: no error
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
