"""The per-window embedding kernel over the packed LSB plane: keyed positions, Hamming
syndrome coding, and (for the client) ±1 matching.

This module is the whole "model". It imports numpy, numba and hashlib only, so the
in-process engine and the Triton python-backend models (``model_repository/``) run exactly
this code. The loops are compiled by numba (``cache=True``: compiled once per machine, then
loaded from ``__pycache__``; ``nogil=True``: several threads run them at once). The same
loops exist as CUDA kernels (:mod:`subtone.stego._kernel_cuda`, numba.cuda, bit for bit the
same answers): the batch functions run there when given a ``gpu``, which a Triton ``KIND_GPU``
instance does where numba.cuda works (:func:`choose_kernel`).

A *window* is up to :data:`WINDOW_SAMPLES` consecutive PCM samples of the data chunk (all
channels interleaved, as they sit in the file). The kernel never sees a sample, only the
window's **LSB plane**: bit ``i`` is the LSB of sample ``i``, packed eight to a byte with
``np.packbits(..., bitorder="little")`` (so a full window's plane is :data:`WINDOW_BYTES`
bytes, and window ``w`` of a cover's plane is bytes ``[w * WINDOW_BYTES, (w + 1) *
WINDOW_BYTES)``). Everything else a window needs is passed in: its length, a 32-byte window
key (:func:`subtone.stego.layout.window_key`), the Hamming parameter ``k``, how many leading
keyed positions to ``skip`` (the payload header's, in window 0) and the bits. Embedding
answers *which samples must change* (:func:`embed_flips`); whoever holds the audio changes
them by ±1 (:func:`apply_flips`, :func:`apply_flips_pcm`: numpy only, from
:mod:`subtone.stego.pcm`, which the client uses without this module).

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

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from subtone.stego._kernel_core import (
    drain_maps,
    embed_batch,
    embed_map_batch,
    extract_batch,
    keyed_positions,
    mark_flips,
)
from subtone.stego._kernel_pcm import copy_bits
from subtone.stego.pcm import (
    apply_flips,
    apply_flips_at,
    apply_flips_pcm,
    pack_lsb,
    sample_range,
    sign_key,
    signs,
)
from subtone.stego.window import (
    KEY_BYTES,
    MAX_K,
    WINDOW_BYTES,
    WINDOW_SAMPLES,
    Int32Array,
    Int64Array,
    UInt8Array,
    block_size,
    key_array,
)

__all__ = [
    "KEY_BYTES",
    "MAX_K",
    "WINDOW_BYTES",
    "WINDOW_SAMPLES",
    "KernelChoice",
    "apply_flips",
    "apply_flips_at",
    "apply_flips_pcm",
    "block_size",
    "choose_kernel",
    "copy_bits",
    "embed_flips",
    "embed_flips_batch",
    "embed_maps_batch",
    "extract_bits",
    "extract_bits_batch",
    "flips_of_maps",
    "pack_lsb",
    "positions",
    "ready_kernel",
    "sample_range",
    "sign_key",
    "signs",
    "warm_up",
]

# -- checks --------------------------------------------------------------------------------


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
        key_rows = np.ascontiguousarray(keys, dtype=np.uint8)
    else:
        key_rows = (
            np.stack([key_array(key) for key in keys])
            if len(keys)
            else np.zeros((0, KEY_BYTES), np.uint8)
        )
    args = (
        plane_array,
        off,
        key_rows,
        _as_i64(lengths, n, "lengths"),
        _as_i64(ks, n, "k"),
        _as_i64(skips, n, "skip"),
        _as_i64(nblocks, n, "nblocks"),
    )
    _check_batch(*args)
    return args


def _windows(
    args: tuple[UInt8Array, Int64Array, UInt8Array, Int64Array, Int64Array, Int64Array, Int64Array],
    starts: Int64Array,
) -> Int64Array:
    """The compiled loops' table of windows (one row each, columns as
    :data:`subtone.stego._kernel_core.WINDOW_FIELDS`)."""
    _, offsets, _, lengths, ks, skips, nblocks = args
    return np.ascontiguousarray(np.stack([offsets, lengths, ks, skips, nblocks, starts], axis=1))


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
    *,
    gpu: int | None = None,
) -> tuple[Int32Array, Int64Array]:
    """Which samples of several windows must flip their LSB, in one call.

    Window ``i``'s plane is ``planes[offsets[i]:]`` (``planes`` is the windows' packed LSB
    planes, concatenated; two windows may share one); its bits are the ``nblocks[i] * ks[i]``
    bits of ``bits`` (packed most significant bit first, as ``np.packbits``) from bit
    ``bit_starts[i]``. Returns ``(flips, counts)``: the window-relative sample indices, each
    window's ascending, concatenated in window order, and how many each window has. ``gpu``:
    run on that CUDA GPU (:func:`choose_kernel`) instead of this CPU; the answer is the same.
    """
    args, windows, packed = _embed_args(
        planes, offsets, keys, lengths, ks, skips, nblocks, bits, bit_starts
    )
    out = np.empty(int(args[6].sum()) + 8, dtype=np.int32)
    if gpu is None:
        counts: Int64Array = embed_batch(args[0], args[2], windows, packed, out)
    else:
        from subtone.stego import _kernel_cuda  # only a GPU instance loads numba.cuda

        counts = _kernel_cuda.embed_batch(args[0], args[2], windows, packed, out, gpu)
    return out[: int(counts.sum())], counts


def _embed_args(
    planes: UInt8Array,
    offsets: Sequence[int] | npt.NDArray[np.integer[Any]],
    keys: UInt8Array | Sequence[bytes],
    lengths: Sequence[int] | npt.NDArray[np.integer[Any]],
    ks: Sequence[int] | npt.NDArray[np.integer[Any]],
    skips: Sequence[int] | npt.NDArray[np.integer[Any]],
    nblocks: Sequence[int] | npt.NDArray[np.integer[Any]],
    bits: UInt8Array,
    bit_starts: Sequence[int] | npt.NDArray[np.integer[Any]],
) -> tuple[
    tuple[UInt8Array, Int64Array, UInt8Array, Int64Array, Int64Array, Int64Array, Int64Array],
    Int64Array,
    UInt8Array,
]:
    """An embed's arguments checked: the prepared columns, the windows' table, the bits."""
    args = _prepare(planes, offsets, keys, lengths, ks, skips, nblocks)
    n = args[1].size
    packed = np.ascontiguousarray(np.asarray(bits, dtype=np.uint8).reshape(-1))
    starts = _as_i64(bit_starts, n, "bit_starts")
    if n and (starts.min() < 0 or np.any(starts + args[6] * args[4] > packed.size * 8)):
        raise ValueError("a window's bits run past the bits given")
    return args, _windows(args, starts), packed


def embed_maps_batch(
    planes: UInt8Array,
    offsets: Sequence[int] | npt.NDArray[np.integer[Any]],
    keys: UInt8Array | Sequence[bytes],
    lengths: Sequence[int] | npt.NDArray[np.integer[Any]],
    ks: Sequence[int] | npt.NDArray[np.integer[Any]],
    skips: Sequence[int] | npt.NDArray[np.integer[Any]],
    nblocks: Sequence[int] | npt.NDArray[np.integer[Any]],
    bits: UInt8Array,
    bit_starts: Sequence[int] | npt.NDArray[np.integer[Any]],
    *,
    gpu: int | None = None,
) -> tuple[UInt8Array, Int64Array]:
    """:func:`embed_flips_batch`'s answer as bitmaps: ``(maps, counts)``, row ``i`` of
    ``maps`` (``(n, WINDOW_BYTES)`` bytes) with bit ``p`` (``bitorder="little"``, as the LSB
    plane) set where window ``i``'s sample ``p`` flips. The kernel's own form: a dense
    window's flips (:data:`~subtone.stego.engine.DENSE_K`) in a bit a sample, never turned
    into indices. ``gpu``: as for :func:`embed_flips_batch` (the GPU answers indices; they
    are marked here)."""
    args, windows, packed = _embed_args(
        planes, offsets, keys, lengths, ks, skips, nblocks, bits, bit_starts
    )
    maps = np.zeros((args[1].size, WINDOW_SAMPLES // 64), dtype=np.uint64)
    if gpu is None:
        counts: Int64Array = embed_map_batch(args[0], args[2], windows, packed, maps)
    else:
        from subtone.stego import _kernel_cuda  # only a GPU instance loads numba.cuda

        out = np.empty(int(args[6].sum()) + 8, dtype=np.int32)
        counts = _kernel_cuda.embed_batch(args[0], args[2], windows, packed, out, gpu)
        mark_flips(out, counts, maps)
    return maps.astype("<u8", copy=False).view(np.uint8), counts


def flips_of_maps(maps: UInt8Array, counts: Int64Array) -> Int32Array:
    """The indices of :func:`embed_maps_batch`'s ``maps`` (``counts`` set bits a row),
    concatenated in row order, each row's ascending, as :func:`embed_flips_batch` answers
    them. ``maps`` may be cleared."""
    words = np.ascontiguousarray(maps, dtype=np.uint8).view("<u8")
    if words.ndim != 2 or words.shape[1] != WINDOW_SAMPLES // 64:
        raise ValueError(f"maps must be rows of {WINDOW_BYTES} bytes")
    out = np.empty(int(np.sum(counts)) + 8, dtype=np.int32)
    found: Int64Array = drain_maps(words.astype(np.uint64, copy=False), out)
    if not np.array_equal(found, counts):
        raise ValueError("the maps do not hold the flips counted")
    return out[: int(found.sum())]


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
    *,
    gpu: int | None = None,
) -> UInt8Array:
    """The bits several windows carry, packed most significant bit first, in one call.

    Window ``i``'s ``nblocks[i] * ks[i]`` bits go to ``out`` from bit ``out_starts[i]``
    (by default: a new array, each window's bits from the next whole byte on). Returns ``out``.
    ``gpu``: as for :func:`embed_flips_batch`.
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
    if gpu is None:
        extract_batch(args[0], args[2], _windows(args, starts), out)
    else:
        from subtone.stego import _kernel_cuda  # only a GPU instance loads numba.cuda

        _kernel_cuda.extract_batch(args[0], args[2], _windows(args, starts), out, gpu)
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
    result: Int32Array = keyed_positions(key_array(key), length, count)
    return result


def warm_up(gpu: int | None = None) -> None:
    """Compile (or load from the cache) every compiled function, so no call pays for it;
    with ``gpu``, the CUDA kernels for that GPU too (a full window and a short one)."""
    key = bytes(KEY_BYTES)
    plane = np.zeros(2, dtype=np.uint8)
    embed_flips(plane, key, length=16, k=2, skip=1, bits=np.ones(4, np.uint8))
    extract_bits(plane, key, length=16, k=2, skip=1, nblocks=2)
    positions(key, 16)
    copy_bits(np.zeros(2, np.uint8), 3, np.ones(2, np.uint8), 1, 9)
    if gpu is not None:
        batch = (np.zeros(WINDOW_BYTES, np.uint8), [0, 0], [key, key], [WINDOW_SAMPLES, 16])
        embed_flips_batch(*batch, [2, 2], [1, 1], [2, 2], np.ones(2, np.uint8), [0, 4], gpu=gpu)
        extract_bits_batch(*batch, [2, 2], [1, 1], [2, 2], gpu=gpu)


# -- which kernel a Triton instance runs ---------------------------------------------------


@dataclass(frozen=True)
class KernelChoice:
    """The kernel a model instance runs, and why (for its log)."""

    gpu: int | None
    """The CUDA GPU the kernel runs on; ``None``: the CPU kernel."""
    reason: str
    fallback: bool = False
    """A GPU instance that runs the CPU kernel (worth a warning in its log)."""


def choose_kernel(
    instance_kind: str | None,
    device_id: str | int | None = None,
    *,
    cuda_available: Callable[[], bool] | None = None,
) -> KernelChoice:
    """The kernel for a Triton model instance of ``instance_kind`` (``args["model_instance_
    kind"]``: ``"GPU"`` for ``KIND_GPU``) on device ``device_id``.

    The CUDA kernel only on a GPU instance where numba.cuda finds a driver and NVVM
    (``cuda_available``, by default :func:`numba.cuda.is_available`); otherwise the CPU
    kernel, which gives the same answers. The one place that decides: the models call it.
    """
    if instance_kind != "GPU":
        return KernelChoice(None, f"a KIND_{instance_kind or 'CPU'} instance: the CPU kernel")
    if not (cuda_available or _cuda_available)():
        return KernelChoice(
            None,
            "a KIND_GPU instance, but numba.cuda finds no usable GPU (the CUDA driver and "
            "NVVM: numba-cuda[cu12]); the CPU kernel runs",
            fallback=True,
        )
    gpu = int(device_id or 0)
    return KernelChoice(gpu, f"a KIND_GPU instance: the CUDA kernel, on GPU {gpu}")


def ready_kernel(choice: KernelChoice) -> KernelChoice:
    """Compile the chosen kernel (:func:`warm_up`) before the first request. A CUDA kernel
    that fails to compile or run here gives way to the CPU kernel: a model that answers
    slower beats one that does not load."""
    try:
        warm_up(choice.gpu)
    except Exception as e:
        if choice.gpu is None:
            raise
        return KernelChoice(
            None, f"{choice.reason}, but it failed ({e!r}); the CPU kernel runs", fallback=True
        )
    return choice


def _cuda_available() -> bool:
    """Whether numba.cuda can run kernels here (imported only when asked: it is large)."""
    try:
        from numba import cuda
    except ImportError:
        return False
    is_available: Callable[[], bool] = cuda.is_available  # untyped in numba
    return bool(is_available())
