"""Triton python-backend model ``stego_embed``: carry message bits in PCM windows.

``config.pbtxt`` is the contract. Each row of a request is one window; the rows of every
request in an ``execute()`` call are checked, embedded with :func:`embed_window` and
scattered back, one response per request. A bad request gets an ``INVALID_ARG`` error of its
own and never disturbs the other requests of the batch.

The model imports ``server`` (the kernel, and the checks the in-process engine applies too),
so the stub's Python must have the repository root and numpy on its path. The python-backend
stub embeds an *isolated* interpreter that ignores ``PYTHONPATH``:
``server/integrations/tritonserver.py`` gives it that path through the backend directory it
prepares (see its docstring). A deployment on the stock Triton image has to install
the project (``pip install .``) into that image's Python instead. No fallback here: a server
started without either fails to load this model, loudly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import triton_python_backend_utils as pb_utils

from subtone.stego.engine import check_embed
from subtone.stego.kernel import KEY_BYTES, WINDOW_SAMPLES, embed_window

BITS_PER_BYTE = 8

IN_SAMPLES = "SAMPLES"
IN_LENGTH = "LENGTH"
IN_KEY = "KEY"
IN_K = "K"
IN_SKIP = "SKIP"
IN_NBLOCKS = "NBLOCKS"
IN_BITS = "BITS"
IN_BITS_PER_SAMPLE = "BITS_PER_SAMPLE"
OUT_SAMPLES = "SAMPLES_OUT"
OUT_BATCH_SIZE = "BATCH_SIZE"


class BadRequestError(ValueError):
    """A request the model answers with INVALID_ARG."""


@dataclass(frozen=True)
class Row:
    """One window of one request, checked."""

    samples: npt.NDArray[np.int32]
    key: bytes
    k: int
    skip: int
    bits: npt.NDArray[np.uint8]
    bits_per_sample: int


def _scalar(array: npt.NDArray[Any], row: int) -> int:
    return int(array[row].reshape(-1)[0])


class TritonPythonModel:
    """Stateless: everything a window needs comes with it."""

    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        samples_dims = pb_utils.get_input_config_by_name(config, IN_SAMPLES)["dims"]
        bits_dims = pb_utils.get_input_config_by_name(config, IN_BITS)["dims"]
        key_dims = pb_utils.get_input_config_by_name(config, IN_KEY)["dims"]
        self.window = int(samples_dims[-1])
        self.bits_bytes = int(bits_dims[-1])
        if self.window != WINDOW_SAMPLES or self.bits_bytes * BITS_PER_BYTE != WINDOW_SAMPLES:
            raise ValueError(
                f"{IN_SAMPLES} must have {WINDOW_SAMPLES} samples and {IN_BITS} "
                f"{WINDOW_SAMPLES // BITS_PER_BYTE} bytes, config says {samples_dims} "
                f"and {bits_dims}"
            )
        if int(key_dims[-1]) != KEY_BYTES:
            raise ValueError(f"{IN_KEY} must have {KEY_BYTES} bytes, config says {key_dims}")
        self.samples_dtype = pb_utils.triton_string_to_numpy(
            pb_utils.get_output_config_by_name(config, OUT_SAMPLES)["data_type"]
        )
        self.batch_size_dtype = pb_utils.triton_string_to_numpy(
            pb_utils.get_output_config_by_name(config, OUT_BATCH_SIZE)["data_type"]
        )

    def _rows(self, request: Any) -> list[Row]:
        def get(name: str) -> npt.NDArray[Any]:
            tensor = pb_utils.get_input_tensor_by_name(request, name)
            if tensor is None:
                raise BadRequestError(f"input {name} is missing")
            return tensor.as_numpy()

        samples = get(IN_SAMPLES)
        length = get(IN_LENGTH)
        key = get(IN_KEY)
        k = get(IN_K)
        skip = get(IN_SKIP)
        nblocks = get(IN_NBLOCKS)
        bits = get(IN_BITS)
        bits_per_sample = get(IN_BITS_PER_SAMPLE)
        count = samples.shape[0]
        rows = []
        for i in range(count):
            where = f"window {i}: " if count > 1 else ""
            try:
                rows.append(
                    self._row(
                        samples[i].reshape(-1),
                        _scalar(length, i),
                        key[i].reshape(-1),
                        _scalar(k, i),
                        _scalar(skip, i),
                        _scalar(nblocks, i),
                        bits[i].reshape(-1),
                        _scalar(bits_per_sample, i),
                    )
                )
            except BadRequestError as e:
                raise BadRequestError(f"{where}{e}") from None
        return rows

    def _row(
        self,
        samples: npt.NDArray[np.int32],
        length: int,
        key: npt.NDArray[np.uint8],
        k: int,
        skip: int,
        nblocks: int,
        packed: npt.NDArray[np.uint8],
        bits_per_sample: int,
    ) -> Row:
        if samples.size != self.window or packed.size != self.bits_bytes:
            raise BadRequestError(
                f"a window has {self.window} samples and {self.bits_bytes} bytes of bits"
            )
        if not 0 < length <= self.window:
            raise BadRequestError(f"length must be in 1..{self.window}, got {length}")
        real = samples[:length]
        try:
            check_embed(
                real,
                key.size,
                k=k,
                skip=skip,
                nblocks=nblocks,
                bits=nblocks * k,
                bits_per_sample=bits_per_sample,
            )
        except ValueError as e:
            raise BadRequestError(str(e)) from None
        bits = np.unpackbits(packed)[: nblocks * k]
        return Row(real, key.tobytes(), k, skip, bits, bits_per_sample)

    def execute(self, requests: list[Any]) -> list[Any]:
        parsed: list[list[Row] | Any] = []
        for request in requests:
            try:
                parsed.append(self._rows(request))
            except BadRequestError as e:
                parsed.append(pb_utils.TritonError(str(e), pb_utils.TritonError.INVALID_ARG))
            except Exception as e:  # never raise from execute(): answer this request only
                parsed.append(
                    pb_utils.TritonError(f"bad request: {e}", pb_utils.TritonError.INTERNAL)
                )
        windows = sum(len(rows) for rows in parsed if isinstance(rows, list))
        responses = []
        for rows in parsed:
            if not isinstance(rows, list):
                responses.append(pb_utils.InferenceResponse(error=rows))
                continue
            try:
                out = np.zeros((len(rows), self.window), dtype=self.samples_dtype)
                for i, row in enumerate(rows):
                    out[i, : row.samples.size] = embed_window(
                        row.samples,
                        row.key,
                        k=row.k,
                        skip=row.skip,
                        bits=row.bits,
                        bits_per_sample=row.bits_per_sample,
                    )
                batch = np.full((len(rows), 1), windows, dtype=self.batch_size_dtype)
                responses.append(
                    pb_utils.InferenceResponse(
                        output_tensors=[
                            pb_utils.Tensor(OUT_SAMPLES, out),
                            pb_utils.Tensor(OUT_BATCH_SIZE, batch),
                        ]
                    )
                )
            except ValueError as e:
                error = pb_utils.TritonError(str(e), pb_utils.TritonError.INVALID_ARG)
                responses.append(pb_utils.InferenceResponse(error=error))
            except Exception as e:  # never raise from execute(): answer this request only
                error = pb_utils.TritonError(
                    f"embedding failed: {e}", pb_utils.TritonError.INTERNAL
                )
                responses.append(pb_utils.InferenceResponse(error=error))
        return responses

    def finalize(self) -> None:
        """Nothing to release: the model holds no state."""
