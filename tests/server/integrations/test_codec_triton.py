"""The codec end to end through a real Triton server: the same bytes as in-process."""

import hashlib
import io
import os

import pytest

from subtone.stego import codec, wav
from subtone.stego.engine import InProcessEngine
from tests.subtone.stego import test_golden as golden


def k_pos(passphrase: str) -> bytes:
    return hashlib.sha256(passphrase.encode()).digest()


@pytest.mark.parametrize("bits", [16, 24])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("fill", [0.92, None])
def test_round_trip_through_triton_is_bit_exact(tmp_path, triton_engine, bits, channels, fill):
    cover = tmp_path / "cover.wav"
    wav.generate_cover(
        cover, 4.0, rate=22_050, channels=channels, bits=bits, seed=bits + channels,
        extra_chunks_after=[(b"LIST", b"INFOICMT\x03\x00\x00\x00abc\x00")],
    )  # fmt: skip
    capacity = codec.read_capacity(cover)[1]
    payload = os.urandom(int(capacity.max_payload_bytes * fill) if fill else 23)
    out = tmp_path / "stego.wav"
    codec.embed_file(cover, out, k_pos=k_pos("pw"), payload=payload, engine=triton_engine)
    assert codec.extract_file(out, k_pos=k_pos("pw"), engine=triton_engine) == payload
    # Triton runs the same kernel: the stego file is identical to an in-process one.
    local = tmp_path / "local.wav"
    codec.embed_file(cover, local, k_pos=k_pos("pw"), payload=payload, engine=InProcessEngine())
    assert local.read_bytes() == out.read_bytes()


@pytest.mark.parametrize("name", sorted(golden.CASES))
def test_the_plane_protocol_through_triton_writes_the_golden_files(tmp_path, triton_engine, name):
    bits, channels, samples, size, seed, (_, changed), want = golden.CASES[name]
    cover, out = tmp_path / "cover.wav", tmp_path / "stego.wav"
    golden.golden_cover(cover, bits, channels, samples, seed)
    payload = golden.golden_payload(size, seed)
    assert golden.client_side_embed(cover, out, payload, triton_engine) == changed
    assert hashlib.sha256(out.read_bytes()).hexdigest() == want
    with out.open("rb") as f:
        info, _ = wav.read_header(f)
        plane = b"".join(p.tobytes() for p in codec.lsb_plane(f, info))
    got = codec.extract_plane(
        io.BytesIO(plane), samples=samples, k_pos=golden.K_POS, engine=triton_engine
    )
    assert got == payload
