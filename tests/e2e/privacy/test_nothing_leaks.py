"""Only ``k_pos``, ciphertext and LSB planes reach the server: a full encode and decode on
the real standalone stack, then a search of everything the server side holds or said.

Searched: every file under the stack's data folder (the local store's objects and its
``.multipart``/``.meta``/``.tmp`` folders, every log of the API, the worker, the local store and
Triton), every Redis key and value under the stack's prefix, and every RabbitMQ message
published or delivered in the stack's vhost (the firehose, see ``conftest.py``). Searched for:
the secret's plaintext, its file name, the passphrase, ``k_enc`` and runs of the cover's and
the stego file's audio samples, raw, in hex and in base64 (at each alignment, as they would
appear inside a larger encoded blob).
"""

from __future__ import annotations

import base64
import json
import secrets
import struct
from collections.abc import Iterable
from pathlib import Path

import httpx
import pytest

from desktop.core.api import ApiClient
from desktop.core.envelope import (
    AAD_BYTES,
    KdfParams,
    _k_enc,
    derive_position_key,
)
from desktop.core.orchestration import PAYLOAD_NAME, decode, encode
from desktop.core.sessions import SessionStore
from desktop.core.uploader import Uploader
from server.auth.service import TOKEN_PREFIX, TokenService
from subtone.stego import wav
from tests.e2e.conftest import Stack
from tests.security.helpers import redis_items

from .conftest import Recorder

pytestmark = pytest.mark.integration

FAST_KDF = KdfParams(log2_n=10, r=8, p=1)
"""Both keys' cost, for speed (the stored payload says which it used)."""
NEEDLE_BYTES = 48


