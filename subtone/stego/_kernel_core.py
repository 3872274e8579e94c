"""The compiled loops of the per-window kernel (format v1: see :mod:`subtone.stego.kernel`).

Private: :mod:`subtone.stego.kernel` checks every argument before calling in here, because
these loops do not check bounds. Compiled by numba (``cache=True``: once per machine, then
loaded from ``__pycache__``; ``nogil=True``: several threads run them at once).
"""

from __future__ import annotations

import numba
import numpy as np
import numpy.typing as npt

from subtone.stego.window import (
    MAX_K,
    WINDOW_BITS,
    WINDOW_SAMPLES,
    Int32Array,
    Int64Array,
    UInt8Array,
    UInt32Array,
)

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
_U3 = np.uint32(3)
_U6 = np.uint32(6)
_U7 = np.uint32(7)
_U63 = np.uint32(63)
_U1 = np.uint32(1)
_U9 = np.uint32(_HALF_BITS)
_U511 = np.uint32(_HALF_MASK)
_U512 = np.uint32(_HALF)
_U1024 = np.uint32(2 * _HALF)
_U1536 = np.uint32(3 * _HALF)

jit = numba.njit(cache=True, nogil=True, boundscheck=False)


@jit
def mix(x: np.uint64) -> np.uint64:
    """SplitMix64's finaliser (wrapping uint64 arithmetic)."""
    x = x ^ (x >> _S30)
    x = x * _M1
    x = x ^ (x >> _S27)
    x = x * _M2
    return x ^ (x >> _S31)


@jit
def _round_tables(key: UInt8Array) -> UInt32Array:
    """The Feistel round functions as lookup tables over a half-index: ``_ROUNDS`` tables of
    512 entries, one after the other."""
    tables = np.empty(_ROUNDS * _HALF, dtype=np.uint32)
    for r in range(_ROUNDS):
        sub = np.uint64(0)
        for b in range(8):
            sub |= np.uint64(key[r * 8 + b]) << np.uint64(8 * b)
        for h in range(_HALF):
            value = mix((np.uint64(h) + _GOLDEN) ^ sub) & np.uint64(_HALF_MASK)
            tables[r * _HALF + h] = np.uint32(value)
    return tables


@jit
def _permute(t: UInt32Array, idx: int) -> int:
    """The image of ``idx`` (unsigned arithmetic: no negative-index handling in the loads)."""
    left = np.uint32(idx) >> _U9
    right = np.uint32(idx) & _U511
    left ^= t[right]
    right ^= t[_U512 + left]
    left ^= t[_U1024 + right]
    right ^= t[_U1536 + left]
    return int((left << _U9) | right)


@jit
def keyed_positions(key: UInt8Array, length: int, count: int) -> Int32Array:
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


@jit
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


@jit
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


@jit
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


@jit
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


@jit
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


@jit
def _scratch() -> tuple[Int32Array, UInt8Array, UInt8Array, Int32Array]:
    """Buffers for one chunk of keyed positions: positions, their LSBs, message bits and
    syndromes (reused from window to window)."""
    return (
        np.empty(_BUFFER, dtype=np.int32),
        np.empty(_BUFFER, dtype=np.uint8),
        np.empty(_BUFFER, dtype=np.uint8),
        np.empty(_CHUNK, dtype=np.int32),
    )


@jit
def _mark_chunk(
    k: int,
    n: int,
    blocks: int,
    scratch: tuple[Int32Array, UInt8Array, UInt8Array, Int32Array],
    mark: npt.NDArray[np.uint64],
) -> None:
    """Mark the one sample per block that must flip (none where the block already carries
    its bits, in ``msg``)."""
    pos, lsb, msg, syn = scratch
    if k == 1:
        for b in range(blocks):
            p = pos[b]
            change = np.uint64(lsb[b] ^ msg[b])
            mark[p >> 6] |= change << np.uint64(p & 63)
        return
    _syndromes(lsb, blocks, n, syn)
    for b in range(blocks):
        value = 0
        for j in range(k):
            value = (value << 1) | msg[b * k + j]
        change = syn[b] ^ value
        hit = np.int64(change != 0)
        p = pos[b * n + change - 1 + (1 - hit)]
        mark[p >> 6] |= np.uint64(hit) << np.uint64(p & 63)


