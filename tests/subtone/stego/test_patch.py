"""The plane and the patch: what the client sends and what it applies, checked against the
in-process codec (which embeds in the audio itself)."""

import hashlib
import io
import mmap
import os
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from subtone.stego import codec, layout, patch, plane, wav
from subtone.stego.engine import FlipMap, InProcessEngine
from subtone.stego.kernel import WINDOW_SAMPLES

K_POS = hashlib.sha256(b"patch tests").digest()


def samples_of(path: Path) -> np.ndarray:
    with path.open("rb") as f:
        info, _ = wav.read_header(f)
        return np.concatenate(list(wav.read_windows(f, info, WINDOW_SAMPLES)))


@pytest.mark.parametrize(
    ("bits", "channels", "seconds"), [(16, 2, 4.0), (24, 1, 7.5), (32, 1, 3.1)]
)
def test_the_plane_holds_each_samples_lsb_and_nothing_else(tmp_path, bits, channels, seconds):
    cover = tmp_path / "cover.wav"
    wav.generate_cover(cover, seconds, channels=channels, bits=bits, seed=3)
    out = io.BytesIO()
    with cover.open("rb") as f:
        header = plane.write_plane(f, out)
    data = samples_of(cover)
    assert header.samples == data.size and header.bits_per_sample == bits
    assert len(out.getvalue()) == header.size == plane.plane_bytes(data.size)
    out.seek(0)
    assert plane.read_plane_header(out, header.size) == header
    body = np.frombuffer(out.getvalue()[plane.HEADER.size :], dtype=np.uint8)
    bits_back = np.unpackbits(body, bitorder="little")
    assert np.array_equal(bits_back[: data.size], data & 1)
    assert not bits_back[data.size :].any()
    assert len(out.getvalue()) * 8 < cover.stat().st_size * 8 / bits + 8 * 64


@pytest.mark.parametrize(
    "raw",
    [b"", b"STPL", b"XXXX" + bytes(12), plane.HEADER.pack(b"STPL", 9, 16, 0, 10),
     plane.HEADER.pack(b"STPL", 1, 12, 0, 10), plane.HEADER.pack(b"STPL", 1, 16, 0, 0)],
)  # fmt: skip
def test_a_bad_plane_is_refused_with_its_code(raw):
    with pytest.raises(plane.PlaneError) as caught:
        plane.read_plane_header(io.BytesIO(raw))
    assert caught.value.code == "malformed_plane"


def test_a_plane_of_the_wrong_size_is_refused():
    header = plane.PlaneHeader(samples=1000, bits_per_sample=16)
    with pytest.raises(plane.PlaneError, match="1,000 samples need"):
        plane.read_plane_header(io.BytesIO(header.pack()), header.size + 1)


def patch_of(changed: np.ndarray, samples: int) -> tuple[io.BytesIO, patch.PatchWriter]:
    """The patch flipping the samples ``changed`` (ascending) of ``samples``, written to a
    buffer left at its end, and the writer that wrote it."""
    buffer = io.BytesIO()
    writer = patch.PatchWriter(buffer, samples)
    for index in range(writer.windows):
        lo = index * WINDOW_SAMPLES
        mine = changed[(changed >= lo) & (changed < lo + WINDOW_SAMPLES)] - lo
        writer.window(index, mine.astype(np.int32))
    writer.close()
    return buffer, writer


