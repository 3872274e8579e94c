"""The codec end to end in-process: every property the format promises, and every bad input."""

import hashlib
import io
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from subtone.errors import SubtoneError
from subtone.stego import codec, layout, wav
from subtone.stego.engine import InProcessEngine
from subtone.stego.kernel import WINDOW_SAMPLES

ENGINE = InProcessEngine()
LIST_BEFORE = (b"LIST", b"INFOINAM\x05\x00\x00\x00cover\x00")  # odd-size INAM, padded
LIST_AFTER = (b"LIST", b"INFOICMT\x03\x00\x00\x00end\x00")


def key(passphrase: str) -> bytes:
    return hashlib.sha256(passphrase.encode()).digest()


def make_cover(
    path: Path, *, seconds=3.0, channels=2, bits=16, rate=44_100, seed=1, extensible=False
) -> Path:
    wav.generate_cover(
        path,
        seconds,
        rate=rate,
        channels=channels,
        bits=bits,
        seed=seed,
        extensible=extensible,
        extra_chunks_before=[LIST_BEFORE],
        extra_chunks_after=[LIST_AFTER],
    )
    return path


def samples_of(path: Path) -> np.ndarray:
    with path.open("rb") as f:
        info, _ = wav.read_header(f)
        return np.concatenate(list(wav.read_windows(f, info, WINDOW_SAMPLES)))


def data_region(path: Path) -> tuple[int, int]:
    with path.open("rb") as f:
        info, prefix = wav.read_header(f)
    return len(prefix), info.data_size