def encodings(needle: bytes) -> list[bytes]:
    """``needle`` as it could appear: raw, hex, and base64 of it inside any larger blob."""
    forms = [needle, needle.hex().encode(), needle.hex().upper().encode()]
    for shift in range(3):
        aligned = needle[shift : shift + (len(needle) - shift) // 3 * 3]
        forms += [base64.b64encode(aligned), base64.urlsafe_b64encode(aligned)]
    return forms


def found_in(haystacks: Iterable[tuple[str, bytes]], needles: dict[str, bytes]) -> list[str]:
    forms = {f"{what} ({i})": form for what, n in needles.items() for i, form in
             enumerate(encodings(n))}  # fmt: skip
    return [f"{what} in {where}" for where, data in haystacks for what, form in forms.items()
            if form in data]  # fmt: skip


def files_under(root: Path) -> Iterable[tuple[str, bytes]]:
    """Every file's contents, and every file's and folder's name."""
    for path in sorted(root.rglob("*")):
        relative = str(path.relative_to(root))
        yield f"the path {relative}", relative.encode()
        if path.is_file() and not path.is_symlink():
            yield relative, path.read_bytes()


def test_the_server_never_sees_the_secret_its_name_or_the_passphrase(
    traced_stack: Stack, traced_vhost: Recorder, tmp_path: Path
) -> None:
    stack = traced_stack
    mark = secrets.token_hex(8)
    name = f"zq{mark}-minutes-of-the-board.txt"
    passphrase = f"pp {secrets.token_hex(12)} correct horse battery staple"
    sentence = f"The board met at midnight ({mark}); the vault code is 7-3-1-9. ".encode()
    plaintext = (sentence * (24_000 // len(sentence) + 1))[:24_000]
    client_side = tmp_path / "client"  # the user's machine: outside the stack's data folder
    client_side.mkdir()
    secret = client_side / name
    secret.write_bytes(plaintext)
    cover = client_side / "cover.wav"
    wav.generate_cover(cover, 6.0, rate=44_100, channels=2, bits=16, seed=11)
    stego = client_side / "stego.wav"

    with (
        ApiClient(stack.url, stack.token) as client,
        Uploader(client, store=SessionStore(client_side / "sessions.db")) as uploader,
    ):
        summary = encode(
            client, cover, secret, stego, passphrase, uploader=uploader,
            compress_audio=False, position_kdf=FAST_KDF,
        )  # fmt: skip
        recovered = decode(
            client, stego, client_side / "out", passphrase, uploader=uploader,
            position_kdf=FAST_KDF,
        )  # fmt: skip
    assert recovered.output.read_bytes() == plaintext
    assert recovered.name == name == summary.secret_name

    # What the server holds: Redis records, and the stored payload (to learn k_enc's salt).
    tenant = stack.settings.REDIS_PREFIX
    items = list(redis_items(stack.redis, tenant))
    uploads = [i for i in items if b'"storage_upload_id"' in i]
    upload_names = {_json_field(u, "name") for u in uploads}
    assert upload_names == {"cover.plane", PAYLOAD_NAME, "stego.plane"}, upload_names
    payload_key = next(
        _json_field(u, "key") for u in uploads if _json_field(u, "name") == PAYLOAD_NAME
    )
    store_root = stack.settings.localstore_root
    payload = store_root.joinpath(*payload_key.split("/")).read_bytes()
    assert payload[0] == 2 and tuple(payload[1:4]) == (FAST_KDF.log2_n, FAST_KDF.r, FAST_KDF.p)
    salt = payload[struct.calcsize(">BBBB") : AAD_BYTES]
    k_enc = _k_enc(passphrase.encode(), 2, FAST_KDF, salt)

    # The cover's audio never reaches the server, only its LSB plane: runs of its sample
    # bytes (from the start, the middle and the end of the data chunk) are searched too.
    with cover.open("rb") as f:
        info, _ = wav.read_header(f)
    audio = cover.read_bytes()[info.prefix_size : info.prefix_size + info.data_size]
    needles = {
        "the cover's samples (start)": audio[:NEEDLE_BYTES],
        "the cover's samples (middle)": audio[len(audio) // 2 : len(audio) // 2 + NEEDLE_BYTES],
        "the cover's samples (end)": audio[-NEEDLE_BYTES:],
        "the stego file's samples": stego.read_bytes()[-2 * NEEDLE_BYTES : -NEEDLE_BYTES],
        "plaintext start": plaintext[:NEEDLE_BYTES],
        "plaintext middle": plaintext[12_000 : 12_000 + NEEDLE_BYTES],
        "plaintext end": plaintext[-NEEDLE_BYTES:],
        "the secret's name": name.encode(),
        "the name's mark": f"zq{mark}".encode(),
        "the passphrase": passphrase.encode(),
        "k_enc": k_enc,
    }
    # Tokens the API refuses (made up, revoked, malformed) are not logged either: the lines
    # of a refusal are the ones most likely to quote what was refused.
    tokens = TokenService(stack.redis, prefix=stack.settings.REDIS_PREFIX)
    revoked, _ = tokens.create(f"leaving-{mark}")
    tokens.revoke(f"leaving-{mark}")
    refused = {
        "a made-up token": f"{TOKEN_PREFIX}{secrets.token_urlsafe(32)}",
        "a revoked token": revoked,
        "a malformed token": f"not-a-token-{secrets.token_hex(16)}",
    }
    for token in refused.values():
        answer = httpx.post(
            f"{stack.url}/v1/jobs", json={"kind": "stego.extract"},
            headers={"Authorization": f"Bearer {token}"}, timeout=10,
        )  # fmt: skip
        assert answer.status_code == 401, answer.text

    messages = traced_vhost.drain()
    job_ids = [summary.job_id, recovered.job_id]
    assert all(any(j.encode() in m for m in messages) for j in job_ids), "nothing was traced"

    data_dir = stack.settings.DATA_DIR
    logs = data_dir / "standalone" / "logs"
    for process in ("api", "worker", "triton", "localstore"):
        assert (logs / f"{process}.log").stat().st_size > 0, process
    assert (store_root / ".multipart").is_dir()
    haystacks = [
        *files_under(data_dir),
        *((f"redis item {i}", item) for i, item in enumerate(items)),
        *((f"RabbitMQ message {i}", m) for i, m in enumerate(messages)),
        *((f"RabbitMQ headers {i}", h.encode()) for i, h in enumerate(traced_vhost.headers)),
    ]
    assert found_in(haystacks, needles) == []
    # No log line of any server process holds the API token, k_pos (which the server is
    # given) or the secret's name; the logs are JSON lines with a trace id.
    log_needles = {
        "the API token": stack.token.encode(),
        **{what: token.encode() for what, token in refused.items()},
        "k_pos": derive_position_key(passphrase, position_kdf=FAST_KDF),
        "the secret's name": name.encode(),
        "the passphrase": passphrase.encode(),
    }
    log_files = [
        p for p in (data_dir / "standalone").rglob("*") if p.is_file() and ".log" in p.name
    ]
    assert len(log_files) >= 4
    assert found_in(((str(p), p.read_bytes()) for p in log_files), log_needles) == []
    assert b'"trace_id": "' in (logs / "worker.log").read_bytes()
    # k_pos reaches the server, but no finished job keeps it.
    jobs = [i for i in items if b'"kind":"stego.' in i]
    assert len(jobs) == 2 and all(b'"params":{}' in job for job in jobs), jobs
    # The search can fail: the client's own folder holds the plaintext and the name.
    leaks = found_in(files_under(client_side), needles)
    assert any("plaintext" in leak for leak in leaks) and any("name" in leak for leak in leaks)
    assert any("cover's samples" in leak for leak in leaks)


def _json_field(raw: bytes, field: str) -> str:
    value = json.loads(raw)[field]
    assert isinstance(value, str)
    return value