@pytest.mark.parametrize(
    ("bits", "channels", "seconds", "secret"),
    [(16, 2, 6.0, 3_000), (24, 1, 9.0, 40_000), (16, 1, 2.0, 10_000)],
)
@pytest.mark.parametrize("gathered", [1, 100, patch.GATHERED_FLIPS])
def test_applying_the_flips_reproduces_the_in_process_embed_byte_for_byte(
    tmp_path, monkeypatch, bits, channels, seconds, secret, gathered
):
    # Sparse windows' flips are gathered and applied together: a window at a time, a few
    # windows at a time, all of them at once.
    monkeypatch.setattr(patch, "GATHERED_FLIPS", gathered)
    cover = tmp_path / "cover.wav"
    wav.generate_cover(cover, seconds, channels=channels, bits=bits, seed=5)
    payload = os.urandom(secret)
    stego = tmp_path / "stego.wav"
    codec.embed_file(cover, stego, k_pos=K_POS, payload=payload, engine=InProcessEngine())
    before, after = samples_of(cover), samples_of(stego)
    changed = np.flatnonzero(before != after)
    buffer, writer = patch_of(changed, before.size)
    assert writer.flips == changed.size > 0
    # A short secret costs a few bytes a window; a long one never more than its plane.
    assert buffer.tell() <= plane.plane_bytes(before.size) + 5 * writer.windows + 16
    buffer.seek(0)
    out = tmp_path / "patched.wav"
    assert patch.apply_patch_file(cover, buffer, out, k_pos=K_POS) == changed.size
    assert out.read_bytes() == stego.read_bytes()


@pytest.mark.parametrize(("secret", "dense"), [(60_000, True), (300, False)])
def test_a_file_that_cannot_be_mapped_is_patched_the_same(tmp_path, monkeypatch, secret, dense):
    """Windows are changed through a mapping of their bytes; where the file system refuses
    one, they are read, changed and written back (dense flips: a flip a page or more) or
    changed sample by sample (sparse flips), to the same bytes."""
    cover = tmp_path / "cover.wav"
    wav.generate_cover(cover, 15.0, channels=2, bits=16, seed=6)
    stego = tmp_path / "stego.wav"
    codec.embed_file(cover, stego, k_pos=K_POS, payload=os.urandom(secret),
                     engine=InProcessEngine())  # fmt: skip
    before, after = samples_of(cover), samples_of(stego)
    changed = np.flatnonzero(before != after)
    buffer, _ = patch_of(changed, before.size)
    assert (changed.size * mmap.PAGESIZE >= before.size * 2) == dense

    def refuse(*args, **kwargs):
        raise OSError(19, "No such device")

    monkeypatch.setattr(patch.mmap, "mmap", refuse)
    buffer.seek(0)
    out = tmp_path / "patched.wav"
    assert patch.apply_patch_file(cover, buffer, out, k_pos=K_POS) == changed.size
    assert out.read_bytes() == stego.read_bytes()


@pytest.mark.parametrize("bits", [16, 24, 32])
@pytest.mark.parametrize("group_bytes", [1, patch.GROUP_BYTES])
def test_dense_windows_changed_in_groups_move_each_sample_by_its_own_key(
    tmp_path, monkeypatch, bits, group_bytes
):
    """Consecutive dense windows are changed through one mapping (a group broken by a
    sparse window, an empty one and the group's size limit): each flipped sample moves
    exactly as :func:`~subtone.stego.pcm.apply_flips` moves it under its own window's key,
    and nothing else changes."""
    from subtone.stego import pcm

    monkeypatch.setattr(patch, "GROUP_BYTES", group_bytes)
    samples = 7 * WINDOW_SAMPLES - 1000
    cover = tmp_path / "cover.wav"
    wav.generate_cover(cover, samples / 8000, rate=8000, channels=1, bits=bits, seed=9)
    before = samples_of(cover)
    rng = np.random.default_rng(bits)
    flips = {}
    for index, count in enumerate([5000, 300, 10, 4000, 0, 2000, 900]):
        length = layout.window_length(before.size, index)
        flips[index] = np.sort(rng.choice(length, count, replace=False)).astype(np.int32)
    changed = np.concatenate([w + i * WINDOW_SAMPLES for i, w in flips.items()])
    buffer, _ = patch_of(changed, before.size)
    buffer.seek(0)
    out = tmp_path / "patched.wav"
    assert patch.apply_patch_file(cover, buffer, out, k_pos=K_POS) == changed.size
    want = before.astype(np.int32)
    for index, where in flips.items():
        lo = index * WINDOW_SAMPLES
        window = want[lo : lo + layout.window_length(before.size, index)]
        pcm.apply_flips(window, layout.window_key(K_POS, index), where, bits)
    np.testing.assert_array_equal(samples_of(out), want)


