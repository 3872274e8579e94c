"""Scenarios run by test_kernel_cuda.py in a child process under numba's CUDA simulator:
``NUMBA_ENABLE_CUDASIM=1 python -m tests.subtone.stego.cudasim_cases <scenario>``.

A child process, because numba reads the variable once, when it is first imported: set in the
test process it would turn every later test's numba.cuda into the simulator. Each scenario
raises (a non-zero exit, the traceback on stderr) where the CUDA kernel and the CPU kernel
differ. The simulator runs each CUDA thread as a Python thread, so windows are short or use
few blocks.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import numpy as np

from subtone.stego import kernel
from subtone.stego.engine import EmbedTask, InProcessEngine, flip_indices

W = kernel.WINDOW_SAMPLES
Window = tuple[int, int, int, int]
"""(length, k, skip, nblocks)"""

MIXED: list[Window] = [
    (W, 1, 0, 128),  # the header window: k = 1 from the first keyed position
    (W, 16, 5, 1),  # one block of 65,535 samples, spread over many threads
    (W, 4, 1000, 40),  # a full window past a long skip
    (W, 7, 3, 0),  # no blocks at all
    (5000, 1, 0, 300),  # a short window at k = 1
    (3000, 3, 7, 50),
    (2000, 10, 0, 1),  # a short window of a single long block
    (100, 2, 3, 32),  # a short window used to its end
    (1, 1, 0, 1),  # a one-sample window
]


def batch(rng: np.random.Generator, windows: list[Window]) -> dict[str, Any]:
    """Random planes, keys and bits for ``windows``, every window's bits from an odd bit."""
    planes = [rng.integers(0, 256, (length + 7) // 8, dtype=np.uint8) for length, *_ in windows]
    sizes = [p.size for p in planes]
    nbits = [k * nblocks for _, k, _, nblocks in windows]
    starts = 3 + np.concatenate([[0], np.cumsum(np.array(nbits) + 5)[:-1]])
    return {
        "planes": np.concatenate(planes),
        "offsets": np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64),
        "keys": [rng.bytes(kernel.KEY_BYTES) for _ in windows],
        "lengths": [w[0] for w in windows],
        "ks": [w[1] for w in windows],
        "skips": [w[2] for w in windows],
        "nblocks": [w[3] for w in windows],
        "bits": rng.integers(0, 256, int(starts[-1] + nbits[-1]) // 8 + 2, dtype=np.uint8),
        "starts": starts.astype(np.int64),
    }


def check_batch(b: dict[str, Any]) -> None:
    """Embed and extract on the GPU (GPU 0 of the simulator) and on the CPU: equal."""
    common = (b["planes"], b["offsets"], b["keys"], b["lengths"], b["ks"], b["skips"])
    want = kernel.embed_flips_batch(*common, b["nblocks"], b["bits"], b["starts"])
    got = kernel.embed_flips_batch(*common, b["nblocks"], b["bits"], b["starts"], gpu=0)
    np.testing.assert_array_equal(got[1], want[1])
    np.testing.assert_array_equal(got[0], want[0])
    assert got[0].dtype == want[0].dtype and got[1].dtype == want[1].dtype
    # The flips as bitmaps (FLIP_MAP): the GPU's indices marked on the host, the CPU's marks.
    cpu_maps = kernel.embed_maps_batch(*common, b["nblocks"], b["bits"], b["starts"])
    gpu_maps = kernel.embed_maps_batch(*common, b["nblocks"], b["bits"], b["starts"], gpu=0)
    np.testing.assert_array_equal(gpu_maps[1], want[1])
    np.testing.assert_array_equal(cpu_maps[1], want[1])
    np.testing.assert_array_equal(gpu_maps[0], cpu_maps[0])
    np.testing.assert_array_equal(kernel.flips_of_maps(gpu_maps[0], gpu_maps[1]), want[0])
    size = b["bits"].size
    cpu = kernel.extract_bits_batch(
        *common, b["nblocks"], np.full(size, 0xA5, np.uint8), b["starts"]
    )
    gpu = kernel.extract_bits_batch(
        *common, b["nblocks"], np.full(size, 0xA5, np.uint8), b["starts"], gpu=0
    )
    np.testing.assert_array_equal(gpu, cpu)  # bits outside the windows' left as they were
    np.testing.assert_array_equal(
        kernel.extract_bits_batch(*common, b["nblocks"], gpu=0),
        kernel.extract_bits_batch(*common, b["nblocks"]),
    )


def mixed() -> None:
    """Full and short windows, every k from the header's 1 to 16, in one batch."""
    check_batch(batch(np.random.default_rng(11), MIXED))


def random_short() -> None:
    """Seeded random short windows, random k and skip."""
    for seed in range(4):
        rng = np.random.default_rng(seed)
        windows = []
        for _ in range(4):
            length = int(rng.integers(1, 3000))
            k = int(rng.integers(1, 12))
            skip = int(rng.integers(0, min(length, 200) + 1))
            nblocks = int(rng.integers(0, (length - skip) // kernel.block_size(k) + 1))
            windows.append((length, k, skip, nblocks))
        check_batch(batch(rng, windows))


def full_scale() -> None:
    """A cover with samples at both ends of the range: the GPU's flips move them inwards
    (``apply_flips``), the file reads back, and it is the CPU kernel's file."""
    rng = np.random.default_rng(5)
    length, k, skip = 4000, 3, 16
    lo, hi = kernel.sample_range(16)
    samples = rng.integers(lo, hi, length, endpoint=True).astype(np.int32)
    samples[:200], samples[200:400] = hi, lo
    plane = _plane(samples)
    key = rng.bytes(kernel.KEY_BYTES)
    nblocks = (length - skip) // kernel.block_size(k)
    bits = np.packbits(rng.integers(0, 2, nblocks * k).astype(np.uint8))
    args = (plane, [0], [key], [length], [k], [skip], [nblocks])
    flips, _ = kernel.embed_flips_batch(*args, bits, [0], gpu=0)
    np.testing.assert_array_equal(flips, kernel.embed_flips_batch(*args, bits, [0])[0])
    stego = samples.copy()
    kernel.apply_flips(stego, key, flips, 16)
    assert stego.min() >= lo and stego.max() <= hi and np.abs(stego - samples).max() == 1
    args = (_plane(stego), *args[1:])
    read = kernel.extract_bits_batch(*args, gpu=0)
    np.testing.assert_array_equal(
        np.unpackbits(read)[: nblocks * k], np.unpackbits(bits)[: nblocks * k]
    )


def _plane(samples: np.ndarray) -> np.ndarray:
    return np.packbits(samples & 1, bitorder="little")


def empty() -> None:
    """No windows, and windows with no blocks: nothing to launch, the same empty answers."""
    for windows in ([], [(W, 5, 0, 0), (300, 1, 10, 0)]):
        check_batch(batch(np.random.default_rng(1), windows) if windows else _no_windows())


def _no_windows() -> dict[str, Any]:
    none: list[int] = []
    return dict(planes=np.zeros(0, np.uint8), offsets=none, keys=[], lengths=none, ks=none,
                skips=none, nblocks=none, bits=np.zeros(1, np.uint8), starts=none)  # fmt: skip


def triton_gpu_instance() -> None:
    """The Triton model on a KIND_GPU instance chooses the CUDA kernel where numba.cuda works
    (the simulator's GPU 0), says so once, and answers as the in-process engine."""
    from . import test_triton_model as t

    logs: list[str] = []
    t.pb.Logger = SimpleNamespace(log_info=logs.append, log_warn=logs.append)
    rng = np.random.default_rng(3)
    tasks = [t.task(i, length, k) for i, (length, k) in enumerate([(3000, 2), (900, 1), (40, 3)])]
    plane = rng.integers(0, 256, kernel.WINDOW_BYTES, dtype=np.uint8)
    bits = rng.integers(0, 256, 3, dtype=np.uint8)
    tasks.append(EmbedTask(plane, W, rng.bytes(kernel.KEY_BYTES), 9, 4, 2, bits))
    embedder = t.model("embed", "GPU")
    assert embedder.kernel.gpu == 0 and embedder.threads == 1, embedder.kernel
    assert logs == ["stego_embed: a KIND_GPU instance: the CUDA kernel, on GPU 0"], logs
    (response,) = embedder.execute([t.request(tasks)])
    flips, counts = response.tensors["FLIPS"], response.tensors["COUNT"][:, 0]
    for row, count, want in zip(flips, counts, InProcessEngine().embed(tasks), strict=True):
        np.testing.assert_array_equal(row[:count], flip_indices(want))
    (response,) = t.model("extract", "GPU").execute([t.request(tasks, embed=False)])
    for row, want in zip(
        response.tensors["BITS_OUT"], InProcessEngine().extract(tasks), strict=True
    ):
        np.testing.assert_array_equal(row[: want.size], want)


SCENARIOS: dict[str, Callable[[], None]] = {
    f.__name__: f for f in (mixed, random_short, full_scale, empty, triton_gpu_instance)
}


def main(name: str) -> None:
    from numba import cuda

    assert os.environ.get("NUMBA_ENABLE_CUDASIM") == "1" and cuda.is_available()
    SCENARIOS[name]()
    print(json.dumps({"scenario": name, "ok": True}))


if __name__ == "__main__":
    main(sys.argv[1])
