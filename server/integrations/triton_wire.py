"""The wire format of the stego models' requests: numpy arrays as Triton tensors
(``model_repository/*/config.pbtxt`` is the contract, :mod:`subtone.stego.triton_model` and
:mod:`subtone.robust.triton_model` the models)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import tritonclient.grpc as grpcclient

from subtone.robust.wire import Mix
from subtone.stego.engine import ExtractTask
from subtone.stego.triton_model import IN_K, IN_KEY, IN_LENGTH, IN_NBLOCKS, IN_PLANE, IN_SKIP
from subtone.stego.window import KEY_BYTES, WINDOW_BYTES

__all__ = [
    "MIN_BITS_BYTES",
    "TRITON_FP32",
    "TRITON_INT32",
    "TRITON_UINT8",
    "byte_rows",
    "first_text",
    "int_column",
    "robust_inputs",
    "tensor",
    "window_inputs",
]

TRITON_INT32 = "INT32"
TRITON_UINT8 = "UINT8"
TRITON_FP32 = "FP32"
MIN_BITS_BYTES: Final = 64
"""The narrowest BITS tensor an embed request sends (see :func:`byte_rows`)."""


def tensor(name: str, array: npt.NDArray[Any], datatype: str) -> grpcclient.InferInput:
    out = grpcclient.InferInput(name, list(array.shape), datatype)
    out.set_data_from_numpy(array)
    return out


def int_column(name: str, values: Sequence[int]) -> grpcclient.InferInput:
    return tensor(name, np.array(values, dtype=np.int32).reshape(-1, 1), TRITON_INT32)


def byte_rows(
    arrays: Sequence[npt.NDArray[Any] | bytes], what: str, *, fit: bool = False
) -> npt.NDArray[np.uint8]:
    """Byte arrays as the rows of a (n, WINDOW_BYTES) tensor, zero-padded; with ``fit``, only
    as wide as the power of two (64 bytes at least) that holds the longest: a short secret's
    bits are a few bytes a window, not 32 KiB, and requests of similar secrets (concurrent
    jobs) still have one shape, which Triton's dynamic batcher needs to merge them."""
    rows = [
        np.frombuffer(bytes(array), dtype=np.uint8)
        if isinstance(array, bytes)
        else np.asarray(array, dtype=np.uint8).reshape(-1)
        for array in arrays
    ]
    longest = max((row.size for row in rows), default=0)
    if longest > WINDOW_BYTES:
        raise ValueError(f"a window's {what} has at most {WINDOW_BYTES} bytes, got {longest}")
    width = min(WINDOW_BYTES, max(MIN_BITS_BYTES, 1 << (longest - 1).bit_length()))
    out = np.zeros((len(rows), width if fit else WINDOW_BYTES), dtype=np.uint8)
    for i, row in enumerate(rows):
        out[i, : row.size] = row
    return out


def window_inputs(tasks: Sequence[ExtractTask]) -> list[grpcclient.InferInput]:
    """The inputs an embed and an extract request share, one row per window."""
    keys = np.zeros((len(tasks), KEY_BYTES), dtype=np.uint8)
    for i, task in enumerate(tasks):
        key = np.frombuffer(bytes(task.key), dtype=np.uint8)
        if key.size != KEY_BYTES:
            # Triton refuses the shape; say it in the model's words instead.
            raise ValueError(f"a window key has {KEY_BYTES} bytes, got {key.size}")
        keys[i] = key
    return [
        tensor(IN_PLANE, byte_rows([t.plane for t in tasks], "plane"), TRITON_UINT8),
        int_column(IN_LENGTH, [t.length for t in tasks]),
        tensor(IN_KEY, keys, TRITON_UINT8),
        int_column(IN_K, [t.k for t in tasks]),
        int_column(IN_SKIP, [t.skip for t in tasks]),
        int_column(IN_NBLOCKS, [t.nblocks for t in tasks]),
    ]


def robust_inputs(mix: Mix, k_pos: bytes) -> list[grpcclient.InferInput]:
    """The inputs a robust embed and extract share: the working mix and ``k_pos``."""
    from subtone.robust import triton_model as robust_model  # scipy: only for robust calls

    if len(k_pos) != KEY_BYTES:
        raise ValueError(f"k_pos has {KEY_BYTES} bytes, got {len(k_pos)}")
    return [
        tensor(robust_model.IN_MIX, np.ascontiguousarray(mix, dtype=np.float32), TRITON_FP32),
        tensor(robust_model.IN_KEY, np.frombuffer(k_pos, dtype=np.uint8), TRITON_UINT8),
    ]


def first_text(values: npt.NDArray[Any]) -> str:
    """The first element of a BYTES output, as text."""
    first = values.reshape(-1)[0] if values.size else b""
    return first.decode() if isinstance(first, bytes) else str(first)
