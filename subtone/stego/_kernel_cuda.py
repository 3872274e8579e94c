"""The per-window kernel on a CUDA GPU (numba.cuda): what the CPU loops of
:mod:`subtone.stego._kernel_core` compute, for a batch of windows, bit for bit (format v1:
see :mod:`subtone.stego.kernel`).

Private: :mod:`subtone.stego.kernel` checks every argument and calls :func:`embed_batch` /
:func:`extract_batch` here (same arguments as the CPU loops', plus the GPU to run on) when it
is asked to; it imports this module only then, so nothing else loads ``numba.cuda``. Tested
under numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``), equal to the CPU loops.

The shape of the work, and why:

* One definition of the round function: each window's Feistel round tables (8 KiB) are
  computed on the host by the CPU kernel's own function and copied over.
* A window shorter than 2**18 samples uses the permutation restricted, order kept, to its
  length: a keyed position there is a *rank*, which a GPU would get from a scan over all 2**18
  inputs. Only a cover's last window is short, so the host computes its positions with the
  CPU kernel's :func:`~subtone.stego._kernel_core.keyed_positions` and copies them instead.
* Syndromes: one thread per run of :data:`SEGMENT` consecutive keyed positions (whole blocks
  when blocks are shorter), each XORing its blocks' partial syndromes into place with an
  atomic, so that a ``k = 16`` block of 65,535 samples is spread over a thousand threads
  instead of walked by one.
* Embedding then takes one thread per block to pick the sample it flips (at most one). Blocks
  never share a sample, so the host only has to sort each window's flips (the CPU loops give
  them ascending); extracting turns each block's syndrome into its ``k`` bits on the host.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, cast

import numpy as np
from numba import cuda as _numba_cuda

from subtone.stego._kernel_core import _round_tables, keyed_positions
from subtone.stego._kernel_pcm import copy_bits
from subtone.stego.window import WINDOW_SAMPLES, Int32Array, Int64Array, UInt8Array

__all__ = ["SEGMENT", "THREADS", "embed_batch", "extract_batch"]

cuda: Any = _numba_cuda
"""numba.cuda, untyped: its kernel-side names (``threadIdx``, ``atomic``...) exist only in
compiled code and the simulator, and its decorators carry no types."""

F = TypeVar("F", bound=Callable[..., Any])


def _device(function: F) -> F:
    """A CUDA device function (called from kernels only)."""
    return cast(F, cuda.jit(device=True)(function))


def _kernel(function: Callable[..., None]) -> Any:
    """A CUDA kernel, launched as ``kernel[grid, block](...)``."""
    return cuda.jit(function)


SEGMENT = 64
"""Keyed positions a syndrome thread reads (or the whole blocks that fit, when shorter)."""
THREADS = 128
"""Threads per CUDA block."""
_MAX_GRID_Y = 65_535
_TABLE = 4 * 512
"""Entries of a window's round tables (4 rounds of 512)."""

# Columns of the device's window table: the CPU loops' six, then two of its own.
_OFFSET, _LENGTH, _K, _SKIP, _NBLOCKS, _BIT, _FIRST, _SHORT = range(8)


@_device
def _position(tables: Any, short: Any, windows: Any, w: int, g: int) -> int:
    """Window ``w``'s keyed position ``g`` past its skip: a Feistel image (a full window,
    whose Feistel input is then ``skip + g``) or the host's table (a short one)."""
    start = windows[w, _SHORT]
    if start >= 0:
        return short[start + g]  # type: ignore[no-any-return]
    idx = windows[w, _SKIP] + g
    left = idx >> 9
    right = idx & 511
    left ^= tables[w, right]
    right ^= tables[w, 512 + left]
    left ^= tables[w, 1024 + right]
    right ^= tables[w, 1536 + left]
    return (left << 9) | right  # type: ignore[no-any-return]