@jit
def _read_chunk(
    k: int,
    n: int,
    blocks: int,
    scratch: tuple[Int32Array, UInt8Array, UInt8Array, Int32Array],
    out: UInt8Array,
    bit: int,
) -> None:
    """Store the bits the chunk's blocks carry into ``out`` from bit ``bit``."""
    _, lsb, msg, syn = scratch
    if k == 1:
        _put_bits(out, bit, lsb, blocks)
        return
    _syndromes(lsb, blocks, n, syn)
    for b in range(blocks):
        for j in range(k):
            msg[b * k + j] = (syn[b] >> (k - 1 - j)) & 1
    _put_bits(out, bit, msg, blocks * k)


@jit
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


@jit
def _mark_single(
    t: UInt32Array, window: UInt8Array, idx: int, value: np.uint32, mark: npt.NDArray[np.uint64]
) -> None:
    """Mark keyed position ``idx``'s sample if its LSB differs from ``value`` (0 or 1)."""
    p = np.uint32(_permute(t, idx))
    change = ((np.uint32(window[p >> _U3]) >> (p & _U7)) ^ value) & _U1
    mark[p >> _U6] |= np.uint64(change) << np.uint64(p & _U63)


@jit
def _embed_single(
    t: UInt32Array,
    window: UInt8Array,
    idx: int,
    count: int,
    bits: UInt8Array,
    bit: int,
    mark: npt.NDArray[np.uint64],
) -> None:
    """``_walk``'s embedding at k = 1 in a full window, in one pass: a block is one sample,
    which flips where its LSB differs from its bit (the same marks as ``_fill`` then
    ``_mark_chunk``, without their buffers: at k = 1 those cost as much as the positions).
    The bits are read a byte at a time once ``bit`` is on a byte boundary."""
    i = 0
    while i < count and (bit + i) & 7:
        b = bit + i
        _mark_single(t, window, idx + i, np.uint32(bits[b >> 3] >> (7 - (b & 7))), mark)
        i += 1
    first = (bit + i) >> 3
    for w in range((count - i) >> 3):
        value = np.uint32(bits[first + w])
        at = idx + i + 8 * w
        for j in range(8):
            _mark_single(t, window, at + j, value >> np.uint32(7 - j), mark)
    i += (count - i) >> 3 << 3
    while i < count:
        b = bit + i
        _mark_single(t, window, idx + i, np.uint32(bits[b >> 3] >> (7 - (b & 7))), mark)
        i += 1


