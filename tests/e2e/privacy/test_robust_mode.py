"""What the server sees in robust mode: the cover's working mix, the sealed payload and
``k_pos``, nothing else. A full robust encode and decode on a standalone stack of its own
(on the traced vhost, see ``conftest.py``), then a search of everything the server side holds
or said, as in ``test_nothing_leaks.py``.

Robust marking reads audio, so unlike the LSB mode the server does receive audio: the
channels' mean at 16 kHz as 16-bit PCM (docs/robust.md, "What travels"). The test pins that
scope: the mix objects the server holds are exactly the documented mix of the cover and of the
stego file, byte for byte; the cover's and the stego file's own samples, the secret, its name,
the passphrase and ``k_enc`` appear nowhere; no log holds ``k_pos``, the token, the name or
the passphrase; no finished job keeps ``k_pos``.
"""

from __future__ import annotations

import io
import json
import secrets
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from desktop.core.api import ApiClient
from desktop.core.envelope import AAD_BYTES, _k_enc, derive_position_key
from desktop.core.orchestration import PAYLOAD_NAME, TaskMode, decode, encode
from desktop.core.sessions import SessionStore
from desktop.core.uploader import Uploader
from subtone.robust import cover_mix, file_mix, wire
from subtone.stego import wav
from tests.e2e.conftest import Stack, _start
from tests.security.helpers import redis_items

from .conftest import Recorder
from .test_nothing_leaks import FAST_KDF, NEEDLE_BYTES, files_under, found_in

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def robust_stack(
    tmp_path_factory: pytest.TempPathFactory, traced_vhost: Recorder
) -> Iterator[Stack]:
    """A stack of its own (its Redis prefix, store and logs hold this test's traces only)."""
    yield from _start(tmp_path_factory.mktemp("privacy-robust-stack"), traced_vhost.url)


def _field(raw: bytes, name: str) -> str:
    value = json.loads(raw)[name]
    assert isinstance(value, str)
    return value


def _mix_bytes(mix) -> bytes:
    out = io.BytesIO()
    wire.write_mix(out, mix)
    return out.getvalue()


def test_the_server_sees_the_working_mix_and_nothing_else_in_robust_mode(
    robust_stack: Stack, traced_vhost: Recorder, tmp_path: Path
) -> None:
    stack = robust_stack
    mark = secrets.token_hex(6)
    name = f"zq{mark}.txt"
    passphrase = f"pp {secrets.token_hex(12)} correct horse battery staple"
    plaintext = f"The vault code is 7-3-1-9 ({mark}). Burn after reading.".encode()
    client_side = tmp_path / "client"
    client_side.mkdir()
    secret = client_side / name
    secret.write_bytes(plaintext)
    cover = client_side / "cover.wav"
    wav.generate_cover(cover, 30.0, rate=44_100, channels=2, bits=16, seed=11)
    stego = client_side / "stego.wav"

    with (
        ApiClient(stack.url, stack.token) as client,
        Uploader(client, store=SessionStore(client_side / "sessions.db")) as uploader,
    ):
        summary = encode(
            client, cover, secret, stego, passphrase, uploader=uploader,
            compress_audio=False, position_kdf=FAST_KDF, mode=TaskMode.ROBUST,
        )  # fmt: skip
        recovered = decode(
            client, stego, client_side / "out", passphrase, uploader=uploader,
            position_kdf=FAST_KDF,
        )  # fmt: skip
    assert recovered.mode is TaskMode.ROBUST
    assert recovered.output.read_bytes() == plaintext

    items = list(redis_items(stack.redis, stack.settings.REDIS_PREFIX))
    uploads = [i for i in items if b'"storage_upload_id"' in i]
    assert {_field(u, "name") for u in uploads} == {"cover.mix", PAYLOAD_NAME, "stego.mix"}
    store_root = stack.settings.localstore_root

    def stored(upload_name: str) -> bytes:
        key = next(_field(u, "key") for u in uploads if _field(u, "name") == upload_name)
        return store_root.joinpath(*key.split("/")).read_bytes()

    # The audio the server holds is exactly the documented working mix, nothing more.
    assert stored("cover.mix") == _mix_bytes(cover_mix(cover)[1])
    assert stored("stego.mix") == _mix_bytes(file_mix(stego))
    assert len(stored("cover.mix")) < cover.stat().st_size / 2.7  # 64 kB a second
    payload = stored(PAYLOAD_NAME)
    salt = payload[struct.calcsize(">BBBB") : AAD_BYTES]
    k_enc = _k_enc(passphrase.encode(), payload[0], FAST_KDF, salt)

    with cover.open("rb") as f:
        info, _ = wav.read_header(f)
    audio = cover.read_bytes()[info.prefix_size : info.prefix_size + info.data_size]
    middle = len(audio) // 2
    needles = {
        "the cover's samples (start)": audio[:NEEDLE_BYTES],
        "the cover's samples (middle)": audio[middle : middle + NEEDLE_BYTES],
        "the cover's samples (end)": audio[-NEEDLE_BYTES:],
        "the stego file's samples": stego.read_bytes()[-2 * NEEDLE_BYTES : -NEEDLE_BYTES],
        "the plaintext": plaintext[:NEEDLE_BYTES],
        "the secret's name": name.encode(),
        "the name's mark": f"zq{mark}".encode(),
        "the passphrase": passphrase.encode(),
        "k_enc": k_enc,
    }
    messages = traced_vhost.drain()
    assert all(any(j.encode() in m for m in messages) for j in (summary.job_id, recovered.job_id))
    data_dir = stack.settings.DATA_DIR
    haystacks = [
        *files_under(data_dir),
        *((f"redis item {i}", item) for i, item in enumerate(items)),
        *((f"RabbitMQ message {i}", m) for i, m in enumerate(messages)),
    ]
    assert found_in(haystacks, needles) == []
    log_needles = {
        "the API token": stack.token.encode(),
        "k_pos": derive_position_key(passphrase, position_kdf=FAST_KDF),
        "the secret's name": name.encode(),
        "the passphrase": passphrase.encode(),
    }
    logs = [p for p in (data_dir / "standalone").rglob("*") if p.is_file() and ".log" in p.name]
    assert len(logs) >= 4
    assert found_in(((str(p), p.read_bytes()) for p in logs), log_needles) == []
    jobs = [i for i in items if b'"kind":"robust.' in i]
    assert len(jobs) == 2 and all(b'"params":{}' in job for job in jobs), jobs
