"""Encode and decode end to end against the fake API: what reaches the server, and what not."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf
from filelock import FileLock

from desktop.core.api import ApiClient
from desktop.core.envelope import KdfParams, derive_position_key
from desktop.core.orchestration import (
    PAYLOAD_NAME,
    JobFailed,
    ProgressEvent,
    Stage,
    decode,
    encode,
    job_idempotency_key,
    max_secret_bytes,
    oneshot,
)
from desktop.core.orchestration import prepare as oneshot_prepare
from desktop.core.orchestration.store import TaskMode
from desktop.core.parts import PartRejected
from desktop.core.retry import Backoff
from desktop.core.sessions import SessionStore
from desktop.core.uploader import Uploader
from subtone.errors import SubtoneError
from subtone.protocol import JobKind
from subtone.stego import plane, wav
from subtone.stego.codec import embed_file, extract_file, read_capacity
from subtone.stego.engine import InProcessEngine
from subtone.stego.plane import plane_bytes
from subtone.stego.wav import generate_cover
from tests.desktop.app_support import plane_frames
from tests.desktop.fake_server import API, TOKEN, FakePartTransport, FakeServer

CHEAP = KdfParams(log2_n=4, r=1, p=1)
NO_WAIT = Backoff(max_attempts=3, base_seconds=0.0, max_seconds=0.0)
SECRET = b"Meet me at the old mill at noon. " * 6


def write_wav(path: Path, frames: int) -> Path:
    rng = np.random.default_rng(1)
    sf.write(path, rng.integers(-3000, 3000, frames).astype(np.int16), 8000, subtype="PCM_16")
    return path


@pytest.fixture
def server() -> FakeServer:
    return FakeServer(part_size=4096)


@pytest.fixture
def client(server: FakeServer):
    with ApiClient(API, TOKEN, transport=server.transport(), retry=NO_WAIT) as c:
        yield c


@pytest.fixture
def uploader(client, server, tmp_path: Path):
    store = SessionStore(tmp_path / "state.sqlite3")
    with Uploader(client, store=store, transport=FakePartTransport(server), retry=NO_WAIT) as up:
        yield up


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    cover = write_wav(tmp_path / "cover.wav", 16_000)
    secret = tmp_path / "diary for Bob.txt"
    secret.write_bytes(SECRET)
    return cover, secret


def run_encode(client, uploader, cover, secret, out, passphrase="correct horse", **kwargs):
    return encode(
        client,
        cover,
        secret,
        out,
        passphrase,
        uploader=uploader,
        position_kdf=CHEAP,
        **kwargs,
    )


def test_encode_then_decode_round_trips(server, client, uploader, files, tmp_path: Path):
    cover, secret = files
    events: list[ProgressEvent] = []
    out = tmp_path / "stego.wav"

    summary = run_encode(client, uploader, cover, secret, out, progress=events.append)

    stego, original = out.read_bytes(), cover.read_bytes()
    assert len(stego) == len(original) and stego != original
    changed = np.frombuffer(stego[44:], "<i2").astype(int) - np.frombuffer(original[44:], "<i2")
    assert set(np.unique(changed)) <= {-1, 0, 1}  # ±1 on the samples the patch named
    assert summary.output == out.resolve() and summary.output_bytes == cover.stat().st_size
    assert summary.secret_name == "diary for Bob.txt" and summary.secret_bytes == len(SECRET)
    assert summary.k >= 1 and summary.payload_bytes <= summary.capacity_bytes
    stages = {e.stage for e in events}
    assert stages >= {Stage.PLANE, Stage.UPLOAD, Stage.JOB, Stage.DOWNLOAD, Stage.APPLY}
    assert Stage.HASH not in stages  # the plane is hashed as it is written, not read again
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

    folder = tmp_path / "recovered"
    folder.mkdir()
    result = decode(client, out, folder, "correct horse", uploader=uploader, position_kdf=CHEAP)

    assert result.output == folder.resolve() / "diary for Bob.txt"
    assert result.output.read_bytes() == SECRET
    assert result.media_type == "text/plain"
    assert (result.output.stat().st_mode & 0o777) == 0o600


def test_the_secret_and_its_name_never_reach_the_server(server, client, uploader, files, tmp_path):
    cover, secret = files
    run_encode(client, uploader, cover, secret, tmp_path / "stego.wav")

    seen = server.bodies() + b"".join(
        part for u in server.uploads.values() for part in u.parts.values()
    )
    assert b"diary" not in seen and SECRET[:20] not in seen
    names = sorted(u.body.name for u in server.uploads.values())
    assert names == ["cover.plane", PAYLOAD_NAME]  # the cover's LSB plane, not the cover
    payload = next(u for u in server.uploads.values() if u.body.name == PAYLOAD_NAME)
    assert payload.body.media_type == "application/octet-stream"


def test_a_secret_too_large_is_refused_before_any_upload(server, client, uploader, tmp_path):
    cover = write_wav(tmp_path / "short.wav", 2000)  # about 230 bytes of capacity
    secret = tmp_path / "big.bin"
    secret.write_bytes(b"x" * 1000)

    with pytest.raises(SubtoneError) as caught:
        run_encode(client, uploader, cover, secret, tmp_path / "out.wav")

    assert caught.value.code == "capacity_exceeded"
    assert server.requests == []


def test_the_stego_files_copy_is_made_while_the_secret_is_sealed(
    server, client, uploader, files, tmp_path, monkeypatch
):
    """A one-shot encode starts its copy of the cover (under a temporary name beside the
    output) before the secret is sealed (the key derived): the copy is there while it is,
    and becomes the stego file."""
    from desktop.core.orchestration import steps

    cover, secret = files
    drafts_while_sealing: list[list[str]] = []
    seal = steps.seal

    def watching_seal(*args, **kwargs):
        drafts_while_sealing.append([p.name for p in tmp_path.glob(".stego.wav.*.part")])
        return seal(*args, **kwargs)

    monkeypatch.setattr(steps, "seal", watching_seal)
    out = tmp_path / "stego.wav"
    run_encode(client, uploader, cover, secret, out)
    assert len(drafts_while_sealing) == 1 and len(drafts_while_sealing[0]) == 1
    assert not list(tmp_path.glob(".stego.wav.*"))  # the draft became the stego file
    summary = decode(client, out, tmp_path / "out", "correct horse", uploader=uploader,
                     position_kdf=CHEAP)  # fmt: skip
    assert summary.output.read_bytes() == SECRET


def test_a_refused_encode_stops_its_copy_and_leaves_none(server, client, uploader, tmp_path):
    """A secret too large for the cover is refused after the copy has started: the copy stops
    after the chunk in progress and its file is removed."""
    cover = write_wav(tmp_path / "short.wav", 2000)
    secret = tmp_path / "big.bin"
    secret.write_bytes(b"x" * 1000)
    with pytest.raises(SubtoneError) as caught:
        run_encode(client, uploader, cover, secret, tmp_path / "out.wav")
    assert caught.value.code == "capacity_exceeded"
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["big.bin", "short.wav"]


def test_a_wrong_passphrase_is_refused_before_anything_is_sent(
    server, client, uploader, files, tmp_path
):
    cover, secret = files
    out = tmp_path / "stego.wav"
    run_encode(client, uploader, cover, secret, out)
    seen, uploads = len(server.requests), len(server.uploads)

    with pytest.raises(SubtoneError) as caught:
        decode(client, out, tmp_path, "wrong horse", uploader=uploader, position_kdf=CHEAP)

    assert caught.value.code == "no_payload" and not isinstance(caught.value, JobFailed)
    assert caught.value.message.startswith("No hidden message was found")
    assert len(server.requests) == seen and len(server.uploads) == uploads  # nothing sent
    assert len(server.jobs) == 1  # the encode's: no extract job was made


def test_a_wrong_passphrase_leaves_no_plane_behind(server, client, uploader, files, tmp_path):
    """The stego file's plane is read while the key is derived; refused, the run keeps none
    of it (nothing would ever resume it)."""
    cover, secret = files
    out = tmp_path / "stego.wav"
    run_encode(client, uploader, cover, secret, out)
    with pytest.raises(SubtoneError):
        decode(client, out, tmp_path, "wrong horse", uploader=uploader, position_kdf=CHEAP)
    assert list((tmp_path / "planes").glob("*.plane")) == []


def test_the_plane_is_read_while_the_key_is_derived(
    server, client, uploader, files, tmp_path, monkeypatch
):
    """Reading the cover does not wait for the passphrase's key: by the time the key is
    derived, the plane has been written (the derivation is held until it is)."""
    cover, secret = files
    planes = tmp_path / "planes"
    written_during_kdf: list[bool] = []
    derive = oneshot_prepare.derive_position_key

    def slow_derive(*args, **kwargs):
        deadline = time.monotonic() + 30
        while not list(planes.glob("*.plane")) and time.monotonic() < deadline:
            time.sleep(0.01)
        written_during_kdf.append(bool(list(planes.glob("*.plane"))))
        return derive(*args, **kwargs)

    out = tmp_path / "stego.wav"
    run_encode(client, uploader, cover, secret, out)
    monkeypatch.setattr(oneshot_prepare, "derive_position_key", slow_derive)
    summary = decode(client, out, tmp_path / "out", "correct horse", uploader=uploader,
                     position_kdf=CHEAP)  # fmt: skip
    assert written_during_kdf == [True]
    assert summary.output.read_bytes() == SECRET
    assert list(planes.glob("*.plane")) == []  # sent: gone


def test_a_robust_message_found_by_auto_leaves_no_plane_behind(server, client, uploader, tmp_path):
    """In ``auto`` the stego WAV's plane is read while the probe decides; the probe finding a
    robust message, the plane is of no use and is not kept."""
    cover = tmp_path / "walk.wav"
    generate_cover(cover, 30.0, rate=44_100, channels=2, bits=16, seed=5)
    secret = tmp_path / "note.txt"
    secret.write_bytes(b"at noon")
    out = tmp_path / "stego.wav"
    run_encode(client, uploader, cover, secret, out, mode=TaskMode.ROBUST)
    summary = decode(client, out, tmp_path / "found", "correct horse", uploader=uploader,
                     position_kdf=CHEAP)  # fmt: skip
    assert summary.mode is TaskMode.ROBUST
    assert summary.output.read_bytes() == b"at noon"
    assert list((tmp_path / "planes").glob("*.plane")) == []


def test_a_failed_embed_job_surfaces_its_code(server, client, uploader, files, tmp_path):
    cover, secret = files
    server.fail_job = ("corrupt_stego", "The cover changed.")
    out = tmp_path / "stego.wav"

    with pytest.raises(JobFailed) as caught:
        run_encode(client, uploader, cover, secret, out)

    assert (caught.value.code, caught.value.message) == ("corrupt_stego", "The cover changed.")
    assert not out.exists()


def test_a_retried_job_request_makes_one_job(server, client, uploader, files, tmp_path):
    cover, secret = files
    first = {"done": False}

    def lose_first_answer(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST" and not first["done"]:
            first["done"] = True
            server._api(request)  # the job is made, but the answer is lost
            return httpx.Response(502)
        return None

    server.hooks["/v1/jobs"] = lose_first_answer
    run_encode(client, uploader, cover, secret, tmp_path / "stego.wav")

    assert len(server.jobs) == 1


def test_a_corrupt_download_leaves_nothing_under_the_final_name(
    server, client, uploader, files, tmp_path
):
    cover, secret = files
    server.corrupt_download = True
    out = tmp_path / "stego.wav"

    with pytest.raises(SubtoneError) as caught:
        run_encode(client, uploader, cover, secret, out)

    assert caught.value.code == "download_incomplete"
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".stego.wav")]


def test_an_existing_output_is_kept_unless_overwriting(server, client, uploader, files, tmp_path):
    cover, secret = files
    out = tmp_path / "stego.wav"
    out.write_bytes(b"precious")

    with pytest.raises(SubtoneError) as caught:
        run_encode(client, uploader, cover, secret, out)
    assert caught.value.code == "output_exists" and out.read_bytes() == b"precious"
    assert server.requests == []

    run_encode(client, uploader, cover, secret, out, overwrite=True)
    assert out.stat().st_size == cover.stat().st_size


def test_decoding_twice_into_a_folder_keeps_both(server, client, uploader, files, tmp_path):
    cover, secret = files
    out = tmp_path / "stego.wav"
    run_encode(client, uploader, cover, secret, out)
    folder = tmp_path / "inbox"
    folder.mkdir()

    first = decode(client, out, folder, "correct horse", uploader=uploader, position_kdf=CHEAP)
    second = decode(client, out, folder, "correct horse", uploader=uploader, position_kdf=CHEAP)

    assert first.output.name == "diary for Bob.txt"
    assert second.output.name == "diary for Bob (1).txt"
    assert len(server.jobs) == 3  # each decode gets its own extract job


def test_idempotency_keys_depend_on_the_request():
    inputs = {"plane": "obj_1", "payload": "obj_2"}
    key = job_idempotency_key(JobKind.EMBED, inputs, b"k" * 32)
    assert key == job_idempotency_key(JobKind.EMBED, dict(reversed(inputs.items())), b"k" * 32)
    assert key != job_idempotency_key(JobKind.EMBED, inputs, b"j" * 32)
    assert key != job_idempotency_key(JobKind.EMBED, inputs, b"k" * 32, nonce="n")


def test_max_secret_bytes_fits_exactly():
    from desktop.core.envelope import sealed_length

    largest = max_secret_bytes(10_000, name="a.bin", media_type="application/octet-stream")
    assert sealed_length(largest, name="a.bin", media_type="application/octet-stream") <= 10_000
    assert sealed_length(largest + 1, name="a.bin", media_type="application/octet-stream") > 10_000
    assert max_secret_bytes(10) == 0


# The plane protocol: what leaves this machine, and what comes back ------------------------

COVERS = {
    "16-bit mono": dict(seconds=2.0, rate=8000, channels=1, bits=16),
    # three windows of samples, 24-bit, a chunk after the samples (kept as it is)
    "24-bit stereo": dict(
        seconds=7.0, rate=44_100, channels=2, bits=24, extra_chunks_after=[(b"LIST", b"x" * 9)]
    ),
}


@pytest.fixture(params=list(COVERS))
def any_cover(request, tmp_path: Path) -> Path:
    path = tmp_path / "cover.wav"
    generate_cover(path, seed=7, **COVERS[request.param])
    return path


def sample_bytes(path: Path) -> bytes:
    with path.open("rb") as f:
        info, _ = wav.read_header(f)
        return f.read(info.data_size)


def holds_a_run_of(blob: bytes, audio: bytes, run: int = 1024) -> bool:
    """Whether ``blob`` holds ``run`` consecutive bytes of ``audio``: any such run holds one
    of the ``run // 2``-byte pieces ``audio`` is cut into, so looking for those suffices."""
    piece = run // 2
    return any(audio[i : i + piece] in blob for i in range(0, len(audio) - piece + 1, piece))