@pytest.mark.parametrize(
    ("bits", "channels", "fill"),
    [(16, 1, 0.95), (16, 2, 0.95), (24, 1, 0.95), (24, 2, 0.95), (16, 2, None), (24, 2, None)],
)
def test_round_trip_is_bit_exact(tmp_path, bits, channels, fill):
    cover = make_cover(tmp_path / "cover.wav", bits=bits, channels=channels)
    cap = codec.read_capacity(cover)[1]
    size = int(cap.max_payload_bytes * fill) if fill else 23
    payload = os.urandom(size)
    out = tmp_path / "stego.wav"
    result = codec.embed_file(cover, out, k_pos=key("pw"), payload=payload, engine=ENGINE)
    assert codec.extract_file(out, k_pos=key("pw"), engine=ENGINE) == payload
    if fill:
        assert result.k == 1
    else:
        # The 128-bit header changes about half its samples; each payload block at most one.
        assert result.k > 8
        assert result.samples_changed <= layout.HEADER_BITS + -(-size * 8 // result.k)


def test_stego_keeps_every_byte_outside_the_samples(tmp_path):
    cover = make_cover(tmp_path / "cover.wav", extensible=True)
    out = tmp_path / "stego.wav"
    codec.embed_file(cover, out, k_pos=key("pw"), payload=os.urandom(5000), engine=ENGINE)
    a, b = cover.read_bytes(), out.read_bytes()
    start, size = data_region(cover)
    assert len(a) == len(b)
    assert a[:start] == b[:start]
    assert a[start + size :] == b[start + size :]
    assert a[start : start + size] != b[start : start + size]


@given(seed=st.integers(0, 2**16), size=st.integers(1, 18_000), bits=st.sampled_from([16, 24]))
def test_every_sample_moves_at_most_one_and_nothing_clips(tmp_path_factory, seed, size, bits):
    tmp = tmp_path_factory.mktemp("prop")
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    frames = rng.integers(lo, hi, (150_000, 1), endpoint=True)
    frames[::7] = hi  # plenty of full-scale samples in both directions
    frames[3::7] = lo
    cover = tmp / "c.wav"
    wav.write_wav(cover, frames, 8000, bits)
    out = tmp / "s.wav"
    codec.embed_file(cover, out, k_pos=key(str(seed)), payload=os.urandom(size), engine=ENGINE)
    before, after = samples_of(cover).astype(np.int64), samples_of(out).astype(np.int64)
    assert np.abs(after - before).max() <= 1
    assert after.min() >= lo and after.max() <= hi


def test_changes_are_spread_over_the_whole_cover(tmp_path):
    cover = make_cover(tmp_path / "cover.wav", seconds=20.0)
    out = tmp_path / "stego.wav"
    codec.embed_file(cover, out, k_pos=key("pw"), payload=os.urandom(2000), engine=ENGINE)
    changed = np.nonzero(samples_of(out) != samples_of(cover))[0]
    total = samples_of(cover).size
    tenths = np.bincount(changed * 10 // total, minlength=10)
    assert tenths.min() > 0.5 * tenths.mean(), tenths


def test_small_secret_changes_far_fewer_samples_than_bits(tmp_path):
    cover = make_cover(tmp_path / "cover.wav", seconds=10.0)
    out = tmp_path / "stego.wav"
    payload = os.urandom(2000)
    result = codec.embed_file(cover, out, k_pos=key("pw"), payload=payload, engine=ENGINE)
    assert result.k > 1
    assert result.samples_changed < len(payload) * 8 / 3


def test_same_passphrase_same_positions_other_passphrase_other_positions(tmp_path):
    cover = make_cover(tmp_path / "cover.wav")
    payload = os.urandom(3000)
    outs = {}
    for name, pw in [("a", "one"), ("b", "one"), ("c", "two")]:
        outs[name] = tmp_path / f"{name}.wav"
        codec.embed_file(cover, outs[name], k_pos=key(pw), payload=payload, engine=ENGINE)
    assert outs["a"].read_bytes() == outs["b"].read_bytes()
    base = samples_of(cover)
    changed = {n: set(np.nonzero(samples_of(p) != base)[0]) for n, p in outs.items()}
    overlap = len(changed["a"] & changed["c"]) / len(changed["a"])
    assert overlap < 0.2, overlap


def test_wrong_key_is_no_payload_never_garbage(tmp_path):
    cover = make_cover(tmp_path / "cover.wav")
    out = tmp_path / "stego.wav"
    codec.embed_file(cover, out, k_pos=key("right"), payload=b"secret", engine=ENGINE)
    with pytest.raises(SubtoneError) as e:
        codec.extract_file(out, k_pos=key("wrong"), engine=ENGINE)
    assert e.value.code == "no_payload"


def test_cover_without_payload_is_no_payload(tmp_path):
    cover = make_cover(tmp_path / "cover.wav")
    with pytest.raises(SubtoneError) as e:
        codec.extract_file(cover, k_pos=key("pw"), engine=ENGINE)
    assert e.value.code == "no_payload"


def test_streams_need_no_seeking(tmp_path):
    cover = make_cover(tmp_path / "cover.wav")

    class OneWay(io.RawIOBase):
        def __init__(self, data: bytes):
            self._f = io.BytesIO(data)

        def readable(self):
            return True

        def readinto(self, b):
            chunk = self._f.read(min(len(b), 4093))
            b[: len(chunk)] = chunk
            return len(chunk)

    dst = io.BytesIO()
    codec.embed_stream(
        OneWay(cover.read_bytes()), dst, k_pos=key("pw"), payload=b"x" * 777, engine=ENGINE
    )
    got = codec.extract_stream(OneWay(dst.getvalue()), k_pos=key("pw"), engine=ENGINE)
    assert got == b"x" * 777


def test_progress_reaches_one(tmp_path):
    cover = make_cover(tmp_path / "cover.wav")
    seen: list[float] = []
    codec.embed_file(
        cover,
        tmp_path / "o.wav",
        k_pos=key("pw"),
        payload=b"abc",
        engine=ENGINE,
        progress=seen.append,
    )
    assert seen == sorted(seen) and seen[-1] == 1.0


# Bad input ------------------------------------------------------------------------------


def riff(fmt_tag: int, bits: int, data: bytes, channels: int = 1) -> bytes:
    block = channels * max(1, bits // 8)
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, 8000, 8000 * block, block, bits)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def valid_wav() -> bytes:
    buf = io.BytesIO()
    wav.write_wav(buf, np.zeros((20_000, 1), dtype=np.int32), 8000, 16)
    return buf.getvalue()


BAD_COVERS = {
    "not_wav": b"ID3\x03\x00" + b"\x00" * 100,
    "truncated_header": valid_wav()[:30],
    "data_claims_more": valid_wav()[:20_000],
    "float": riff(3, 32, b"\x00" * 4000),
    "8bit": riff(1, 8, b"\x80" * 4000),
    "compressed": riff(2, 4, b"\x00" * 4000),
    "zero_length": riff(1, 16, b""),
}
EXPECTED = {
    "not_wav": "not_wav",
    "truncated_header": "truncated",
    "data_claims_more": "truncated",
    "float": "unsupported_format",
    "8bit": "unsupported_format",
    "compressed": "unsupported_format",
    "zero_length": "empty_audio",
}


@pytest.mark.parametrize("case", sorted(BAD_COVERS))
def test_bad_cover_is_refused_with_its_code_and_writes_nothing(tmp_path, case):
    cover = tmp_path / "cover.wav"
    cover.write_bytes(BAD_COVERS[case])
    out = tmp_path / "out.wav"
    with pytest.raises(SubtoneError) as e:
        codec.embed_file(cover, out, k_pos=key("pw"), payload=b"hi", engine=ENGINE)
    assert e.value.code == EXPECTED[case]
    assert list(tmp_path.iterdir()) == [cover]


def test_payload_over_capacity_is_refused_and_writes_nothing(tmp_path):
    cover = make_cover(tmp_path / "cover.wav", seconds=0.5)
    cap = codec.read_capacity(cover)[1]
    with pytest.raises(SubtoneError) as e:
        codec.embed_file(
            cover,
            tmp_path / "o.wav",
            k_pos=key("pw"),
            payload=os.urandom(cap.max_payload_bytes + 1),
            engine=ENGINE,
        )
    assert e.value.code == "capacity_exceeded"
    assert not (tmp_path / "o.wav").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["cover.wav"]


def test_empty_secret_is_refused(tmp_path):
    cover = make_cover(tmp_path / "cover.wav", seconds=0.5)
    with pytest.raises(SubtoneError) as e:
        codec.embed_file(cover, tmp_path / "o.wav", k_pos=key("pw"), payload=b"", engine=ENGINE)
    assert e.value.code == "empty_secret"


def test_existing_output_is_untouched_when_embedding_fails(tmp_path):
    cover = tmp_path / "cover.wav"
    cover.write_bytes(BAD_COVERS["data_claims_more"])
    out = tmp_path / "out.wav"
    out.write_bytes(b"precious")
    with pytest.raises(SubtoneError):
        codec.embed_file(cover, out, k_pos=key("pw"), payload=b"hi", engine=ENGINE)
    assert out.read_bytes() == b"precious"
