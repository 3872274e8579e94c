"""The per-window embedding kernel over the packed LSB plane: keyed positions, Hamming
syndrome coding, and (for the client) ±1 matching.

This module is the whole "model". It imports numpy, numba and hashlib only, so the
in-process engine and the Triton python-backend models (``model_repository/``) run exactly
this code. The loops are compiled by numba (``cache=True``: compiled once per machine, then
loaded from ``__pycache__``; ``nogil=True``: several threads run them at once).

A *window* is up to :data:`WINDOW_SAMPLES` consecutive PCM samples of the data chunk (all
channels interleaved, as they sit in the file). The kernel never sees a sample, only the
window's **LSB plane**: bit ``i`` is the LSB of sample ``i``, packed eight to a byte with
``np.packbits(..., bitorder="little")`` (so a full window's plane is :data:`WINDOW_BYTES`
bytes, and window ``w`` of a cover's plane is bytes ``[w * WINDOW_BYTES, (w + 1) *
WINDOW_BYTES)``). Everything else a window needs is passed in: its length, a 32-byte window
key (:func:`subtone.stego.layout.window_key`), the Hamming parameter ``k``, how many leading
keyed positions to ``skip`` (the payload header's, in window 0) and the bits. Embedding
answers *which samples must change* (:func:`embed_flips`); whoever holds the audio changes
them by ±1 (:func:`apply_flips`, :func:`apply_flips_pcm`).

Format v1, fixed forever once released (a stego file must extract with any later version):

* Positions: a 4-round Feistel permutation on 18-bit indices keyed by the window key (round
  tables of 512 entries), restricted (order kept) to indices below the window's length. It
  is computed with integer arithmetic only, so it never depends on numpy's random generators.
* Block ``b`` of a window uses positions ``perm[skip + b*n : skip + (b+1)*n]`` with
  ``n = 2**k - 1``. Its syndrome is the XOR of the 1-based indices of its samples whose LSB
  is 1; it carries ``k`` message bits (most significant first). Embedding changes at most
  one sample per block, by ±1 with a keyed sign (never replacing the LSB), and never
  outside the sample range: a sample at full scale moves inwards.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numba
import numpy as np
import numpy.typing as npt

__all__ = [
    "KEY_BYTES",
    "MAX_K",
    "WINDOW_BYTES",
    "WINDOW_SAMPLES",
    "apply_flips",
    "apply_flips_pcm",
    "block_size",
    "copy_bits",
    "embed_flips",
    "embed_flips_batch",
    "extract_bits",
    "extract_bits_batch",
    "pack_lsb",
    "positions",
    "sample_range",
    "sign_key",
    "signs",
    "warm_up",
]

WINDOW_BITS = 18
WINDOW_SAMPLES = 1 << WINDOW_BITS
"""Samples in a full window (256 Ki samples: 512 KiB of 16-bit audio)."""
WINDOW_BYTES = WINDOW_SAMPLES // 8
"""Bytes of a full window's packed LSB plane (32 KiB)."""

KEY_BYTES = 32
MAX_K = 16
"""Largest Hamming parameter: blocks of 65,535 samples carrying 16 bits."""

_HALF_BITS = WINDOW_BITS // 2
_HALF = 1 << _HALF_BITS
_HALF_MASK = _HALF - 1
_ROUNDS = 4
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_ONE = np.uint64(1)
_U3 = np.uint32(3)
_U7 = np.uint32(7)
_U9 = np.uint32(_HALF_BITS)
_U511 = np.uint32(_HALF_MASK)
_U512 = np.uint32(_HALF)
_U1024 = np.uint32(2 * _HALF)
_U1536 = np.uint32(3 * _HALF)

Int32Array = npt.NDArray[np.int32]
Int64Array = npt.NDArray[np.int64]
UInt8Array = npt.NDArray[np.uint8]
UInt32Array = npt.NDArray[np.uint32]

_jit = numba.njit(cache=True, nogil=True, boundscheck=False)


def block_size(k: int) -> int:
    """Samples per Hamming block for parameter ``k``."""
    return (1 << k) - 1