@_device
def _run(n: int) -> int:
    """Keyed positions one syndrome thread reads, for blocks of ``n``."""
    if n < SEGMENT:
        return n * (SEGMENT // n)
    return SEGMENT


@_kernel
def _syndromes(planes: Any, tables: Any, short: Any, windows: Any, syn: Any) -> None:
    """XOR into ``syn`` (zero on entry) the syndromes of one run of each window's blocks."""
    run_index = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    for w in range(cuda.blockIdx.y, windows.shape[0], cuda.gridDim.y):
        n = (1 << windows[w, _K]) - 1
        used = windows[w, _NBLOCKS] * n
        run = _run(n)
        g = run_index * run
        end = min(g + run, used)
        base = windows[w, _OFFSET]
        b = g // n
        while g < end:
            stop = min(end, (b + 1) * n)
            s = 0
            while g < stop:
                p = _position(tables, short, windows, w, g)
                if (planes[base + (p >> 3)] >> (p & 7)) & 1:
                    s ^= g - b * n + 1
                g += 1
            if s:
                cuda.atomic.xor(syn, windows[w, _FIRST] + b, np.int32(s))
            b += 1


@_kernel
def _flips(tables: Any, short: Any, windows: Any, bits: Any, syn: Any, flips: Any) -> None:
    """Each block's flip (a window-relative sample, or -1 where it carries its bits already)."""
    b = cuda.blockIdx.x * cuda.blockDim.x + cuda.threadIdx.x
    for w in range(cuda.blockIdx.y, windows.shape[0], cuda.gridDim.y):
        if b < windows[w, _NBLOCKS]:
            k = windows[w, _K]
            at = windows[w, _BIT] + b * k
            value = 0
            for i in range(k):
                x = at + i
                value = (value << 1) | ((bits[x >> 3] >> (7 - (x & 7))) & 1)
            change = syn[windows[w, _FIRST] + b] ^ value
            flip = -1
            if change:
                flip = _position(tables, short, windows, w, b * ((1 << k) - 1) + change - 1)
            flips[windows[w, _FIRST] + b] = flip


def _device_windows(
    keys: UInt8Array, windows: Int64Array
) -> tuple[Any, Int32Array, Int64Array, int]:
    """The round tables, short windows' positions and window table the device needs, and
    the most syndrome runs a window has."""
    count = windows.shape[0]
    ns = (np.int64(1) << windows[:, 2]) - 1
    used = windows[:, 4] * ns
    first = np.zeros(count, dtype=np.int64)
    first[1:] = np.cumsum(windows[:-1, 4])
    starts = np.full(count, -1, dtype=np.int64)
    shorts = []
    at = 0
    for i in np.flatnonzero((windows[:, 1] < WINDOW_SAMPLES) & (used > 0)).tolist():
        skip = int(windows[i, 3])
        shorts.append(keyed_positions(keys[i], int(windows[i, 1]), skip + int(used[i]))[skip:])
        starts[i] = at
        at += int(used[i])
    short = np.concatenate(shorts) if shorts else np.zeros(1, dtype=np.int32)
    tables = np.zeros((count, _TABLE), dtype=np.uint32)
    for i in np.flatnonzero(starts < 0).tolist():
        tables[i] = _round_tables(keys[i])
    table = np.ascontiguousarray(np.column_stack([windows, first, starts]))
    runs = np.where(ns < SEGMENT, ns * (SEGMENT // ns), SEGMENT)
    return tables, short, table, int(((used + runs - 1) // runs).max(initial=0))


def _grid(threads_needed: int, windows: int) -> tuple[int, int]:
    return (max(1, -(-threads_needed // THREADS)), max(1, min(windows, _MAX_GRID_Y)))


def _run_syndromes(
    planes: UInt8Array, keys: UInt8Array, windows: Int64Array
) -> tuple[Any, Any, Any, Any]:
    """On the current GPU: the device arrays of the batch and every block's syndrome."""
    tables, short, table, runs = _device_windows(keys, windows)
    d_tables = cuda.to_device(tables)
    d_short = cuda.to_device(short)
    d_table = cuda.to_device(table)
    d_syn = cuda.to_device(np.zeros(max(1, int(windows[:, 4].sum())), dtype=np.int32))
    if runs:
        grid = _grid(runs, windows.shape[0])
        _syndromes[grid, THREADS](cuda.to_device(planes), d_tables, d_short, d_table, d_syn)
    return d_tables, d_short, d_table, d_syn


def embed_batch(
    planes: UInt8Array,
    keys: UInt8Array,
    windows: Int64Array,
    bits: UInt8Array,
    out: Int32Array,
    gpu: int,
) -> Int64Array:
    """:func:`subtone.stego._kernel_core.embed_batch` on GPU ``gpu``: each window's flips
    (ascending) into ``out``, concatenated; returns how many each has."""
    counts = np.zeros(windows.shape[0], dtype=np.int64)
    if not windows.shape[0]:
        return counts
    with cuda.gpus[gpu]:
        d_tables, d_short, d_table, d_syn = _run_syndromes(planes, keys, windows)
        total = int(windows[:, 4].sum())
        d_flips = cuda.device_array(max(1, total), dtype=np.int32)
        if total:
            grid = _grid(int(windows[:, 4].max()), windows.shape[0])
            d_bits = cuda.to_device(bits if bits.size else np.zeros(1, np.uint8))
            _flips[grid, THREADS](d_tables, d_short, d_table, d_bits, d_syn, d_flips)
        flips = d_flips.copy_to_host()
    at = 0
    first = 0
    for i, nblocks in enumerate(windows[:, 4].tolist()):
        mine = flips[first : first + nblocks]
        mine = np.sort(mine[mine >= 0])
        out[at : at + mine.size] = mine
        counts[i] = mine.size
        at += mine.size
        first += nblocks
    return counts


def extract_batch(
    planes: UInt8Array, keys: UInt8Array, windows: Int64Array, out: UInt8Array, gpu: int
) -> None:
    """:func:`subtone.stego._kernel_core.extract_batch` on GPU ``gpu``: each window's bits
    into ``out`` from its ``bit_start``."""
    if not windows.shape[0]:
        return
    with cuda.gpus[gpu]:
        d_syn = _run_syndromes(planes, keys, windows)[3]
        syn = d_syn.copy_to_host()
    first = 0
    for k, nblocks, bit in windows[:, [2, 4, 5]].tolist():
        shifts = np.arange(k - 1, -1, -1, dtype=np.int32)
        values = (syn[first : first + nblocks, None] >> shifts) & 1
        copy_bits(out, bit, np.packbits(values.astype(np.uint8)), 0, nblocks * k)
        first += nblocks
