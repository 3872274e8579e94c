"""The app's resumable encode/decode tasks against the fake API (no Qt, no display)."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest

from desktop.core.api import ApiClient
from desktop.core.api_errors import ServerUnreachable
from desktop.core.orchestration import (
    Runtime,
    Stage,
    StopReason,
    StopToken,
    TaskStatus,
    TaskStore,
    is_transient,
    open_result,
    prepare_decode,
    prepare_encode,
    remove_task_files,
    run_task,
    sweep_work_dir,
)
from desktop.core.orchestration.transfer import InputSlot
from desktop.core.sessions import SessionStore
from desktop.core.stop import StopSignal
from desktop.core.uploader import PartRejected, Uploader, UploadResult
from subtone.errors import SubtoneError
from subtone.stego import plane
from tests.desktop.app_support import (
    CHEAP,
    NO_WAIT,
    Switchboard,
    SwitchedParts,
    plane_frames,
    write_wav,
)
from tests.desktop.fake_server import API, TOKEN, FakeServer

SECRET = b"The key is under the third stone from the gate. " * 4


@pytest.fixture
def board() -> Switchboard:
    return Switchboard(FakeServer(part_size=4096))


@pytest.fixture
def parts(board: Switchboard) -> SwitchedParts:
    return SwitchedParts(board)


@pytest.fixture
def runtime(board: Switchboard, parts: SwitchedParts, tmp_path: Path):
    client = ApiClient(API, TOKEN, transport=board.transport(), retry=NO_WAIT)
    uploader = Uploader(
        client,
        store=SessionStore(tmp_path / "state" / "uploads.sqlite3"),
        transport=parts,
        parallel_parts=1,
        retry=NO_WAIT,
    )
    store = TaskStore(tmp_path / "state" / "desktop.sqlite3")
    yield Runtime(client, uploader, store, tmp_path / "work")
    uploader.close()
    client.close()


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    # What is uploaded is the cover's LSB plane (1/16 of it): here 8 parts of 4 KiB.
    cover = write_wav(tmp_path / "cover.wav", plane_frames(8, 4096))
    secret = tmp_path / "plan.txt"
    secret.write_bytes(SECRET)
    return cover, secret


def queue_encode(runtime: Runtime, cover: Path, secret: Path, passphrase="correct horse", **kw):
    return prepare_encode(
        runtime.store,
        runtime.work_dir,
        server=API,
        cover=cover,
        secret=secret,
        passphrase=passphrase,
        position_kdf=CHEAP,
        **kw,
    )


def decode_file(runtime: Runtime, stego: Path, passphrase: str):
    task = prepare_decode(
        runtime.store, server=API, stego=stego, passphrase=passphrase, position_kdf=CHEAP
    )
    return run_task(runtime, task.id, passphrase=passphrase)


def test_encode_then_decode_recovers_the_secret(runtime, board, files):
    cover, secret = files
    queued = queue_encode(runtime, cover, secret)
    assert queued.status is TaskStatus.QUEUED and not board.server.requests  # nothing sent yet
    sealed = Path(queued.sealed_path)
    assert sealed.stat().st_mode & 0o777 == 0o600
    assert SECRET not in sealed.read_bytes()
    done = run_task(runtime, queued.id)
    assert done.status is TaskStatus.SUCCEEDED and done.job_state == "succeeded"
    assert done.output.is_file() and done.output.name == "cover.wav"
    assert done.output_bytes == cover.stat().st_size
    assert not sealed.exists()  # sent: the local sealed copy is dropped
    assert SECRET not in board.server.bodies()  # only ciphertext left this machine
    recovered = decode_file(runtime, done.output, "correct horse")
    assert recovered.status is TaskStatus.SUCCEEDED
    assert recovered.output.read_bytes() == SECRET
    assert recovered.output.name == "plan.txt"
    assert recovered.output.stat().st_mode & 0o777 == 0o600


def test_a_secret_that_does_not_fit_is_refused_before_anything(runtime, board, tmp_path):
    cover = write_wav(tmp_path / "tiny.wav", 2000)
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(5000))
    with pytest.raises(SubtoneError) as caught:
        queue_encode(runtime, cover, big)
    assert caught.value.code == "capacity_exceeded"
    assert runtime.store.all() == [] and not board.server.requests


def test_a_recording_is_deleted_once_sent(runtime, files, tmp_path):
    cover, _ = files
    recording = tmp_path / "recording.txt"
    recording.write_bytes(b"a voice, in a way")
    task = queue_encode(runtime, cover, recording, secret_is_recording=True)
    assert run_task(runtime, task.id).status is TaskStatus.SUCCEEDED
    assert not recording.exists()


def test_a_wrong_passphrase_is_refused_before_anything_is_sent(runtime, board, files):
    cover, secret = files
    done = run_task(runtime, queue_encode(runtime, cover, secret).id)
    server = board.server
    seen, uploads, jobs = len(server.requests), len(server.uploads), len(server.jobs)
    with pytest.raises(SubtoneError) as caught:
        decode_file(runtime, done.output, "wrong horse")
    assert caught.value.code == "no_payload"
    assert [t.id for t in runtime.store.all()] == [done.id]  # no decode task was queued
    assert len(server.requests) == seen  # nothing sent: no upload, no job
    assert (len(server.uploads), len(server.jobs)) == (uploads, jobs)
    assert list((runtime.work_dir / "sealed").glob("*.plane")) == []


def test_a_stopped_upload_resumes_without_resending_stored_parts(runtime, board, parts, files):
    cover, secret = files
    task = queue_encode(runtime, cover, secret)
    stop = StopToken()

    def halt_at_part_4(number: int) -> None:
        if number == 4:
            stop.stop(StopReason.SHUTDOWN)

    parts.before_put = halt_at_part_4
    stopped = run_task(runtime, task.id, stop=stop)
    assert stopped.status is TaskStatus.UPLOADING  # shutdown: left to continue next time
    sent_before = list(board.server.puts)
    assert 1 <= len(sent_before) < 8
    parts.before_put = None
    done = run_task(runtime, task.id)
    assert done.status is TaskStatus.SUCCEEDED
    resent = board.server.puts[len(sent_before) :]
    plane_parts = resent[:-1]  # the last PUT is the sealed payload's single part
    assert sorted(sent_before + plane_parts) == list(range(1, 9))


def test_pause_and_cancel(runtime, board, parts, files):
    cover, secret = files
    task = queue_encode(runtime, cover, secret)
    stop = StopToken()
    parts.before_put = lambda n: stop.stop(StopReason.PAUSE) if n == 2 else None
    assert run_task(runtime, task.id, stop=stop).status is TaskStatus.PAUSED
    cancel = StopToken()
    cancel.stop(StopReason.CANCEL)
    assert run_task(runtime, task.id, stop=cancel).status is TaskStatus.CANCELLED
    assert run_task(runtime, task.id).status is TaskStatus.CANCELLED  # finished stays finished


def test_cancel_during_the_job_cancels_it_on_the_server(runtime, board, files):
    cover, secret = files
    board.server.sse = False
    task = queue_encode(runtime, cover, secret)
    stop = StopToken()
    server = board.server
    real_advance = server.advance

    def advance_then_cancel(job_id):
        job = real_advance(job_id)
        stop.stop(StopReason.CANCEL)
        return job

    server.advance = advance_then_cancel
    assert run_task(runtime, task.id, stop=stop).status is TaskStatus.CANCELLED
    assert any(r.url.path.endswith("/cancel") for r in server.requests)


def test_offline_puts_the_task_back_in_the_queue(runtime, board, files):
    cover, secret = files
    task = queue_encode(runtime, cover, secret)
    board.offline = True
    with pytest.raises(ServerUnreachable):
        run_task(runtime, task.id)
    waiting = runtime.store.require(task.id)
    assert waiting.status is TaskStatus.QUEUED and waiting.error_code == "server_unreachable"
    board.offline = False
    assert run_task(runtime, task.id).status is TaskStatus.SUCCEEDED


def test_storage_dropping_mid_upload_is_transient(runtime, board, parts, files):
    cover, secret = files
    task = queue_encode(runtime, cover, secret)
    parts.faults[3] = [PartRejected("reset by peer")] * 5
    with pytest.raises(ServerUnreachable, match="reset by peer"):
        run_task(runtime, task.id)
    assert runtime.store.require(task.id).status is TaskStatus.QUEUED
    parts.faults.clear()
    assert run_task(runtime, task.id).status is TaskStatus.SUCCEEDED
    assert is_transient(SubtoneError("x", code="part_rejected", status=503))
    assert not is_transient(SubtoneError("x", code="part_rejected", status=400))


def test_a_job_created_before_a_restart_is_followed_not_recreated(runtime, board, files):
    cover, secret = files
    task = queue_encode(runtime, cover, secret)
    stop = StopToken()
    real_create = board.server._create_job

    def create_then_stop(body, key):
        answer = real_create(body, key)
        stop.stop(StopReason.SHUTDOWN)
        return answer

    board.server._create_job = create_then_stop
    board.server.sse = False
    interrupted = run_task(runtime, task.id, stop=stop)
    assert interrupted.status is TaskStatus.PROCESSING and interrupted.job_id
    board.server._create_job = real_create
    done = run_task(runtime, task.id)
    assert done.status is TaskStatus.SUCCEEDED and done.job_id == interrupted.job_id
    assert len(board.server.jobs) == 1


def test_a_decode_interrupted_by_a_restart_waits_for_the_passphrase(runtime, files):
    cover, secret = files
    stego = run_task(runtime, queue_encode(runtime, cover, secret).id).output
    task = prepare_decode(
        runtime.store, server=API, stego=stego, passphrase="correct horse", position_kdf=CHEAP
    )
    waiting = run_task(runtime, task.id, passphrase=None)  # the app forgot it on restart
    assert waiting.status is TaskStatus.NEEDS_PASSPHRASE
    with pytest.raises(SubtoneError) as caught:
        open_result(runtime, task.id, "not it")
    assert caught.value.code == "wrong_passphrase"
    assert runtime.store.require(task.id).status is TaskStatus.NEEDS_PASSPHRASE
    opened = open_result(runtime, task.id, "correct horse")
    assert opened.status is TaskStatus.SUCCEEDED and opened.output.read_bytes() == SECRET


def test_a_failed_job_carries_the_servers_message(runtime, board, files):
    cover, secret = files
    board.server.fail_job = ("worker_crashed", "The worker stopped unexpectedly.")
    task = queue_encode(runtime, cover, secret)
    with pytest.raises(SubtoneError, match="stopped unexpectedly"):
        run_task(runtime, task.id)
    failed = runtime.store.require(task.id)
    assert (failed.status, failed.error_code) == (TaskStatus.FAILED, "worker_crashed")


def test_a_cover_gone_before_sending_fails_plainly(runtime, board, files):
    cover, secret = files
    task = queue_encode(runtime, cover, secret)
    cover.unlink()
    with pytest.raises(SubtoneError, match=r"Cannot read cover\.wav") as caught:
        run_task(runtime, task.id)
    assert caught.value.code == "unreadable_file"
    failed = runtime.store.require(task.id)
    assert (failed.status, failed.error_code) == (TaskStatus.FAILED, "unreadable_file")
    assert not board.server.uploads and not board.server.jobs


def test_runs_from_two_threads_share_the_store(runtime, files, tmp_path):
    cover, secret = files
    other = write_wav(tmp_path / "other.wav", 12_000)
    tasks = [queue_encode(runtime, c, secret) for c in (cover, other)]
    errors: list[BaseException] = []

    def run(task_id: str) -> None:
        try:
            run_task(runtime, task_id)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(t.id,)) for t in tasks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert {t.status for t in runtime.store.all()} == {TaskStatus.SUCCEEDED}


def test_a_cancelled_encode_leaves_no_sealed_payload(runtime, parts, files):
    cover, secret = files
    task = queue_encode(runtime, cover, secret)
    sealed = Path(task.sealed_path)
    assert sealed.is_file()
    stop = StopToken()
    parts.before_put = lambda n: stop.stop(StopReason.CANCEL) if n == 2 else None
    assert run_task(runtime, task.id, stop=stop).status is TaskStatus.CANCELLED
    assert not sealed.exists() and not sealed.with_suffix(".plane").exists()
    assert cover.exists() and secret.exists()  # the inputs stay


def test_a_failed_encode_leaves_no_sealed_payload(runtime, board, files):
    cover, secret = files
    board.server.fail_job = ("worker_crashed", "The worker stopped unexpectedly.")
    task = queue_encode(runtime, cover, secret)
    with pytest.raises(SubtoneError):
        run_task(runtime, task.id)
    assert not Path(task.sealed_path).exists()


def test_a_paused_encode_keeps_its_sealed_payload(runtime, parts, files):
    cover, secret = files
    task = queue_encode(runtime, cover, secret)
    stop = StopToken()
    parts.before_put = lambda n: stop.stop(StopReason.PAUSE) if n == 2 else None
    assert run_task(runtime, task.id, stop=stop).status is TaskStatus.PAUSED
    assert Path(task.sealed_path).is_file()  # needed to go on
    assert Path(task.sealed_path).with_suffix(".plane").is_file()  # the upload's source


def test_removing_a_task_deletes_the_apps_copy_of_its_output(runtime, files, tmp_path):
    cover, secret = files
    done = run_task(runtime, queue_encode(runtime, cover, secret).id)
    saved_elsewhere = tmp_path / "mine.wav"
    saved_elsewhere.write_bytes(done.output.read_bytes())
    assert done.output.is_relative_to(runtime.work_dir)
    remove_task_files(runtime.work_dir, done)
    assert not done.output.exists() and not done.output.parent.exists()
    assert saved_elsewhere.exists() and cover.exists()


def test_the_start_sweep_deletes_only_what_no_task_needs(runtime, files):
    cover, secret = files
    queued = queue_encode(runtime, cover, secret)  # still needs its sealed payload
    done = run_task(runtime, queue_encode(runtime, cover, secret).id)
    work = runtime.work_dir
    orphan_sealed = work / "sealed" / "task_gone.sealed"
    orphan_sealed.write_bytes(b"x")
    orphan_result = work / "results" / "task_gone"
    orphan_result.mkdir(parents=True)
    (orphan_result / "cover.wav").write_bytes(b"x")
    half_written = work / "results" / done.id / ".cover.wav.abc.part"
    half_written.write_bytes(b"x")

    removed = sweep_work_dir(runtime.store, work)

    assert set(removed) == {orphan_sealed, orphan_result, half_written}
    assert Path(queued.sealed_path).is_file()
    assert done.output.is_file()


def test_a_stop_token_can_break_a_blocking_wait():
    token = StopToken()
    assert isinstance(token.event, StopSignal)
    broken = []
    token.event.on_set(lambda: broken.append(True))
    token.stop(StopReason.SHUTDOWN)
    assert broken == [True] and token.stopped


@pytest.mark.parametrize(
    ("reason", "restart"), [(StopReason.PAUSE, False), (StopReason.SHUTDOWN, True)]
)
def test_a_resumed_encode_reuses_its_plane_file_and_its_upload(
    runtime, board, parts, files, tmp_path, reason, restart
):
    cover, secret = files
    task = queue_encode(runtime, cover, secret)
    lsb = runtime.work_dir / "sealed" / f"{task.id}.plane"
    stop = StopToken()
    parts.before_put = lambda n: stop.stop(reason) if n == 4 else None
    stopped = run_task(runtime, task.id, stop=stop)
    assert stopped.status is (TaskStatus.PAUSED if restart is False else TaskStatus.UPLOADING)
    assert stopped.input_object_id is None  # stopped in the middle of the plane's upload
    with cover.open("rb") as src:
        expected = io.BytesIO()
        plane.write_plane(src, expected)
    assert lsb.read_bytes() == expected.getvalue()  # kept whole, owner-only
    assert lsb.stat().st_mode & 0o777 == 0o600
    written = (lsb.stat().st_ino, lsb.stat().st_mtime_ns)
    (first,) = board.server.uploads.values()
    stored_before = [n for u, n in parts.stored if u == first.id]
    assert 1 <= len(stored_before) < 8
    parts.before_put = None

    again = runtime
    if restart:  # a new process over the same state: nothing but the files carries over
        client = ApiClient(API, TOKEN, transport=board.transport(), retry=NO_WAIT)
        uploads = SessionStore(tmp_path / "state" / "uploads.sqlite3")
        again = Runtime(
            client,
            Uploader(client, store=uploads, transport=parts, parallel_parts=1, retry=NO_WAIT),
            TaskStore(tmp_path / "state" / "desktop.sqlite3"),
            runtime.work_dir,
        )
    stages: list[Stage] = []
    at_send: list[tuple[int, int]] = []

    def sent(slot: InputSlot, result: UploadResult) -> None:
        if slot is InputSlot.SOURCE:
            at_send.append((lsb.stat().st_ino, lsb.stat().st_mtime_ns))
            assert result.resumed and result.upload_id == first.id

    done = run_task(again, task.id, progress=lambda e: stages.append(e.stage), on_uploaded=sent)

    assert done.status is TaskStatus.SUCCEEDED
    assert at_send == [written]  # the very file written before the stop was sent
    assert Stage.PLANE not in stages  # the cover was not read again
    plane_uploads = [u for u in board.server.uploads.values() if u.body.name == "cover.plane"]
    assert [u.id for u in plane_uploads] == [first.id]  # the same upload, not a new one
    resent = [n for u, n in parts.stored if u == first.id][len(stored_before) :]
    assert sorted(stored_before + resent) == list(range(1, 9))  # only the parts it lacked
    assert not lsb.exists()  # sent and done: dropped


@pytest.mark.parametrize("how", ["cancel while sending", "cancel while paused", "fail"])
def test_a_decode_stopped_for_good_while_sending_leaves_no_plane(runtime, board, parts, files, how):
    cover, secret = files
    stego = run_task(runtime, queue_encode(runtime, cover, secret).id).output
    task = prepare_decode(
        runtime.store, server=API, stego=stego, passphrase="correct horse", position_kdf=CHEAP
    )
    lsb = runtime.work_dir / "sealed" / f"{task.id}.plane"
    stop = StopToken()
    reason = StopReason.CANCEL if how == "cancel while sending" else StopReason.PAUSE
    parts.before_put = lambda n: stop.stop(reason) if n == 2 else None
    if how == "fail":
        parts.faults[2] = [PartRejected("no such bucket", status=400, retryable=False)]
        with pytest.raises(SubtoneError, match="no such bucket"):
            run_task(runtime, task.id, stop=StopToken())
        assert runtime.store.require(task.id).status is TaskStatus.FAILED
    else:
        stopped = run_task(runtime, task.id, stop=stop)
        if how == "cancel while paused":
            assert stopped.status is TaskStatus.PAUSED and lsb.is_file()
            cancel = StopToken()
            cancel.stop(StopReason.CANCEL)
            stopped = run_task(runtime, task.id, stop=cancel)
        assert stopped.status is TaskStatus.CANCELLED
    assert not lsb.exists()