def sample_range(bits_per_sample: int) -> tuple[int, int]:
    """The smallest and largest sample value of signed PCM with this many bits."""
    top = 1 << (bits_per_sample - 1)
    return -top, top - 1


# -- compiled core -------------------------------------------------------------------------


@_jit
def _mix(x: np.uint64) -> np.uint64:
    """SplitMix64's finaliser (wrapping uint64 arithmetic)."""
    x = x ^ (x >> _S30)
    x = x * _M1
    x = x ^ (x >> _S27)
    x = x * _M2
    return x ^ (x >> _S31)


@_jit
def _round_tables(key: UInt8Array) -> UInt32Array:
    """The Feistel round functions as lookup tables over a half-index: ``_ROUNDS`` tables of
    512 entries, one after the other."""
    tables = np.empty(_ROUNDS * _HALF, dtype=np.uint32)
    for r in range(_ROUNDS):
        sub = np.uint64(0)
        for b in range(8):
            sub |= np.uint64(key[r * 8 + b]) << np.uint64(8 * b)
        for h in range(_HALF):
            value = _mix((np.uint64(h) + _GOLDEN) ^ sub) & np.uint64(_HALF_MASK)
            tables[r * _HALF + h] = np.uint32(value)
    return tables


@_jit
def _permute(t: UInt32Array, idx: int) -> int:
    """The image of ``idx`` (unsigned arithmetic: no negative-index handling in the loads)."""
    left = np.uint32(idx) >> _U9
    right = np.uint32(idx) & _U511
    left ^= t[right]
    right ^= t[_U512 + left]
    left ^= t[_U1024 + right]
    right ^= t[_U1536 + left]
    return int((left << _U9) | right)


@_jit
def _positions(key: UInt8Array, length: int, count: int) -> Int32Array:
    t = _round_tables(key)
    out = np.empty(count, dtype=np.int32)
    got = 0
    idx = 0
    while got < count:
        p = _permute(t, idx)
        idx += 1
        if p < length:
            out[got] = p
            got += 1
    return out


_CHUNK = 8192
"""Keyed positions computed at a time (whole blocks; a block of 2**16 - 1 is a chunk alone)."""
_BUFFER = (1 << MAX_K) - 1 + _CHUNK + 1
_SHORT_BLOCK = 15
_BYTE_BITS = np.array(
    [[j for j in range(8) if v >> j & 1] + [0] * (8 - bin(v).count("1")) for v in range(256)],
    dtype=np.int32,
)
"""For each byte value, the indices of its set bits (ascending), padded to 8."""
_BYTE_COUNT = np.array([bin(v).count("1") for v in range(256)], dtype=np.int64)


@_jit
def _skip(t: UInt32Array, length: int, skip: int) -> int:
    """The Feistel input after the first ``skip`` keyed positions below ``length``."""
    if length == WINDOW_SAMPLES:
        return skip
    idx = 0
    seen = 0
    while seen < skip:
        seen += int(_permute(t, idx) < length)
        idx += 1
    return idx


@_jit
def _fill(
    t: UInt32Array,
    length: int,
    idx: int,
    count: int,
    plane: UInt8Array,
    base: int,
    pos: Int32Array,
    lsb: UInt8Array,
) -> int:
    """The next ``count`` keyed positions from Feistel input ``idx`` into ``pos``, the LSBs
    there into ``lsb``; returns the next input. Branch-free, unsigned indices (no negative-
    index handling), so the loops pipeline."""
    window = plane[base:]
    if length == WINDOW_SAMPLES:
        for i in range(count):
            p = np.uint32(_permute(t, idx + i))
            pos[i] = p
            lsb[i] = (window[p >> _U3] >> (p & _U7)) & 1
        return idx + count
    got = 0
    while got < count:
        image = _permute(t, idx)
        pos[got] = image  # kept only if below length: ``pos`` has a spare slot
        got += int(image < length)
        idx += 1
    for i in range(count):
        q = np.uint32(pos[i])
        lsb[i] = (window[q >> _U3] >> (q & _U7)) & 1
    return idx


