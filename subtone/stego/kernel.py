"""The per-window embedding kernel: keyed positions, Hamming syndrome coding, ±1 matching.

This module is the whole "model". It imports only numpy and hashlib, so both the in-process
engine and the Triton python-backend models (``model_repository/``) run exactly this code.

A *window* is up to :data:`WINDOW_SAMPLES` consecutive PCM samples of the data chunk (all
channels interleaved, as they sit in the file). Everything a window needs is passed in:
its samples, a 32-byte window key (derived from ``k_pos`` and the window index by
:func:`subtone.stego.layout.window_key`), the Hamming parameter ``k``, how many leading
keyed positions to ``skip`` (used by the payload header in window 0) and the bits.

Format v1, fixed forever once released (a stego file must extract with any later version):

* Positions: a 4-round Feistel permutation on 18-bit indices keyed by the window key,
  restricted (order kept) to indices below the window's length. It is computed with
  integer arithmetic only, so it never depends on numpy's random generators.
* Block ``b`` of a window uses positions ``perm[skip + b*n : skip + (b+1)*n]`` with
  ``n = 2**k - 1``. Its syndrome is the XOR of the 1-based indices of its samples whose LSB
  is 1; it carries ``k`` message bits (most significant first). Embedding changes at most
  one sample per block, by ±1 with a keyed sign (never replacing the LSB), and never
  outside the sample range: a sample at full scale moves inwards.
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt

__all__ = [
    "KEY_BYTES",
    "MAX_K",
    "WINDOW_SAMPLES",
    "block_size",
    "embed_window",
    "extract_window",
    "positions",
    "sample_range",
    "signs",
]

WINDOW_BITS = 18
WINDOW_SAMPLES = 1 << WINDOW_BITS
"""Samples in a full window (256 Ki samples: 512 KiB of 16-bit audio)."""

KEY_BYTES = 32
MAX_K = 16
"""Largest Hamming parameter: blocks of 65,535 samples carrying 16 bits."""

_HALF_BITS = WINDOW_BITS // 2
_HALF_MASK = np.uint64((1 << _HALF_BITS) - 1)
_ROUNDS = 4
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)

Int32Array = npt.NDArray[np.int32]
UInt8Array = npt.NDArray[np.uint8]
IndexArray = npt.NDArray[np.int32]


def block_size(k: int) -> int:
    """Samples per Hamming block for parameter ``k``."""
    return (1 << k) - 1


def sample_range(bits_per_sample: int) -> tuple[int, int]:
    """The smallest and largest sample value of signed PCM with this many bits."""
    top = 1 << (bits_per_sample - 1)
    return -top, top - 1


def _mix(x: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """SplitMix64's finaliser, element-wise (wrapping uint64 arithmetic)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def _subkeys(key: bytes) -> npt.NDArray[np.uint64]:
    if len(key) != KEY_BYTES:
        raise ValueError(f"a window key has {KEY_BYTES} bytes, got {len(key)}")
    return np.frombuffer(key, dtype="<u8").astype(np.uint64)


def _sign_key(key: bytes) -> np.uint64:
    digest = hashlib.blake2b(key, digest_size=8, person=b"subtone-sign").digest()
    return np.uint64(int.from_bytes(digest, "little"))


def _round_tables(key: bytes) -> npt.NDArray[np.int32]:
    """The Feistel round functions as lookup tables over a half-index (``_ROUNDS`` x 512)."""
    round_keys = _subkeys(key)
    halves = np.arange(1 << _HALF_BITS, dtype=np.uint64)
    tables = [_mix((halves + _GOLDEN) ^ round_keys[r]) & _HALF_MASK for r in range(_ROUNDS)]
    stacked: npt.NDArray[np.int32] = np.stack(tables).astype(np.int32)
    return stacked


