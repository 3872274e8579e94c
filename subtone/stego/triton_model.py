"""The body of the Triton python-backend models ``stego_embed`` and ``stego_extract``.

Each ``model_repository/<model>/1/model.py`` is three lines: it hands Triton's
``triton_python_backend_utils`` module to :func:`model_class`. Everything else (reading the
config, parsing and checking requests, running the kernel over the whole batch, answering)
is here, importable and testable without Triton.

``config.pbtxt`` is the wire contract. One row is one window's task:

========== ======= ========= ===========================================================
name       type    dims      meaning
========== ======= ========= ===========================================================
PLANE      UINT8   [32768]   the window's packed LSB plane (``bitorder="little"``),
                             zero-padded past LENGTH samples
LENGTH     INT32   [1]       samples in the window (1..262144)
KEY        UINT8   [32]      the window key
K          INT32   [1]       Hamming parameter (1..16)
SKIP       INT32   [1]       leading keyed positions left alone
NBLOCKS    INT32   [1]       blocks of ``2**K - 1`` samples to embed in / read
BITS       UINT8   [-1]      (embed) the bits to carry, packed MSB first (np.packbits);
                             the first NBLOCKS * K are used (a request's rows are as wide
                             as its widest row needs: a short secret sends a few bytes)
FLIPS      INT32   [-1]      (embed, out) the samples to flip, ascending, padded with -1
                             to the longest row of the request
FLIP_MAP   UINT8   [32768]   (embed, out) the same flips as a bitmap (bit i set: sample i
                             flips; ``bitorder="little"``, as PLANE): what a client asks
                             for instead of FLIPS when the windows are dense (k <= 2: a
                             bit a sample is less than 32 bits a flip), the kernel's own
                             form, sent as it is
COUNT      INT32   [1]       (embed, out) how many samples of the row flip
BITS_OUT   UINT8   [-1]      (extract, out) the NBLOCKS * K bits read, packed MSB first,
                             zero-padded to the widest row of the batch
BATCH_SIZE INT32   [1]       (out) windows the ``execute()`` call served
========== ======= ========= ===========================================================

An embed request answers the outputs it asks for: FLIPS (the default), FLIP_MAP, or both.

A request may hold many rows (the client sends several windows at once) and the dynamic
batcher merges requests: ``execute()`` checks each request on its own (a bad one gets an
``INVALID_ARG`` error of its own and never disturbs the others), then runs the kernel once
over every good row of every request, and scatters the results back.

Each request may carry the worker's trace id and job id as request parameters
(:data:`subtone.tracing.TRACE_ID_PARAMETER`, :data:`~subtone.tracing.JOB_ID_PARAMETER`): the
model logs one INFO line in Triton's log the first time it serves a trace (the last
:data:`TRACES_REMEMBERED` are remembered), so an operator finds a job's requests by its trace id.

The kernel releases the GIL, so an instance splits a batch's rows over a thread per core it
may use (``os.sched_getaffinity``; the model parameter ``threads`` caps it): one job's windows
are worked on by every core, with one Python stub process and one copy of the model in memory.

The compiled kernel (numba: some 60 MB) is imported when a model starts and runs, not with
this module: the worker imports the wire's names from here and never runs the kernel.

On a ``KIND_GPU`` instance where numba.cuda finds the driver and NVVM, the kernel's CUDA
version runs instead (same answers; the whole batch in one call, no thread split); elsewhere
the CPU kernel runs. :func:`subtone.stego.kernel.choose_kernel` decides, and the instance logs
once at start which kernel it runs and why.
"""

from __future__ import annotations

import itertools
import json
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, TypeVar

import numpy as np
import numpy.typing as npt

from subtone.stego.engine import check_tasks
from subtone.stego.window import KEY_BYTES, WINDOW_BYTES
from subtone.tracing import JOB_ID_PARAMETER, TRACE_ID_PARAMETER, is_trace_id

if TYPE_CHECKING:
    from subtone.stego.kernel import KernelChoice