def test_a_full_scale_sample_moves_inwards(tmp_path):
    lo, hi = -(1 << 15), (1 << 15) - 1
    data = np.array([hi, lo, hi, lo] * 8, dtype=np.int32)
    cover = tmp_path / "edge.wav"
    wav.write_wav(cover, data.reshape(-1, 1), 8000, 16)
    buffer = io.BytesIO()
    writer = patch.PatchWriter(buffer, data.size)
    writer.window(0, np.arange(data.size, dtype=np.int32))
    writer.close()
    buffer.seek(0)
    out = tmp_path / "out.wav"
    patch.apply_patch_file(cover, buffer, out, k_pos=K_POS)
    moved = samples_of(out)
    assert np.array_equal(moved, np.where(data == hi, hi - 1, lo + 1))


def test_a_truncated_or_foreign_patch_leaves_no_output(tmp_path):
    cover = tmp_path / "cover.wav"
    wav.generate_cover(cover, 1.0, channels=1, seed=2)
    samples = samples_of(cover).size
    buffer = io.BytesIO()
    writer = patch.PatchWriter(buffer, samples)
    for index in range(writer.windows):
        writer.window(index, np.array([1, 5], dtype=np.int32))
    out = tmp_path / "out.wav"
    for bad in (buffer.getvalue()[:-3], b"RIFF" + buffer.getvalue()[4:],
                patch.PatchHeader(samples + 1).pack() + buffer.getvalue()[16:]):  # fmt: skip
        with pytest.raises(patch.PatchError) as caught:
            patch.apply_patch_file(cover, io.BytesIO(bad), out, k_pos=K_POS)
        assert caught.value.code == "malformed_patch"
        assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["cover.wav"]


def test_windows_come_in_order_and_all_of_them():
    writer = patch.PatchWriter(io.BytesIO(), 3 * WINDOW_SAMPLES)
    with pytest.raises(ValueError, match="in order"):
        writer.window(1, np.zeros(0, np.int32))
    writer.window(0, np.zeros(0, np.int32))
    with pytest.raises(ValueError, match="1 of 3"):
        writer.close()
    assert layout.window_count(3 * WINDOW_SAMPLES) == 3


def _empty_patch(samples: int) -> io.BytesIO:
    """A patch that flips nothing, ready to read."""
    buffer = io.BytesIO()
    writer = patch.PatchWriter(buffer, samples)
    for index in range(writer.windows):
        writer.window(index, np.array([], dtype=np.int32))
    writer.close()
    buffer.seek(0)
    return buffer


def test_a_draft_is_a_whole_copy_and_leaves_nothing_unless_applied(tmp_path):
    cover = tmp_path / "cover.wav"
    wav.generate_cover(cover, 30.0, channels=2, seed=3)  # ~5 MB: the copy takes a moment
    out = tmp_path / "stego.wav"
    with patch.StegoDraft(cover, out, mode=0o644) as draft:
        assert draft.info.samples == samples_of(cover).size
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cover.wav"]  # discarded

    with patch.StegoDraft(cover, out, mode=0o644) as draft:
        assert draft.apply(_empty_patch(draft.info.samples), K_POS) == 0
    assert out.read_bytes() == cover.read_bytes() and out.stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cover.wav", "stego.wav"]


