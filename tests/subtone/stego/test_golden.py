"""Format v1 is frozen: today's stego files, byte for byte.

The covers are made here from a seed (so the expected hashes do not depend on
``wav.generate_cover``), with full-scale samples sprinkled in, a few windows long and a short
last window. The hashes were recorded with the sample-based kernel before the packed-plane
kernel replaced it; any change to positions, signs, the header or the allocation breaks them.
"""

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest

from subtone.stego import codec, kernel, wav
from subtone.stego.engine import InProcessEngine
from subtone.stego.kernel import WINDOW_SAMPLES
from subtone.stego.layout import StegoError

K_POS = hashlib.sha256(b"subtone golden k_pos").digest()

# bits, channels, samples, payload bytes, seed, (k, samples changed), sha256 of the stego file
CASES = {
    "16-bit stereo, k=1": (
        16, 2, 3 * WINDOW_SAMPLES + 12_346, 90_000, 11, (1, 360_458),
        "8daf1693eaf31ecfe34590300707823ee892883d363d021d99f6a67c9e93c549",
    ),
    "16-bit stereo, large k": (
        16, 2, 3 * WINDOW_SAMPLES + 12_346, 700, 12, (10, 621),
        "cd521cc7d12022cafae2476ea90786d24a6dc6f5e27cdae71f2bfbeaedeacab4",
    ),
    "24-bit mono": (
        24, 1, 2 * WINDOW_SAMPLES + 999, 20_000, 13, (3, 46_692),
        "079f7fb20cd6848f0004f254411d556a80f1747701b07643f509b6b6fea880fc",
    ),
}  # fmt: skip
PAYLOAD_SHA = {
    "16-bit stereo, k=1": "ed84041a7e9cc1dfa286caef49024325823217674e8351eeaea3511df09228c8",
    "16-bit stereo, large k": "73f977ef7190d30be348c0d3850cf19614218fdf653d57763e9e330c68d5d29e",
    "24-bit mono": "00c3d00f326dee46db45a8e5647400bf7cb4c6bbab19fcf1d1c820e0ae530769",
}


def golden_cover(path: Path, bits: int, channels: int, samples: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    top = 1 << (bits - 1)
    values = rng.integers(-top, top, size=samples, dtype=np.int64)
    # Full-scale samples (some of which the kernel must move inwards).
    ends = rng.choice(samples, size=samples // 50, replace=False)
    values[ends] = np.where(rng.integers(0, 2, ends.size) == 1, top - 1, -top)
    wav.write_wav(
        path,
        values.reshape(-1, channels),
        44_100,
        bits,
        extra_chunks_before=[(b"LIST", b"INFOINAM\x05\x00\x00\x00gold\x00\x00")],
        extra_chunks_after=[(b"junk", b"abc")],
    )


def golden_payload(size: int, seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size=size, dtype=np.uint8).tobytes()


@pytest.mark.parametrize("name", sorted(CASES))
def test_stego_files_are_byte_identical_to_format_v1(tmp_path, name):
    bits, channels, samples, size, seed, (k, changed), want = CASES[name]
    cover, out = tmp_path / "cover.wav", tmp_path / "stego.wav"
    golden_cover(cover, bits, channels, samples, seed)
    payload = golden_payload(size, seed)
    assert hashlib.sha256(payload).hexdigest() == PAYLOAD_SHA[name]
    result = codec.embed_file(cover, out, k_pos=K_POS, payload=payload, engine=InProcessEngine())
    assert (result.k, result.samples_changed) == (k, changed)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == want
    assert codec.extract_file(out, k_pos=K_POS, engine=InProcessEngine()) == payload


def client_side_embed(cover: Path, out: Path, payload: bytes, engine: object) -> int:
    """The plane protocol end to end: the plane goes out, flips come back, the client
    applies them while it copies its cover. Returns the number of samples changed."""
    with cover.open("rb") as f:
        info, prefix = wav.read_header(f)
        plane = b"".join(p.tobytes() for p in codec.lsb_plane(f, info))
    assert len(plane) == codec.plane_size(info.samples)
    flips: dict[int, np.ndarray] = {}
    result = codec.embed_plane(
        io.BytesIO(plane),
        samples=info.samples,
        k_pos=K_POS,
        payload=payload,
        engine=engine,  # type: ignore[arg-type]
        on_window_flips=flips.__setitem__,
        windows_per_call=3,
    )
    with cover.open("rb") as f, out.open("wb") as dst:
        info, prefix = wav.read_header(f)
        dst.write(prefix)
        for index, data in enumerate(wav.read_raw_windows(f, info, WINDOW_SAMPLES)):
            window = bytearray(data)
            codec.apply_window_flips(
                window, k_pos=K_POS, index=index, flips=flips[index],
                bits_per_sample=info.bits_per_sample,
            )  # fmt: skip
            dst.write(window)
        wav.copy_rest(f, dst)
    return result.samples_changed


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_plane_protocol_writes_the_same_files(tmp_path, name):
    bits, channels, samples, size, seed, (_, changed), want = CASES[name]
    cover, out = tmp_path / "cover.wav", tmp_path / "stego.wav"
    golden_cover(cover, bits, channels, samples, seed)
    payload = golden_payload(size, seed)
    assert client_side_embed(cover, out, payload, InProcessEngine()) == changed
    assert hashlib.sha256(out.read_bytes()).hexdigest() == want
    with out.open("rb") as f:
        info, _ = wav.read_header(f)
        plane = b"".join(p.tobytes() for p in codec.lsb_plane(f, info))
    window0 = plane[: kernel.WINDOW_BYTES]
    assert codec.header_from_plane(window0, samples, K_POS).payload_bytes == size
    with pytest.raises(StegoError) as caught:
        codec.header_from_plane(window0, samples, hashlib.sha256(b"wrong").digest())
    assert caught.value.code == "no_payload"
    got = codec.extract_plane(
        io.BytesIO(plane), samples=samples, k_pos=K_POS, engine=InProcessEngine()
    )
    assert got == payload
    with pytest.raises(StegoError) as caught:
        codec.extract_plane(
            io.BytesIO(plane[: kernel.WINDOW_BYTES + 5]), samples=samples, k_pos=K_POS,
            engine=InProcessEngine(),
        )  # fmt: skip
    assert caught.value.code == "truncated"