@_jit
def _syndromes(lsb: UInt8Array, blocks: int, n: int, out: Int32Array) -> None:
    """The syndrome of each of ``blocks`` consecutive blocks of ``n`` LSBs."""
    if n <= _SHORT_BLOCK:
        # Short blocks: one pass per index within a block, each over all blocks.
        for b in range(blocks):
            out[b] = 0
        for j in range(n):
            weight = np.int32(j + 1)
            for b in range(blocks):
                out[b] ^= weight * np.int32(lsb[b * n + j])
        return
    for b in range(blocks):
        s = np.int32(0)
        at = b * n
        for j in range(n):
            s ^= np.int32(j + 1) * np.int32(lsb[at + j])
        out[b] = s


@_jit
def _get_bits(bits: UInt8Array, start: int, count: int, out: UInt8Array) -> None:
    """``count`` bits (packed most significant first) from bit ``start``, as 0/1 values."""
    i = 0
    while i < count and (start + i) & 7:
        b = start + i
        out[i] = (bits[b >> 3] >> (7 - (b & 7))) & 1
        i += 1
    first = (start + i) >> 3
    whole = (count - i) >> 3
    for w in range(whole):
        value = bits[first + w]
        for j in range(8):
            out[i + 8 * w + j] = (value >> (7 - j)) & 1
    i += 8 * whole
    while i < count:
        b = start + i
        out[i] = (bits[b >> 3] >> (7 - (b & 7))) & 1
        i += 1


@_jit
def _put_bits(out: UInt8Array, start: int, values: UInt8Array, count: int) -> None:
    """Store ``count`` 0/1 values as bits (most significant first) from bit ``start``."""
    i = 0
    while i < count and (start + i) & 7:
        b = start + i
        shift = 7 - (b & 7)
        out[b >> 3] = (out[b >> 3] & ~(1 << shift)) | (values[i] << shift)
        i += 1
    while count - i >= 8:
        byte = 0
        for j in range(8):
            byte = (byte << 1) | values[i + j]
        out[(start + i) >> 3] = byte
        i += 8
    while i < count:
        b = start + i
        shift = 7 - (b & 7)
        out[b >> 3] = (out[b >> 3] & ~(1 << shift)) | (values[i] << shift)
        i += 1