def test_the_server_never_receives_the_covers_audio(server, client, uploader, any_cover, tmp_path):
    secret = tmp_path / "note.txt"
    secret.write_bytes(SECRET)
    out = tmp_path / "stego.wav"
    run_encode(client, uploader, any_cover, secret, out)
    decode(client, out, tmp_path, "correct horse", uploader=uploader, position_kdf=CHEAP)

    info, _ = read_capacity(any_cover)
    (embed,) = [j for j in server.jobs.values() if j.kind is JobKind.EMBED]
    sealed = server.objects[embed.inputs["payload"]].data
    k_pos = derive_position_key("correct horse", position_kdf=CHEAP)
    assert extract_file(out, k_pos=k_pos, engine=InProcessEngine()) == sealed  # what it hid
    uploaded = [server.objects[u.object.id].data for u in server.uploads.values() if u.object]
    assert len(uploaded) == 3  # the cover's plane, the sealed payload, the stego file's plane
    for data in uploaded:
        is_plane = data.startswith(plane.MAGIC) and len(data) == plane_bytes(info.samples)
        assert is_plane or data == sealed
    assert sum(data == sealed for data in uploaded) == 1
    sent = [r.content for r in server.requests] + [
        part for u in server.uploads.values() for part in u.parts.values()
    ]
    for audio in (sample_bytes(any_cover), sample_bytes(out)):
        assert not any(holds_a_run_of(blob, audio) for blob in sent + uploaded)
    on_the_wire = sum(len(b) for b in sent)
    assert on_the_wire < any_cover.stat().st_size // 4  # a 16th of the audio, twice, and more