__all__ = [
    "FLIP_PAD",
    "IN_BITS",
    "IN_K",
    "IN_KEY",
    "IN_LENGTH",
    "IN_NBLOCKS",
    "IN_PLANE",
    "IN_SKIP",
    "OUT_BATCH_SIZE",
    "OUT_BITS",
    "OUT_COUNT",
    "OUT_FLIPS",
    "OUT_FLIP_MAP",
    "BadRequestError",
    "StegoModel",
    "model_class",
]

IN_PLANE = "PLANE"
IN_LENGTH = "LENGTH"
IN_KEY = "KEY"
IN_K = "K"
IN_SKIP = "SKIP"
IN_NBLOCKS = "NBLOCKS"
IN_BITS = "BITS"
OUT_FLIPS = "FLIPS"
OUT_FLIP_MAP = "FLIP_MAP"
OUT_COUNT = "COUNT"
OUT_BITS = "BITS_OUT"
OUT_BATCH_SIZE = "BATCH_SIZE"
FLIP_PAD = -1
"""What pads a row's FLIPS past its COUNT."""

TRACES_REMEMBERED = 1024
"""Trace ids a model instance remembers having logged."""
_ID_CHARS = 64

Kind = Literal["embed", "extract"]
R = TypeVar("R")
_SCALARS = (IN_LENGTH, IN_K, IN_SKIP, IN_NBLOCKS)


class BadRequestError(ValueError):
    """A request the model answers with INVALID_ARG."""


@dataclass(frozen=True, eq=False)
class Rows:
    """One request's rows, checked."""

    planes: npt.NDArray[np.uint8]
    keys: npt.NDArray[np.uint8]
    lengths: npt.NDArray[np.int64]
    ks: npt.NDArray[np.int64]
    skips: npt.NDArray[np.int64]
    nblocks: npt.NDArray[np.int64]
    bits: npt.NDArray[np.uint8] | None
    as_map: bool = False
    """The request asked for FLIP_MAP."""
    as_flips: bool = True
    """The request asked for FLIPS (or named no outputs)."""

    def __len__(self) -> int:
        return int(self.lengths.size)


class _NotChosen(NamedTuple):
    """What :attr:`StegoModel.kernel` is until :meth:`StegoModel.initialize` chooses (the
    kernel's module, and numba with it, is imported there, not with this module)."""

    gpu: None = None
    reason: str = "not initialized"
    fallback: bool = False


_NOT_CHOSEN = _NotChosen()