@jit
def _walk(
    planes: UInt8Array,
    keys: UInt8Array,
    windows: Int64Array,
    i: int,
    bits: UInt8Array,
    scratch: tuple[Int32Array, UInt8Array, UInt8Array, Int32Array],
    mark: npt.NDArray[np.uint64],
    embed: bool,
) -> None:
    """Walk window ``i``'s blocks a chunk at a time. Embedding (``embed``) reads its bits
    from ``bits`` and marks in ``mark`` (a 2**18-bit map, zero on entry) the samples to
    flip; extracting writes its bits into ``bits``.

    ``windows[i]`` is the window's plane offset, length, ``k``, skip, block count and first
    bit (see :data:`WINDOW_FIELDS`)."""
    base = windows[i, 0]
    length = windows[i, 1]
    k = windows[i, 2]
    skip = windows[i, 3]
    nblocks = windows[i, 4]
    bit = windows[i, 5]
    pos, lsb, msg, _ = scratch
    t = _round_tables(keys[i])
    if k == 1 and embed and length == WINDOW_SAMPLES:
        _embed_single(t, planes[base:], skip, nblocks, bits, bit, mark)
        return
    n = (1 << k) - 1
    per_chunk = max(1, _CHUNK // n)
    idx = _skip(t, length, skip)
    done = 0
    while done < nblocks:
        blocks = min(per_chunk, nblocks - done)
        idx = _fill(t, length, idx, blocks * n, planes, base, pos, lsb)
        if embed:
            _get_bits(bits, bit, blocks * k, msg)
            _mark_chunk(k, n, blocks, scratch, mark)
        else:
            _read_chunk(k, n, blocks, scratch, bits, bit)
        bit += blocks * k
        done += blocks


WINDOW_FIELDS = ("offset", "length", "k", "skip", "nblocks", "bit_start")
"""The columns of the ``windows`` table the batch loops take, one row a window."""


@jit
def embed_batch(
    planes: UInt8Array, keys: UInt8Array, windows: Int64Array, bits: UInt8Array, out: Int32Array
) -> Int64Array:
    """Each window's flips (ascending) into ``out``, concatenated; returns how many each has.

    ``out`` needs 8 spare slots past the last flip."""
    mark = np.zeros(WINDOW_SAMPLES // 64, dtype=np.uint64)
    scratch = _scratch()
    counts = np.zeros(windows.shape[0], dtype=np.int64)
    at = 0
    for i in range(windows.shape[0]):
        _walk(planes, keys, windows, i, bits, scratch, mark, True)
        end = _drain(mark, out, at)
        counts[i] = end - at
        at = end
    return counts


@jit
def extract_batch(
    planes: UInt8Array, keys: UInt8Array, windows: Int64Array, out: UInt8Array
) -> None:
    """Each window's bits into ``out`` from its ``bit_start``."""
    scratch = _scratch()
    no_mark = np.zeros(0, dtype=np.uint64)
    for i in range(windows.shape[0]):
        _walk(planes, keys, windows, i, out, scratch, no_mark, False)


@jit
def embed_map_batch(
    planes: UInt8Array,
    keys: UInt8Array,
    windows: Int64Array,
    bits: UInt8Array,
    maps: npt.NDArray[np.uint64],
) -> Int64Array:
    """Each window's flips as the kernel marks them: row ``i`` of ``maps`` (zero on entry,
    ``WINDOW_SAMPLES // 64`` words a row) gets bit ``p % 64`` of word ``p // 64`` set where
    sample ``p`` flips; returns how many each window has."""
    scratch = _scratch()
    counts = np.zeros(windows.shape[0], dtype=np.int64)
    for i in range(windows.shape[0]):
        mark = maps[i]
        _walk(planes, keys, windows, i, bits, scratch, mark, True)
        counts[i] = _count(mark)
    return counts


@jit
def _count(mark: npt.NDArray[np.uint64]) -> int:
    total = 0
    for w in range(mark.size):
        word = mark[w]
        if word:
            for byte in range(8):
                total += _BYTE_COUNT[(word >> np.uint64(8 * byte)) & np.uint64(0xFF)]
    return total


@jit
def drain_maps(maps: npt.NDArray[np.uint64], out: Int32Array) -> Int64Array:
    """Each row's set bits (ascending) into ``out``, concatenated, clearing ``maps``; returns
    how many each row had. ``out`` needs 8 spare slots past the last flip."""
    counts = np.zeros(maps.shape[0], dtype=np.int64)
    at = 0
    for i in range(maps.shape[0]):
        end = _drain(maps[i], out, at)
        counts[i] = end - at
        at = end
    return counts


@jit
def mark_flips(flips: Int32Array, counts: Int64Array, maps: npt.NDArray[np.uint64]) -> None:
    """Set in row ``i`` of ``maps`` the bits of window ``i``'s flips (``counts[i]`` of
    ``flips``, concatenated in window order)."""
    at = 0
    for i in range(counts.size):
        for j in range(at, at + counts[i]):
            p = flips[j]
            maps[i, p >> 6] |= np.uint64(1) << np.uint64(p & 63)
        at += counts[i]
