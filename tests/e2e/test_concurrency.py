"""Many clients encoding the same new cover at once, on the real standalone stack: each
finishes, each on an upload of its own, and each stego file decodes exactly."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from desktop.core.envelope import KdfParams
from desktop.core.orchestration import decode, encode
from desktop.core.sessions import SessionStore
from desktop.core.uploader import Uploader
from server.auth.service import TokenService
from tests.e2e.test_pipeline import client_for, cover

pytestmark = pytest.mark.integration

CLIENTS = 50
FAST_KDF = KdfParams(log2_n=10, r=8, p=1)


def test_fifty_encodes_of_one_new_cover_at_once_all_succeed_and_decode(stack, tmp_path):
    source = cover(tmp_path / "cover.wav", 30.0)  # a new cover, 5 MB
    sessions = tmp_path / "sessions.sqlite3"  # one resume database, as on one machine
    # A token each: one token's 600 requests a minute would (rightly) throttle 50 at once.
    service = TokenService(stack.redis, prefix=stack.settings.REDIS_PREFIX)
    tokens = [service.create(f"concurrent-{n}")[0] for n in range(CLIENTS)]

    def one(n: int) -> tuple[bytes, bytes]:
        secret = tmp_path / f"secret-{n}.bin"
        secret.write_bytes(os.urandom(2000))
        out = tmp_path / f"stego-{n}.wav"
        with (
            client_for(stack, tokens[n]) as client,
            Uploader(client, store=SessionStore(sessions)) as up,
        ):
            encode(client, source, secret, out, f"pass {n}", uploader=up,
                   position_kdf=FAST_KDF)  # fmt: skip
            got = decode(client, out, tmp_path / f"out-{n}", f"pass {n}", uploader=up,
                         position_kdf=FAST_KDF)  # fmt: skip
        return secret.read_bytes(), got.output.read_bytes()

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        results = list(pool.map(one, range(CLIENTS)))
    assert len(results) == CLIENTS
    assert all(sent == back for sent, back in results)