class StegoModel:
    """A stateless stego model: everything a window needs comes with it."""

    kind: Kind

    def __init__(self, pb_utils: ModuleType, kind: Kind) -> None:
        self.pb = pb_utils
        self.kind = kind
        self.name = f"stego_{kind}"
        self._traces: OrderedDict[str, None] = OrderedDict()
        self.threads = usable_cores()
        self._pool: ThreadPoolExecutor | None = None
        self.kernel: KernelChoice | _NotChosen = _NOT_CHOSEN

    # -- Triton's interface ----------------------------------------------------------------

    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        pb = self.pb
        plane_dims = pb.get_input_config_by_name(config, IN_PLANE)["dims"]
        key_dims = pb.get_input_config_by_name(config, IN_KEY)["dims"]
        if int(plane_dims[-1]) != WINDOW_BYTES:
            raise ValueError(f"{IN_PLANE} must have {WINDOW_BYTES} bytes, config says {plane_dims}")
        if int(key_dims[-1]) != KEY_BYTES:
            raise ValueError(f"{IN_KEY} must have {KEY_BYTES} bytes, config says {key_dims}")
        if self.kind == "embed":
            bits_dims = pb.get_input_config_by_name(config, IN_BITS)["dims"]
            if int(bits_dims[-1]) not in (-1, WINDOW_BYTES):
                raise ValueError(
                    f"{IN_BITS} must have -1 (any) or {WINDOW_BYTES} bytes, config says {bits_dims}"
                )
        out = OUT_FLIPS if self.kind == "embed" else OUT_BITS
        self.out_dtype = pb.triton_string_to_numpy(
            pb.get_output_config_by_name(config, out)["data_type"]
        )
        self.batch_size_dtype = pb.triton_string_to_numpy(
            pb.get_output_config_by_name(config, OUT_BATCH_SIZE)["data_type"]
        )
        cap = config.get("parameters", {}).get("threads", {}).get("string_value", "")
        if cap.strip().isdigit() and int(cap) > 0:
            self.threads = min(self.threads, int(cap))
        # Which kernel (CUDA on a usable GPU, else CPU): decided in subtone.stego.kernel.
        from subtone.stego.kernel import choose_kernel, ready_kernel

        kind, device = args.get("model_instance_kind"), args.get("model_instance_device_id")
        self.kernel = ready_kernel(choose_kernel(kind, device))
        log = pb.Logger.log_warn if self.kernel.fallback else pb.Logger.log_info
        log(f"{config.get('name', 'stego')}: {self.kernel.reason}")
        if self.kernel.gpu is not None:
            self.threads = 1  # one call hands the GPU the whole batch
        if self.threads > 1:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix=self.name)

    def execute(self, requests: list[Any]) -> list[Any]:
        pb = self.pb
        parsed: list[Rows | Any] = []
        for request in requests:
            self.note_trace(request)
            try:
                parsed.append(self.parse(request))
            except BadRequestError as e:
                parsed.append(pb.TritonError(str(e), pb.TritonError.INVALID_ARG))
            except Exception as e:  # never raise from execute(): answer this request only
                parsed.append(pb.TritonError(f"bad request: {e}", pb.TritonError.INTERNAL))
        good = [rows for rows in parsed if isinstance(rows, Rows)]
        try:
            results = self.run(good)
        except Exception as e:  # never raise from execute(): fail the batch's good requests
            error = pb.TritonError(f"{self.kind} failed: {e}", pb.TritonError.INTERNAL)
            return [
                pb.InferenceResponse(error=error if isinstance(rows, Rows) else rows)
                for rows in parsed
            ]
        windows = sum(len(rows) for rows in good)
        responses = []
        answers = iter(results)
        for rows in parsed:
            if not isinstance(rows, Rows):
                responses.append(pb.InferenceResponse(error=rows))
                continue
            batch = np.full((len(rows), 1), windows, dtype=self.batch_size_dtype)
            tensors = [pb.Tensor(name, array) for name, array in next(answers)]
            tensors.append(pb.Tensor(OUT_BATCH_SIZE, batch))
            responses.append(pb.InferenceResponse(output_tensors=tensors))
        return responses

    def finalize(self) -> None:
        """The model holds no state: only its threads stop."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    # -- requests --------------------------------------------------------------------------

    def note_trace(self, request: Any) -> None:
        """Log the request's trace id (and job id) the first time this instance sees it."""
        try:
            parameters = json.loads(request.parameters() or "{}")
        except Exception:  # a request without parameters, or an older stub
            return
        trace_id = parameters.get(TRACE_ID_PARAMETER) if isinstance(parameters, dict) else None
        if not isinstance(trace_id, str) or not is_trace_id(trace_id) or trace_id in self._traces:
            return
        self._traces[trace_id] = None
        while len(self._traces) > TRACES_REMEMBERED:
            self._traces.popitem(last=False)
        job_id = str(parameters.get(JOB_ID_PARAMETER, ""))[:_ID_CHARS]
        if not job_id.replace("_", "").isalnum():
            job_id = ""
        self.pb.Logger.log_info(f"{self.name}: trace_id={trace_id} job_id={job_id or '-'}")

    def parse(self, request: Any) -> Rows:
        """One request's rows, checked (:func:`~subtone.stego.engine.check_tasks`)."""

        def get(name: str) -> npt.NDArray[Any]:
            tensor = self.pb.get_input_tensor_by_name(request, name)
            if tensor is None:
                raise BadRequestError(f"input {name} is missing")
            array: npt.NDArray[Any] = tensor.as_numpy()
            return array

        planes = get(IN_PLANE)
        count = planes.shape[0] if planes.ndim else 0
        planes = planes.reshape(count, -1)
        keys = get(IN_KEY).reshape(count, -1)
        scalars = {}
        for name in _SCALARS:
            values = get(name).reshape(-1)
            if values.size != count:
                raise BadRequestError(f"{name} has {values.size} values for {count} windows")
            scalars[name] = values.astype(np.int64)
        bits = get(IN_BITS).reshape(count, -1) if self.kind == "embed" else None
        wanted = _requested_outputs(request)
        try:
            check_tasks(
                np.full(count, planes.shape[1]),
                scalars[IN_LENGTH],
                np.full(count, keys.shape[1]),
                scalars[IN_K],
                scalars[IN_SKIP],
                scalars[IN_NBLOCKS],
                None if bits is None else np.full(count, bits.shape[1]),
            )
        except ValueError as e:
            raise BadRequestError(str(e)) from None
        return Rows(
            planes=np.ascontiguousarray(planes, dtype=np.uint8),
            keys=np.ascontiguousarray(keys, dtype=np.uint8),
            lengths=scalars[IN_LENGTH],
            ks=scalars[IN_K],
            skips=scalars[IN_SKIP],
            nblocks=scalars[IN_NBLOCKS],
            bits=None if bits is None else np.ascontiguousarray(bits, dtype=np.uint8),
            as_map=wanted is not None and OUT_FLIP_MAP in wanted,
            as_flips=wanted is None or OUT_FLIPS in wanted,
        )

    def run(self, batch: list[Rows]) -> list[list[tuple[str, npt.NDArray[Any]]]]:
        """The output tensors of each request, the kernel run once over all their rows."""
        if not batch:
            return []
        from subtone.stego.kernel import (
            embed_flips_batch,
            embed_maps_batch,
            extract_bits_batch,
            flips_of_maps,
        )

        planes = np.concatenate([rows.planes for rows in batch])
        n = planes.shape[0]
        offsets = np.arange(n, dtype=np.int64) * planes.shape[1]
        columns = (
            np.concatenate([rows.keys for rows in batch]),
            np.concatenate([rows.lengths for rows in batch]),
            np.concatenate([rows.ks for rows in batch]),
            np.concatenate([rows.skips for rows in batch]),
            np.concatenate([rows.nblocks for rows in batch]),
        )
        sizes = np.cumsum([len(rows) for rows in batch])[:-1]
        spans = row_spans(n, self.threads)
        if self.kind == "extract":
            ks, nblocks = columns[2], columns[4]
            width = max(1, int(((nblocks * ks + 7) // 8).max()))
            out = np.zeros((n, width), dtype=np.uint8)
            out_starts = np.arange(n, dtype=np.int64) * width * 8

            def extract(a: int, b: int) -> None:
                local = offsets[: b - a]
                keys, lengths, ks, skips, nblocks = (c[a:b] for c in columns)
                extract_bits_batch(planes[a:b].reshape(-1), local, keys, lengths, ks, skips,
                                   nblocks, out[a:b].reshape(-1), out_starts[: b - a],
                                   gpu=self.kernel.gpu)  # fmt: skip

            self._each(extract, spans)
            return [[(OUT_BITS, part.astype(self.out_dtype))] for part in np.split(out, sizes)]
        bits = _merged_bits(batch, n)
        bit_starts = np.arange(n, dtype=np.int64) * bits.shape[1] * 8

        as_map = any(rows.as_map for rows in batch)
        kernel = embed_maps_batch if as_map else embed_flips_batch

        def embed(a: int, b: int) -> tuple[npt.NDArray[Any], npt.NDArray[np.int64]]:
            """Rows ``a:b``: their flips (or, for a batch with a request for maps, their
            bitmaps), and how many each has."""
            local = offsets[: b - a]
            keys, lengths, ks, skips, nblocks = (c[a:b] for c in columns)
            row_bits = bits[a:b].reshape(-1)
            return kernel(planes[a:b].reshape(-1), local, keys, lengths, ks, skips, nblocks,
                          row_bits, bit_starts[: b - a], gpu=self.kernel.gpu)  # fmt: skip

        parts = self._each(embed, spans)
        if not as_map:
            flips = np.concatenate([f for f, _ in parts])
            counts = np.concatenate([c for _, c in parts])
            return self._flip_outputs(flips, counts, sizes)
        maps = np.concatenate([m for m, _ in parts])
        map_counts = np.concatenate([c for _, c in parts])
        results: list[list[tuple[str, npt.NDArray[Any]]]] = []
        for rows, row_maps, row_counts in zip(
            batch, np.split(maps, sizes), np.split(map_counts, sizes), strict=True
        ):
            tensors: list[tuple[str, npt.NDArray[Any]]] = []
            if rows.as_flips:
                # Draining clears the maps: a copy only where they are answered too.
                flips = flips_of_maps(row_maps.copy() if rows.as_map else row_maps, row_counts)
                tensors += self._flip_outputs(flips, row_counts, np.zeros(0, np.int64))[0]
            else:
                tensors.append((OUT_COUNT, row_counts.astype(np.int32).reshape(-1, 1)))
            if rows.as_map:
                tensors.append((OUT_FLIP_MAP, row_maps))
            results.append(tensors)
        return results

    def _flip_outputs(
        self,
        flips: npt.NDArray[np.int32],
        counts: npt.NDArray[np.int64],
        sizes: npt.NDArray[Any],
    ) -> list[list[tuple[str, npt.NDArray[Any]]]]:
        """Each request's FLIPS (padded with :data:`FLIP_PAD`) and COUNT tensors, cut from
        the whole batch's ``flips`` (``counts`` per row, requests split at ``sizes``)."""
        ends = np.cumsum(counts)
        starts = ends - counts
        results: list[list[tuple[str, npt.NDArray[Any]]]] = []
        for row_counts, row_starts in zip(
            np.split(counts, sizes), np.split(starts, sizes), strict=True
        ):
            width = max(1, int(row_counts.max(initial=0)))  # never a zero-size tensor
            out = np.full((row_counts.size, width), FLIP_PAD, dtype=self.out_dtype)
            for i, (count, start) in enumerate(
                zip(row_counts.tolist(), row_starts.tolist(), strict=True)
            ):
                out[i, :count] = flips[start : start + count]
            count_column = row_counts.astype(np.int32).reshape(-1, 1)
            results.append([(OUT_FLIPS, out), (OUT_COUNT, count_column)])
        return results

    def _each(self, work: Callable[[int, int], R], spans: Sequence[tuple[int, int]]) -> list[R]:
        """``work`` over each span of rows, on the pool when there is more than one."""
        if self._pool is None or len(spans) < 2:
            return [work(a, b) for a, b in spans]
        return list(self._pool.map(lambda span: work(*span), spans))


def _requested_outputs(request: Any) -> set[str] | None:
    """The outputs a request asked for; ``None`` where Triton's stub does not say."""
    names = getattr(request, "requested_output_names", None)
    if names is None:
        return None
    try:
        return set(names())
    except Exception:  # an older stub
        return None


def usable_cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _merged_bits(batch: Sequence[Rows], n: int) -> npt.NDArray[np.uint8]:
    """The embed requests' BITS rows in one ``(n, widest)`` array, zero-padded."""
    widest = max(rows.bits.shape[1] for rows in batch if rows.bits is not None)
    bits = np.zeros((n, max(1, widest)), dtype=np.uint8)
    at = 0
    for rows in batch:
        if rows.bits is not None:
            bits[at : at + len(rows), : rows.bits.shape[1]] = rows.bits
        at += len(rows)
    return bits


def row_spans(rows: int, parts: int) -> list[tuple[int, int]]:
    """``rows`` cut into at most ``parts`` contiguous spans of nearly equal size."""
    parts = max(1, min(parts, rows))
    edges = [rows * i // parts for i in range(parts + 1)]
    return [(a, b) for a, b in itertools.pairwise(edges) if b > a]


def model_class(pb_utils: ModuleType, kind: Kind) -> type[StegoModel]:
    """The ``TritonPythonModel`` class of the ``kind`` model, bound to Triton's utilities."""

    class TritonPythonModel(StegoModel):
        def __init__(self) -> None:
            super().__init__(pb_utils, kind)

    TritonPythonModel.__qualname__ = TritonPythonModel.__name__
    return TritonPythonModel
