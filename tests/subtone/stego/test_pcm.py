"""The client's numpy side of the codec (subtone.stego.pcm, plane.header_from_plane) agrees
with the compiled kernel and the reference kernel of format v1: the client reads the header
and moves samples without numba, and nothing it computes may differ."""

import hashlib
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from subtone.stego import kernel, layout, pcm, plane

from . import reference_kernel as ref

W = kernel.WINDOW_SAMPLES
keys = st.binary(min_size=32, max_size=32)


@settings(max_examples=30, deadline=None)
@given(key=keys, length=st.integers(1, W), count=st.integers(0, 4000))
def test_first_positions_are_the_kernels(key, length, count):
    count = min(count, length)
    np.testing.assert_array_equal(
        pcm.first_positions(key, length, count), kernel.positions(key, length, count)
    )


@settings(max_examples=5, deadline=None)
@given(key=keys)
def test_all_positions_of_a_short_window_are_the_references(key):
    np.testing.assert_array_equal(pcm.first_positions(key, 777, 777), ref.positions(key, 777))


@pytest.mark.parametrize("samples", [layout.HEADER_BITS + 200, 5000, W, 3 * W + 17])
def test_the_header_read_in_numpy_is_the_kernels(samples):
    rng = np.random.default_rng(samples)
    k_pos = hashlib.sha256(b"k_pos").digest()
    length = layout.window_length(samples, 0)
    window0 = rng.integers(0, 256, kernel.WINDOW_BYTES, dtype=np.uint8)[: (length + 7) // 8]
    sealed = layout.seal_header(k_pos, layout.Header(k=1, payload_bytes=8))
    # Write the sealed header into window 0's first keyed positions, as an embed does (k = 1).
    where = kernel.positions(layout.window_key(k_pos, 0), length, layout.HEADER_BITS)
    bits = np.unpackbits(np.frombuffer(sealed, dtype=np.uint8))
    lsbs = np.unpackbits(window0, bitorder="little")
    lsbs[where] = bits
    window0 = np.packbits(lsbs, bitorder="little")[: window0.size]
    read = kernel.extract_bits(window0, layout.window_key(k_pos, 0), length=length, k=1,
                               skip=0, nblocks=layout.HEADER_BITS)  # fmt: skip
    np.testing.assert_array_equal(read, bits)
    header = plane.header_from_plane(window0, samples, k_pos)
    assert (header.k, header.payload_bytes) == (1, 8)
    with pytest.raises(layout.StegoError):
        plane.header_from_plane(window0, samples, hashlib.sha256(b"wrong").digest())


@pytest.mark.parametrize("bps", [16, 24, 32])
def test_moving_pcm_bytes_is_moving_the_samples(bps):
    rng = np.random.default_rng(bps)
    lo, hi = pcm.sample_range(bps)
    samples = rng.integers(lo, hi, 4000, endpoint=True, dtype=np.int64).astype(np.int32)
    samples[:50], samples[50:100] = hi, lo
    where = np.sort(rng.choice(4000, 700, replace=False)).astype(np.int32)
    where[:4] = [0, 1, 50, 51]  # full scale both ways
    key = rng.bytes(32)
    data = bytearray(b"".join(int(v).to_bytes(bps // 8, "little", signed=True) for v in samples))
    moved = samples.copy()
    pcm.apply_flips(moved, key, where, bps)
    pcm.apply_flips_pcm(data, key, where, bps)
    as_samples = [int.from_bytes(data[i : i + bps // 8], "little", signed=True)
                  for i in range(0, len(data), bps // 8)]  # fmt: skip
    np.testing.assert_array_equal(as_samples, moved)
    gathered = samples[where].copy()
    pcm.apply_flips_at(gathered, key, where, bps)
    np.testing.assert_array_equal(gathered, moved[where])
    assert np.all(np.abs(moved.astype(np.int64) - samples) == np.isin(np.arange(4000), where))
    assert moved[0] == hi - 1 and moved[50] == lo + 1


def test_the_client_side_of_the_codec_loads_no_numba():
    probe = (
        "import sys\n"
        "from subtone.stego import layout, patch, pcm, plane\n"
        "import desktop.core.orchestration as o\n"
        "o.encode, o.decode, o.run_task, o.finish_encode\n"
        "print([m for m in ('numba', 'llvmlite', 'subtone.stego.kernel') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