def test_a_draft_given_up_stops_its_copy_after_the_chunk_in_progress(tmp_path, monkeypatch):
    """An encode refused after its copy started (a secret too large) does not wait for the
    whole cover to be copied: the copy stops after the chunk in progress, and the draft is
    removed."""
    cover = tmp_path / "cover.wav"
    wav.generate_cover(cover, 30.0, channels=2, seed=3)  # ~5 MB
    monkeypatch.setattr(patch, "COPY_CHUNK_BYTES", 64 << 10)
    chunks = -(-cover.stat().st_size // (64 << 10))
    calls, started = [], threading.Event()
    copy_file_range = os.copy_file_range

    def slow_copy(*args):
        calls.append(args)
        started.set()
        time.sleep(0.01)
        return copy_file_range(*args)

    monkeypatch.setattr(patch.os, "copy_file_range", slow_copy)
    draft = patch.StegoDraft(cover, tmp_path / "stego.wav")
    assert started.wait(10)
    draft.discard()
    assert len(calls) < chunks / 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cover.wav"]


@pytest.mark.parametrize("then", ["start_sync", "apply", "discard"])
def test_a_draft_synced_later_waits_for_leave_to_sync(tmp_path, monkeypatch, then):
    """``sync_later``: the copy is made and then waits, unsynced, until ``start_sync`` (a
    one-shot encode: once the plane is sent); ``apply`` and ``discard`` do not wait for it."""
    cover = tmp_path / "cover.wav"
    wav.generate_cover(cover, 5.0, channels=2, seed=4)
    synced = threading.Event()
    fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.set()
        fsync(fd)

    monkeypatch.setattr(patch.os, "fsync", recording_fsync)
    out = tmp_path / "stego.wav"
    draft = patch.StegoDraft(cover, out, sync_later=True)
    time.sleep(0.3)  # the copy of 1.7 MB is done long before; it must not have synced
    assert not synced.is_set()
    if then == "start_sync":
        draft.start_sync()
        assert synced.wait(10)
        draft.discard()
    elif then == "apply":
        assert draft.apply(_empty_patch(draft.info.samples), K_POS) == 0
        assert synced.is_set() and out.read_bytes() == cover.read_bytes()
    else:
        draft.discard()  # returns: the copy thread is not left waiting
        assert not synced.is_set()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["cover.wav"] + (["stego.wav"] if then == "apply" else [])
    )


def test_a_draft_of_a_file_that_is_not_a_wav_is_refused_before_any_copy(tmp_path):
    cover = tmp_path / "cover.wav"
    cover.write_bytes(b"not a wav at all" * 100)
    with pytest.raises(wav.WavError):
        patch.StegoDraft(cover, tmp_path / "out.wav")
    assert [p.name for p in tmp_path.iterdir()] == ["cover.wav"]


PATCH_PEAK_SCRIPT = """
import io, sys
from pathlib import Path
import numpy as np
from subtone.stego import patch, wav

def peak_mb():  # this process's own high-water mark (ru_maxrss would count the parent's)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024

path, samples, step = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "r+b") as f:
    info, _ = wav.read_header(f)
    buffer = io.BytesIO()
    writer = patch.PatchWriter(buffer, samples)
    for index in range(writer.windows):  # flips all over every window
        writer.window(index, np.arange(0, 260_000, step, dtype=np.int32))
    writer.close()
    buffer.seek(0)
    before = peak_mb()
    patch.apply_patch(f, info, buffer, b"k" * 32)
    print(peak_mb() - before)
"""