def test_the_stego_file_is_the_codecs_embed_of_the_same_cover(
    server, client, uploader, any_cover, tmp_path
):
    secret = tmp_path / "note.txt"
    secret.write_bytes(SECRET)
    out = tmp_path / "stego.wav"
    run_encode(client, uploader, any_cover, secret, out)

    (job,) = server.jobs.values()
    k_pos = bytes.fromhex(server.params[job.id])
    assert k_pos == derive_position_key("correct horse", position_kdf=CHEAP)
    sealed = server.objects[job.inputs["payload"]].data  # the sealed payload, as stored
    expected = tmp_path / "expected.wav"
    embed_file(any_cover, expected, k_pos=k_pos, payload=sealed, engine=InProcessEngine())
    assert out.read_bytes() == expected.read_bytes()
    assert out.read_bytes() != any_cover.read_bytes()


def test_an_encode_run_again_after_a_failure_resumes_its_plane_upload(server, client, tmp_path):
    """The CLI keeps the cover's plane beside its upload sessions: a second run on the same
    cover sends only the parts the first did not."""
    cover = write_wav(tmp_path / "cover.wav", plane_frames(6, 4096))
    secret = tmp_path / "note.txt"
    secret.write_bytes(SECRET)
    parts = FakePartTransport(server)
    store = SessionStore(tmp_path / "state.sqlite3")
    with Uploader(client, store=store, transport=parts, retry=NO_WAIT) as up:
        parts.faults[4] = [PartRejected("no such bucket", status=400, retryable=False)]
        with pytest.raises(SubtoneError):
            run_encode(client, up, cover, secret, tmp_path / "first.wav")
        left = list((tmp_path / "planes").glob("*.plane"))
        assert len(left) == 1  # kept for the next run
        sent_before = len(parts.calls)
        summary = run_encode(client, up, cover, secret, tmp_path / "stego.wav")
    assert summary.cover_resumed and summary.cover_parts_total == 6
    assert summary.cover_parts_sent < 6
    sent_again = parts.calls[sent_before:]
    assert len([n for n in sent_again if n != 1]) <= summary.cover_parts_sent  # no re-send
    assert list((tmp_path / "planes").glob("*.plane")) == []  # sent: gone


def test_two_runs_on_one_cover_at_once_never_share_an_upload(
    server, client, uploader, files, tmp_path
):
    """While another run holds the cover's plane (its lock), a run keeps a plane of its own
    and uploads it separately: both finish, each on its own upload."""
    cover, secret = files
    first = run_encode(client, uploader, cover, secret, tmp_path / "a.wav")
    key = oneshot._plane_key(cover)
    with FileLock(tmp_path / "planes" / f"{key}.lock"):
        second = run_encode(client, uploader, cover, secret, tmp_path / "b.wav")
    assert first.cover.id != second.cover.id  # separate uploads of the same plane
    assert not second.cover_resumed
    assert (tmp_path / "a.wav").stat().st_size == (tmp_path / "b.wav").stat().st_size