@_jit
def _embed_one(
    plane: UInt8Array,
    base: int,
    key: UInt8Array,
    length: int,
    k: int,
    skip: int,
    nblocks: int,
    bits: UInt8Array,
    bit_start: int,
    mark: npt.NDArray[np.uint64],
    pos: Int32Array,
    lsb: UInt8Array,
    msg: UInt8Array,
    syn: Int32Array,
) -> None:
    """Mark in ``mark`` (a 2**18-bit map, zero on entry) the samples to flip."""
    t = _round_tables(key)
    n = (1 << k) - 1
    per_chunk = max(1, _CHUNK // n)
    idx = _skip(t, length, skip)
    bit = bit_start
    done = 0
    while done < nblocks:
        blocks = min(per_chunk, nblocks - done)
        idx = _fill(t, length, idx, blocks * n, plane, base, pos, lsb)
        _get_bits(bits, bit, blocks * k, msg)
        bit += blocks * k
        if k == 1:
            for b in range(blocks):
                p = pos[b]
                change = np.uint64(lsb[b] ^ msg[b])
                mark[p >> 6] |= change << np.uint64(p & 63)
        else:
            _syndromes(lsb, blocks, n, syn)
            for b in range(blocks):
                value = 0
                for j in range(k):
                    value = (value << 1) | msg[b * k + j]
                change = syn[b] ^ value
                hit = np.int64(change != 0)
                p = pos[b * n + change - 1 + (1 - hit)]
                mark[p >> 6] |= np.uint64(hit) << np.uint64(p & 63)
        done += blocks


@_jit
def _drain(mark: npt.NDArray[np.uint64], out: Int32Array, at: int) -> int:
    """Write the set bits of ``mark`` (ascending) to ``out[at:]``, clearing ``mark``.

    ``out`` needs 8 spare slots past the last flip (stores are unconditional)."""
    for w in range(mark.size):
        word = mark[w]
        if word:
            mark[w] = np.uint64(0)
            for byte in range(8):
                value = (word >> np.uint64(8 * byte)) & np.uint64(0xFF)
                base = (w << 6) + 8 * byte
                for j in range(8):
                    out[at + j] = base + _BYTE_BITS[value, j]
                at += _BYTE_COUNT[value]
    return at


@_jit
def _embed_batch(
    planes: UInt8Array,
    offsets: Int64Array,
    keys: UInt8Array,
    lengths: Int64Array,
    ks: Int64Array,
    skips: Int64Array,
    nblocks: Int64Array,
    bits: UInt8Array,
    bit_starts: Int64Array,
    out: Int32Array,
    counts: Int64Array,
) -> int:
    mark = np.zeros(WINDOW_SAMPLES // 64, dtype=np.uint64)
    pos = np.empty(_BUFFER, dtype=np.int32)
    lsb = np.empty(_BUFFER, dtype=np.uint8)
    msg = np.empty(_BUFFER, dtype=np.uint8)
    syn = np.empty(_CHUNK, dtype=np.int32)
    at = 0
    for i in range(offsets.size):
        _embed_one(
            planes,
            offsets[i],
            keys[i],
            lengths[i],
            ks[i],
            skips[i],
            nblocks[i],
            bits,
            bit_starts[i],
            mark,
            pos,
            lsb,
            msg,
            syn,
        )
        end = _drain(mark, out, at)
        counts[i] = end - at
        at = end
    return at


@_jit
def _extract_one(
    plane: UInt8Array,
    base: int,
    key: UInt8Array,
    length: int,
    k: int,
    skip: int,
    nblocks: int,
    out: UInt8Array,
    out_start: int,
    pos: Int32Array,
    lsb: UInt8Array,
    msg: UInt8Array,
    syn: Int32Array,
) -> None:
    t = _round_tables(key)
    n = (1 << k) - 1
    per_chunk = max(1, _CHUNK // n)
    idx = _skip(t, length, skip)
    bit = out_start
    done = 0
    while done < nblocks:
        blocks = min(per_chunk, nblocks - done)
        idx = _fill(t, length, idx, blocks * n, plane, base, pos, lsb)
        if k == 1:
            _put_bits(out, bit, lsb, blocks)
        else:
            _syndromes(lsb, blocks, n, syn)
            for b in range(blocks):
                for j in range(k):
                    msg[b * k + j] = (syn[b] >> (k - 1 - j)) & 1
            _put_bits(out, bit, msg, blocks * k)
        bit += blocks * k
        done += blocks


@_jit
def _extract_batch(
    planes: UInt8Array,
    offsets: Int64Array,
    keys: UInt8Array,
    lengths: Int64Array,
    ks: Int64Array,
    skips: Int64Array,
    nblocks: Int64Array,
    out: UInt8Array,
    out_starts: Int64Array,
) -> None:
    pos = np.empty(_BUFFER, dtype=np.int32)
    lsb = np.empty(_BUFFER, dtype=np.uint8)
    msg = np.empty(_BUFFER, dtype=np.uint8)
    syn = np.empty(_CHUNK, dtype=np.int32)
    for i in range(offsets.size):
        _extract_one(
            planes,
            offsets[i],
            keys[i],
            lengths[i],
            ks[i],
            skips[i],
            nblocks[i],
            out,
            out_starts[i],
            pos,
            lsb,
            msg,
            syn,
        )


@_jit
def _signs(sign_key: np.uint64, where: Int32Array) -> Int32Array:
    out = np.empty(where.size, dtype=np.int32)
    for i in range(where.size):
        out[i] = np.int32(_mix(np.uint64(where[i]) ^ sign_key) & _ONE) * 2 - 1
    return out


@_jit
def _apply_int32(
    samples: Int32Array, sign_key: np.uint64, where: Int32Array, lo: int, hi: int
) -> None:
    for i in range(where.size):
        p = where[i]
        v = samples[p]
        if v >= hi:
            samples[p] = v - 1
        elif v <= lo:
            samples[p] = v + 1
        else:
            samples[p] = v + np.int32(_mix(np.uint64(p) ^ sign_key) & _ONE) * 2 - 1


@_jit
def _apply_pcm(
    data: UInt8Array, width: int, sign_key: np.uint64, where: Int32Array, lo: int, hi: int
) -> None:
    for i in range(where.size):
        p = where[i]
        at = p * width
        u = np.int64(0)
        for b in range(width):
            u |= np.int64(data[at + b]) << (8 * b)
        top = 1 << (8 * width - 1)
        v = u - 2 * top if u >= top else u
        if v >= hi:
            v -= 1
        elif v <= lo:
            v += 1
        else:
            v += np.int64(_mix(np.uint64(p) ^ sign_key) & _ONE) * 2 - 1
        for b in range(width):
            data[at + b] = np.uint8((v >> (8 * b)) & 0xFF)


@_jit
def _pack_lsb(data: UInt8Array, width: int, count: int, out: UInt8Array) -> None:
    full = count >> 3
    for i in range(full):
        at = i * 8 * width
        byte = 0
        for b in range(8):
            byte |= (data[at + b * width] & 1) << b
        out[i] = byte
    if count & 7:
        at = full * 8 * width
        byte = 0
        for b in range(count & 7):
            byte |= (data[at + b * width] & 1) << b
        out[full] = byte


@_jit
def _copy_bits(dst: UInt8Array, dst_start: int, src: UInt8Array, src_start: int, n: int) -> None:
    i = 0
    # Bit by bit until the destination is byte-aligned, then a byte at a time.
    while i < n and (dst_start + i) & 7:
        s = src_start + i
        d = dst_start + i
        mask = np.uint8(0x80 >> (d & 7))
        if (src[s >> 3] >> (7 - (s & 7))) & 1:
            dst[d >> 3] |= mask
        else:
            dst[d >> 3] &= ~mask
        i += 1
    shift = (src_start + i) & 7
    while n - i >= 8:
        s = (src_start + i) >> 3
        byte = src[s]
        if shift:
            byte = ((byte << shift) | (src[s + 1] >> (8 - shift))) & 0xFF
        dst[(dst_start + i) >> 3] = byte
        i += 8
    while i < n:
        s = src_start + i
        d = dst_start + i
        mask = np.uint8(0x80 >> (d & 7))
        if (src[s >> 3] >> (7 - (s & 7))) & 1:
            dst[d >> 3] |= mask
        else:
            dst[d >> 3] &= ~mask
        i += 1


# -- checks --------------------------------------------------------------------------------


def _key_array(key: bytes) -> UInt8Array:
    if len(key) != KEY_BYTES:
        raise ValueError(f"a window key has {KEY_BYTES} bytes, got {len(key)}")
    return np.frombuffer(bytes(key), dtype=np.uint8)


def _check_k(k: int) -> None:
    if not 1 <= k <= MAX_K:
        raise ValueError(f"k must be in 1..{MAX_K}, got {k}")


def _as_i64(values: Sequence[int] | npt.NDArray[np.integer[Any]], n: int, what: str) -> Int64Array:
    array = np.ascontiguousarray(np.asarray(values, dtype=np.int64).reshape(-1))
    if array.size != n:
        raise ValueError(f"{what}: {array.size} values for {n} windows")
    return array


def _check_batch(
    planes: UInt8Array,
    offsets: Int64Array,
    keys: UInt8Array,
    lengths: Int64Array,
    ks: Int64Array,
    skips: Int64Array,
    nblocks: Int64Array,
) -> None:
    """Everything the compiled loops rely on (they do not check bounds)."""
    n = offsets.size
    if keys.shape != (n, KEY_BYTES):
        raise ValueError(f"keys must be shaped ({n}, {KEY_BYTES}), got {keys.shape}")
    if n == 0:
        return
    if lengths.min() < 1 or lengths.max() > WINDOW_SAMPLES:
        raise ValueError(f"length must be in 1..{WINDOW_SAMPLES}, got {lengths.tolist()}")
    if ks.min() < 1 or ks.max() > MAX_K:
        raise ValueError(f"k must be in 1..{MAX_K}, got {ks.tolist()}")
    sizes = (np.int64(1) << ks) - 1
    if skips.min() < 0 or nblocks.min() < 0 or np.any(skips + nblocks * sizes > lengths):
        bad = int(np.argmax((skips < 0) | (nblocks < 0) | (skips + nblocks * sizes > lengths)))
        raise ValueError(
            f"{nblocks[bad]} blocks of {sizes[bad]} samples after {skips[bad]} do not fit a "
            f"window of {lengths[bad]}"
        )
    if offsets.min() < 0 or np.any(offsets + (lengths + 7) // 8 > planes.size):
        raise ValueError("a window's plane runs past the planes given")


def _prepare(
    planes: UInt8Array,
    offsets: Sequence[int] | npt.NDArray[np.integer[Any]],
    keys: UInt8Array | Sequence[bytes],
    lengths: Sequence[int] | npt.NDArray[np.integer[Any]],
    ks: Sequence[int] | npt.NDArray[np.integer[Any]],
    skips: Sequence[int] | npt.NDArray[np.integer[Any]],
    nblocks: Sequence[int] | npt.NDArray[np.integer[Any]],
) -> tuple[UInt8Array, Int64Array, UInt8Array, Int64Array, Int64Array, Int64Array, Int64Array]:
    plane_array = np.ascontiguousarray(np.asarray(planes, dtype=np.uint8).reshape(-1))
    off = np.ascontiguousarray(np.asarray(offsets, dtype=np.int64).reshape(-1))
    n = off.size
    if isinstance(keys, np.ndarray):
        key_array = np.ascontiguousarray(keys, dtype=np.uint8)
    else:
        key_array = (
            np.stack([_key_array(key) for key in keys])
            if len(keys)
            else np.zeros((0, KEY_BYTES), np.uint8)
        )
    args = (
        plane_array,
        off,
        key_array,
        _as_i64(lengths, n, "lengths"),
        _as_i64(ks, n, "k"),
        _as_i64(skips, n, "skip"),
        _as_i64(nblocks, n, "nblocks"),
    )
    _check_batch(*args)
    return args


# -- public API ----------------------------------------------------------------------------


def embed_flips_batch(
    planes: UInt8Array,
    offsets: Sequence[int] | npt.NDArray[np.integer[Any]],
    keys: UInt8Array | Sequence[bytes],
    lengths: Sequence[int] | npt.NDArray[np.integer[Any]],
    ks: Sequence[int] | npt.NDArray[np.integer[Any]],
    skips: Sequence[int] | npt.NDArray[np.integer[Any]],
    nblocks: Sequence[int] | npt.NDArray[np.integer[Any]],
    bits: UInt8Array,
    bit_starts: Sequence[int] | npt.NDArray[np.integer[Any]],
) -> tuple[Int32Array, Int64Array]:
    """Which samples of several windows must flip their LSB, in one call.

    Window ``i``'s plane is ``planes[offsets[i]:]`` (``planes`` is the windows' packed LSB
    planes, concatenated; two windows may share one); its bits are the ``nblocks[i] * ks[i]``
    bits of ``bits`` (packed most significant bit first, as ``np.packbits``) from bit
    ``bit_starts[i]``. Returns ``(flips, counts)``: the window-relative sample indices, each
    window's ascending, concatenated in window order, and how many each window has.
    """
    args = _prepare(planes, offsets, keys, lengths, ks, skips, nblocks)
    n = args[1].size
    packed = np.ascontiguousarray(np.asarray(bits, dtype=np.uint8).reshape(-1))
    starts = _as_i64(bit_starts, n, "bit_starts")
    if n and (starts.min() < 0 or np.any(starts + args[6] * args[4] > packed.size * 8)):
        raise ValueError("a window's bits run past the bits given")
    out = np.empty(int(args[6].sum()) + 8, dtype=np.int32)
    counts = np.zeros(n, dtype=np.int64)
    total = _embed_batch(*args, packed, starts, out, counts)
    return out[:total], counts


def extract_bits_batch(
    planes: UInt8Array,
    offsets: Sequence[int] | npt.NDArray[np.integer[Any]],
    keys: UInt8Array | Sequence[bytes],
    lengths: Sequence[int] | npt.NDArray[np.integer[Any]],
    ks: Sequence[int] | npt.NDArray[np.integer[Any]],
    skips: Sequence[int] | npt.NDArray[np.integer[Any]],
    nblocks: Sequence[int] | npt.NDArray[np.integer[Any]],
    out: UInt8Array | None = None,
    out_starts: Sequence[int] | npt.NDArray[np.integer[Any]] | None = None,
) -> UInt8Array:
    """The bits several windows carry, packed most significant bit first, in one call.

    Window ``i``'s ``nblocks[i] * ks[i]`` bits go to ``out`` from bit ``out_starts[i]``
    (by default: a new array, each window's bits from the next whole byte on). Returns ``out``.
    """
    args = _prepare(planes, offsets, keys, lengths, ks, skips, nblocks)
    n = args[1].size
    nbits = args[6] * args[4]
    if out_starts is None:
        starts = np.zeros(n, dtype=np.int64)
        if n:
            starts[1:] = np.cumsum((nbits[:-1] + 7) // 8 * 8)
    else:
        starts = _as_i64(out_starts, n, "out_starts")
    if out is None:
        out = np.zeros(int((starts[-1] + nbits[-1] + 7) // 8) if n else 0, dtype=np.uint8)
    if out.dtype != np.uint8 or out.ndim != 1 or not out.flags.c_contiguous:
        raise ValueError("out must be a contiguous one-dimensional uint8 array")
    if n and (starts.min() < 0 or np.any(starts + nbits > out.size * 8)):
        raise ValueError("a window's bits run past the output")
    _extract_batch(*args, out, starts)
    return out


def _plane(plane: UInt8Array, length: int) -> UInt8Array:
    return np.ascontiguousarray(np.asarray(plane, dtype=np.uint8).reshape(-1))


def embed_flips(
    plane: UInt8Array, key: bytes, *, length: int, k: int, skip: int, bits: UInt8Array
) -> Int32Array:
    """The samples of one window (ascending) whose LSB must flip to carry ``bits``.

    ``bits`` are 0/1 values, a whole number of ``k``-bit blocks.
    """
    _check_k(k)
    values = np.asarray(bits, dtype=np.uint8).reshape(-1)
    if values.size % k:
        raise ValueError(f"{values.size} bits is not a whole number of {k}-bit blocks")
    flips, _ = embed_flips_batch(
        _plane(plane, length),
        [0],
        [key],
        [length],
        [k],
        [skip],
        [values.size // k],
        np.packbits(values),
        [0],
    )
    return flips


def extract_bits(
    plane: UInt8Array, key: bytes, *, length: int, k: int, skip: int, nblocks: int
) -> UInt8Array:
    """The ``nblocks * k`` bits (0/1 values) one window carries."""
    _check_k(k)
    packed = extract_bits_batch(_plane(plane, length), [0], [key], [length], [k], [skip], [nblocks])
    return np.unpackbits(packed, count=nblocks * k)


def positions(key: bytes, length: int, count: int | None = None) -> Int32Array:
    """The keyed order in which a window of ``length`` samples is used (its first ``count``)."""
    if not 0 < length <= WINDOW_SAMPLES:
        raise ValueError(f"window length must be in 1..{WINDOW_SAMPLES}, got {length}")
    count = length if count is None else count
    if not 0 <= count <= length:
        raise ValueError(f"cannot take {count} positions of a window of {length}")
    result: Int32Array = _positions(_key_array(key), length, count)
    return result


def sign_key(key: bytes) -> np.uint64:
    """The 64-bit key of a window's ±1 signs."""
    digest = hashlib.blake2b(_key_array(key).tobytes(), digest_size=8, person=b"subtone-sign")
    return np.uint64(int.from_bytes(digest.digest(), "little"))


def _where(where: npt.NDArray[np.integer[Any]], limit: int) -> Int32Array:
    array = np.ascontiguousarray(np.asarray(where, dtype=np.int32).reshape(-1))
    if array.size and (int(array.min()) < 0 or int(array.max()) >= limit):
        raise ValueError(f"a flip position is outside the window's {limit} samples")
    return array


def signs(key: bytes, where: npt.NDArray[np.integer[Any]]) -> Int32Array:
    """The keyed ±1 each sample ``where`` moves by (unless it is at full scale)."""
    result: Int32Array = _signs(sign_key(key), _where(where, WINDOW_SAMPLES))
    return result


def apply_flips(
    samples: Int32Array, key: bytes, where: npt.NDArray[np.integer[Any]], bits_per_sample: int
) -> None:
    """Flip the LSB of ``samples[where]`` in place by ±1: the keyed sign, except that a
    sample at full scale moves inwards. ``samples`` is one window (int32, contiguous)."""
    if samples.dtype != np.int32 or samples.ndim != 1 or not samples.flags.c_contiguous:
        raise ValueError("samples must be a contiguous one-dimensional int32 array")
    lo, hi = sample_range(bits_per_sample)
    _apply_int32(samples, sign_key(key), _where(where, samples.size), lo, hi)


def apply_flips_pcm(
    data: UInt8Array | bytearray,
    key: bytes,
    where: npt.NDArray[np.integer[Any]],
    bits_per_sample: int,
) -> None:
    """:func:`apply_flips` on one window's little-endian PCM bytes, in place."""
    width = bits_per_sample // 8
    if bits_per_sample not in (16, 24, 32):
        raise ValueError(f"bits_per_sample must be 16, 24 or 32, got {bits_per_sample}")
    array = np.frombuffer(data, dtype=np.uint8) if isinstance(data, bytearray) else data
    if array.dtype != np.uint8 or array.ndim != 1 or not array.flags.writeable:
        raise ValueError("data must be a writable one-dimensional uint8 buffer")
    lo, hi = sample_range(bits_per_sample)
    _apply_pcm(array, width, sign_key(key), _where(where, array.size // width), lo, hi)


def pack_lsb(data: bytes | bytearray | UInt8Array, bits_per_sample: int) -> UInt8Array:
    """The packed LSB plane (``bitorder="little"``) of little-endian PCM bytes."""
    width = bits_per_sample // 8
    if bits_per_sample not in (16, 24, 32):
        raise ValueError(f"bits_per_sample must be 16, 24 or 32, got {bits_per_sample}")
    array = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else data
    if array.size % width:
        raise ValueError(f"{array.size} bytes are not whole {bits_per_sample}-bit samples")
    count = array.size // width
    out = np.empty((count + 7) // 8, dtype=np.uint8)
    _pack_lsb(np.ascontiguousarray(array), width, count, out)
    return out


def copy_bits(dst: UInt8Array, dst_start: int, src: UInt8Array, src_start: int, n: int) -> None:
    """Copy ``n`` bits (packed most significant first) from ``src`` to ``dst``, in place."""
    if n < 0 or dst_start < 0 or src_start < 0:
        raise ValueError("negative bit count or offset")
    if dst_start + n > dst.size * 8 or src_start + n > src.size * 8:
        raise ValueError("bits run past the buffer")
    if n:
        _copy_bits(dst, dst_start, src, src_start, n)


def warm_up() -> None:
    """Compile (or load from the cache) every compiled function, so no call pays for it."""
    key = bytes(KEY_BYTES)
    plane = np.zeros(2, dtype=np.uint8)
    flips = embed_flips(plane, key, length=16, k=2, skip=1, bits=np.ones(4, np.uint8))
    extract_bits(plane, key, length=16, k=2, skip=1, nblocks=2)
    positions(key, 16)
    signs(key, flips)
    apply_flips(np.zeros(16, np.int32), key, flips, 16)
    apply_flips_pcm(bytearray(32), key, flips, 16)
    pack_lsb(bytes(32), 16)
    copy_bits(np.zeros(2, np.uint8), 3, np.ones(2, np.uint8), 1, 9)
