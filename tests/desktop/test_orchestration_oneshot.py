"""Encode and decode end to end against the fake API: what reaches the server, and what not."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile as sf

from desktop.core.api import ApiClient
from desktop.core.envelope import KdfParams
from desktop.core.orchestration import (
    PAYLOAD_NAME,
    JobFailed,
    ProgressEvent,
    Stage,
    decode,
    encode,
    job_idempotency_key,
    max_secret_bytes,
)
from desktop.core.retry import Backoff
from desktop.core.sessions import SessionStore
from desktop.core.uploader import Uploader
from subtone.errors import SubtoneError
from subtone.protocol import JobKind
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
        kdf=CHEAP,
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
    assert {e.stage for e in events} >= {
        Stage.PLANE,
        Stage.UPLOAD,
        Stage.JOB,
        Stage.DOWNLOAD,
        Stage.HASH,
        Stage.APPLY,
    }
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
    assert names == ["cover.wav", PAYLOAD_NAME]
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


def test_a_wrong_passphrase_fails_with_the_servers_code(server, client, uploader, files, tmp_path):
    cover, secret = files
    out = tmp_path / "stego.wav"
    run_encode(client, uploader, cover, secret, out)

    with pytest.raises(JobFailed) as caught:
        decode(client, out, tmp_path, "wrong horse", uploader=uploader, position_kdf=CHEAP)

    assert caught.value.code == "no_payload"
    assert caught.value.message == "No hidden message was found."


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
    assert len(server.jobs) == 3  # the reused stego upload still gets a fresh extract job


def test_idempotency_keys_depend_on_the_request():
    inputs = {"cover": "obj_1", "payload": "obj_2"}
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