def positions(key: bytes, length: int, count: int | None = None) -> IndexArray:
    """The keyed order in which a window of ``length`` samples is used (its first ``count``)."""
    if not 0 < length <= WINDOW_SAMPLES:
        raise ValueError(f"window length must be in 1..{WINDOW_SAMPLES}, got {length}")
    count = length if count is None else count
    if not 0 <= count <= length:
        raise ValueError(f"cannot take {count} positions of a window of {length}")
    # A full window needs only the first ``count`` images; a short one keeps, in order,
    # the images below its length (cycle-walking done for the whole domain at once).
    domain = count if length == WINDOW_SAMPLES else WINDOW_SAMPLES
    idx = np.arange(domain, dtype=np.int32)
    left = idx >> _HALF_BITS
    right = idx & int(_HALF_MASK)
    for table in _round_tables(key):
        left, right = right, left ^ table[right]
    perm = (left << _HALF_BITS) | right
    if length < WINDOW_SAMPLES:
        perm = perm[perm < length][:count]
    return perm


def _signs(key: bytes, where: IndexArray) -> npt.NDArray[np.int32]:
    bits = _mix(where.astype(np.uint64) ^ _sign_key(key)) & np.uint64(1)
    return (bits.astype(np.int32) << 1) - 1


def signs(key: bytes, where: IndexArray) -> npt.NDArray[np.int32]:
    """The keyed direction (+1 or -1) in which each sample at ``where`` moves when flipped."""
    return _signs(key, where)


def _check(key: bytes, k: int) -> None:
    if not 1 <= k <= MAX_K:
        raise ValueError(f"k must be in 1..{MAX_K}, got {k}")
    if len(key) != KEY_BYTES:
        raise ValueError(f"a window key has {KEY_BYTES} bytes, got {len(key)}")


def _blocks(key: bytes, length: int, k: int, skip: int, nblocks: int) -> IndexArray:
    n = block_size(k)
    if skip < 0 or nblocks < 0 or skip + nblocks * n > length:
        raise ValueError(
            f"{nblocks} blocks of {n} samples after {skip} do not fit a window of {length}"
        )
    return positions(key, length, skip + nblocks * n)[skip:].reshape(nblocks, n)


def _syndromes(lsb: npt.NDArray[np.int32]) -> npt.NDArray[np.int32]:
    weights = np.arange(1, lsb.shape[1] + 1, dtype=np.int32)
    syndromes: npt.NDArray[np.int32] = np.bitwise_xor.reduce(lsb * weights, axis=1)
    return syndromes


def _bits_to_values(bits: UInt8Array, k: int) -> npt.NDArray[np.int32]:
    shifts = np.arange(k - 1, -1, -1, dtype=np.int32)
    values: npt.NDArray[np.int32] = (bits.reshape(-1, k).astype(np.int32) << shifts).sum(
        axis=1, dtype=np.int32
    )
    return values


def embed_window(
    samples: Int32Array,
    key: bytes,
    *,
    k: int,
    skip: int,
    bits: UInt8Array,
    bits_per_sample: int,
) -> Int32Array:
    """Return a copy of ``samples`` carrying ``bits`` (0/1 values, a multiple of ``k``)."""
    _check(key, k)
    if bits.size % k:
        raise ValueError(f"{bits.size} bits is not a whole number of {k}-bit blocks")
    out = np.array(samples, dtype=np.int32, copy=True)
    nblocks = bits.size // k
    if nblocks == 0:
        return out
    where = _blocks(key, out.size, k, skip, nblocks)
    lsb = out[where] & 1
    change = _syndromes(lsb) ^ _bits_to_values(bits, k)
    rows = np.nonzero(change)[0]
    targets = where[rows, change[rows] - 1]
    delta = _signs(key, targets)
    lo, hi = sample_range(bits_per_sample)
    current = out[targets]
    delta[current >= hi] = -1
    delta[current <= lo] = 1
    out[targets] = current + delta
    return out


def extract_window(
    samples: Int32Array, key: bytes, *, k: int, skip: int, nblocks: int
) -> UInt8Array:
    """The ``nblocks * k`` bits (0/1 values) a window carries."""
    _check(key, k)
    if nblocks == 0:
        return np.zeros(0, dtype=np.uint8)
    where = _blocks(key, samples.size, k, skip, nblocks)
    values = _syndromes(np.asarray(samples, dtype=np.int32)[where] & 1)
    shifts = np.arange(k - 1, -1, -1, dtype=np.int32)
    return ((values[:, None] >> shifts) & 1).astype(np.uint8).reshape(-1)