@pytest.mark.parametrize("step", [10_000, 250])
def test_applying_a_patch_does_not_bring_the_file_into_memory(tmp_path, step):
    """Flips all over a 128 MB file, a few in each window (read and written sample by
    sample) or many (windows changed through a mapping, a group at a time): the client's
    peak RSS grows by a few MB, not by the file (a shared memory map of it, faulted in
    around each flip, grew it by most of the file: 447 MB for a 500 MB cover)."""
    samples = 64 * 1024 * 1024
    cover = tmp_path / "big.wav"
    with cover.open("wb") as f:
        blocks = (np.zeros(1 << 22, dtype=np.int16) for _ in range(samples >> 22))
        wav.write_wav_stream(f, blocks, frames=samples, channels=1, rate=8000, bits_per_sample=16)
    grew = subprocess.run(
        [sys.executable, "-c", PATCH_PEAK_SCRIPT, str(cover), str(samples), str(step)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert int(grew) < 32, f"peak RSS grew by {grew.strip()} MB"


def _one_window_patch(flips: np.ndarray, length: int = WINDOW_SAMPLES) -> bytes:
    buffer = io.BytesIO()
    writer = patch.PatchWriter(buffer, length)
    writer.window(0, flips.astype(np.int32))
    writer.close()
    return buffer.getvalue()


def _window_mode(raw: bytes) -> tuple[int, int]:
    return patch.WINDOW.unpack_from(raw, patch.HEADER.size)


@pytest.mark.parametrize(
    ("density", "mode"),
    [(0.0, patch.MODE_INDICES), (0.0005, patch.MODE_GAPS), (0.038, patch.MODE_GAPS),
     (0.12, patch.MODE_GAPS), (0.3, patch.MODE_BITMAP)],
)  # fmt: skip
def test_each_window_takes_its_smallest_mode_and_reads_back_exactly(density, mode):
    flips = np.flatnonzero(np.random.default_rng(7).random(WINDOW_SAMPLES) < density)
    raw = _one_window_patch(flips)
    assert _window_mode(raw)[0] == mode
    ((index, where),) = patch.read_patch(io.BytesIO(raw), WINDOW_SAMPLES)
    assert index == 0 and np.array_equal(where, flips)
    plain = 4 * flips.size if flips.size * 4 <= WINDOW_SAMPLES // 8 else WINDOW_SAMPLES // 8
    assert len(raw) - patch.HEADER.size - patch.WINDOW.size <= plain


@pytest.mark.parametrize("length", [WINDOW_SAMPLES, 70_001])
@pytest.mark.parametrize("density", [0.0, 0.0005, 0.02, 0.12, 0.13, 0.3, 0.5])
def test_a_window_given_as_a_bitmap_is_written_as_its_indices_are(length, density):
    """An engine's bitmap of a window's flips (dense windows, as Triton answers them) makes
    the same patch bytes as their indices: written as it is where the bitmap is the smallest
    mode, turned into indices where another is."""
    flips = np.flatnonzero(np.random.default_rng(8).random(length) < density).astype(np.int32)
    flags = np.zeros(length, dtype=np.uint8)
    flags[flips] = 1
    bitmap = FlipMap(np.packbits(flags, bitorder="little"), int(flips.size))
    by_index, by_map = io.BytesIO(), io.BytesIO()
    for buffer, answer in ((by_index, flips), (by_map, bitmap)):
        writer = patch.PatchWriter(buffer, length)
        writer.window(0, answer)
        writer.close()
        assert writer.flips == flips.size
    assert by_map.getvalue() == by_index.getvalue()


def test_a_bitmap_of_the_wrong_size_is_refused():
    writer = patch.PatchWriter(io.BytesIO(), 1000)
    with pytest.raises(ValueError, match="125 bytes"):
        writer.window(0, FlipMap(np.zeros(WINDOW_SAMPLES // 8, np.uint8), 0))


def test_gaps_cost_near_the_entropy_of_randomly_spread_flips():
    # A 1 MB secret in a 100 MB cover flips 3.84 % of the samples (bench/codec.py): the
    # bitmap's 1 bit a sample falls to within 10 % of the entropy, about 0.24 bits.
    density = 0.0384
    flips = np.flatnonzero(np.random.default_rng(8).random(WINDOW_SAMPLES) < density)
    entropy = -(density * np.log2(density) + (1 - density) * np.log2(1 - density))
    body = len(_one_window_patch(flips)) - patch.HEADER.size - patch.WINDOW.size
    assert entropy < 0.24 and body * 8 / WINDOW_SAMPLES < 1.1 * entropy


@pytest.mark.parametrize(
    "flips", [[0], [WINDOW_SAMPLES - 1], [0, 1, 2], [127, 128, 16_383, 16_512, WINDOW_SAMPLES - 1]]
)
def test_gaps_of_every_varint_width_round_trip(flips):
    where = np.array(flips, dtype=np.uint32)
    assert np.array_equal(patch.decode_gaps(patch.encode_gaps(where)), where)


_valid_gaps = st.lists(st.integers(0, WINDOW_SAMPLES - 1), max_size=80, unique=True).map(
    lambda flips: patch.encode_gaps(np.array(sorted(flips), dtype=np.uint32))
)


@settings(max_examples=300, deadline=None)
@given(raw=st.one_of(st.binary(max_size=patch.SMALL_GAPS_BYTES), _valid_gaps))
def test_a_few_gaps_decode_as_numpy_decodes_them(raw):
    """Small varint bodies are decoded byte by byte: the same indices, and the same refusals
    (empty, cut short, longer than three bytes), as the vectorised decoder."""
    small = patch.decode_gaps(raw)
    saved = patch.SMALL_GAPS_BYTES
    try:
        patch.SMALL_GAPS_BYTES = -1  # every body through numpy
        vectorised = patch.decode_gaps(raw)
    finally:
        patch.SMALL_GAPS_BYTES = saved
    assert (small is None) == (vectorised is None)
    if small is not None:
        assert small.dtype == np.int64 and np.array_equal(small, vectorised)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, WINDOW_SAMPLES - 1), max_size=100, unique=True))
def test_a_few_gaps_encode_as_numpy_encodes_them(flips):
    where = np.array(sorted(flips), dtype=np.uint32)
    small = patch.encode_gaps(where)
    saved = patch.SMALL_GAPS_BYTES
    try:
        patch.SMALL_GAPS_BYTES = -1  # every window through numpy
        assert small == patch.encode_gaps(where)
    finally:
        patch.SMALL_GAPS_BYTES = saved


def _gaps_window(body: bytes) -> bytes:
    header = patch.PatchHeader(WINDOW_SAMPLES).pack()
    return header + patch.WINDOW.pack(patch.MODE_GAPS, len(body)) + body


@pytest.mark.parametrize(
    "body",
    [
        b"not zlib at all",
        zlib.compress(bytes([0x80, 0x80, 0x80, 0x01])),  # a four-byte varint
        zlib.compress(bytes([5, 0x81])),  # a varint cut short
        zlib.compress(bytes([0x80, 0x80, 0x10])),  # index 2**18: past the window
        zlib.compress(bytes([1, 2])) + b"x",  # bytes after the stream
        zlib.compress(bytes(patch.VARINT_BYTES * WINDOW_SAMPLES + 1), 9),  # inflates too far
        zlib.compress(bytes([1, 2]))[:-2],  # the stream cut short
    ],
)
def test_a_malformed_gaps_window_is_refused_with_its_code(body):
    with pytest.raises(patch.PatchError, match="Window 0") as caught:
        list(patch.read_patch(io.BytesIO(_gaps_window(body)), WINDOW_SAMPLES))
    assert caught.value.code == "malformed_patch"


def test_a_version_1_patch_still_reads_but_may_not_hold_gaps():
    flips = np.array([3, 90, 4000], dtype=np.int32)
    v1 = patch.HEADER.pack(patch.MAGIC, 1, bytes(3), WINDOW_SAMPLES)
    indices = patch.WINDOW.pack(patch.MODE_INDICES, 3) + flips.astype("<u4").tobytes()
    ((_, where),) = patch.read_patch(io.BytesIO(v1 + indices), WINDOW_SAMPLES)
    assert np.array_equal(where, flips)
    gaps = zlib.compress(patch.encode_gaps(flips.astype(np.uint32)))
    with pytest.raises(patch.PatchError, match="Window 0"):
        body = patch.WINDOW.pack(patch.MODE_GAPS, len(gaps)) + gaps
        list(patch.read_patch(io.BytesIO(v1 + body), WINDOW_SAMPLES))
