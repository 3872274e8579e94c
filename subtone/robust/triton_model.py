"""The body of the Triton python-backend models ``stego_robust_embed`` and
``stego_robust_extract``.

Each ``model_repository/<model>/1/model.py`` is three lines: it hands Triton's
``triton_python_backend_utils`` module to :func:`model_class`. Everything else is here,
importable and testable without Triton.

``config.pbtxt`` is the wire contract. One request is one cover (``max_batch_size: 0``: marking
spends one SNR budget over the whole cover, and reading synchronises on the whole file, so the
unit of work is the cover's working mix, not a window; docs/robust.md says why and what a
windowed version would need):

============ ======= ====== =============================================================
name         type    dims   meaning
============ ======= ====== =============================================================
MIX          FP32    [-1]   the cover's working mix (16 kHz mono,
                            :func:`subtone.robust.core.working_mix`)
KEY          UINT8   [32]   ``k_pos``
PAYLOAD      UINT8   [-1]   (embed) the sealed payload to mark; (extract, out) the payload
                            found, one zero byte when none was
RESIDUAL     FP16    [-1]   (embed, out) what marking adds to the mix, from START on
                            (one zero when CODE is set)
START        INT64   [1]    (embed, out) the mix sample RESIDUAL starts at
CODE         BYTES   [1]    (out) empty on success, else the stable error code: embed
                            ``capacity_exceeded``, ``unsuitable_cover``; extract
                            ``no_payload``, ``channel_damaged``
MESSAGE      BYTES   [1]    (out) the human message of CODE
============ ======= ====== =============================================================

What a person can cause (a payload that does not fit, a cover that does not hold the marks, a
wrong key, a destroyed mark) is an answer with CODE set; a mix that is not float32 (or holds
NaN) or a
key of the wrong length is ``INVALID_ARG`` for that request alone.
Requests are served one after the other in one ``execute()``; each gets exactly one response.

On a ``KIND_GPU`` instance the same numpy/scipy code runs on the host CPU: there is no GPU
implementation (yet); the instance logs that once at start.
"""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from subtone.errors import SubtoneError
from subtone.robust.core import (
    KEY_BYTES,
    CapacityExceeded,
    ChannelDamaged,
    NoPayload,
    RobustError,
    UnsuitableCover,
)
from subtone.robust.embedding import embed_mix
from subtone.robust.extraction import extract_mix

__all__ = [
    "IN_KEY",
    "IN_MIX",
    "IN_PAYLOAD",
    "OUT_CODE",
    "OUT_MESSAGE",
    "OUT_PAYLOAD",
    "OUT_RESIDUAL",
    "OUT_START",
    "RobustModel",
    "model_class",
]

IN_MIX = "MIX"
IN_KEY = "KEY"
IN_PAYLOAD = "PAYLOAD"
OUT_RESIDUAL = "RESIDUAL"
OUT_START = "START"
OUT_PAYLOAD = "PAYLOAD"
OUT_CODE = "CODE"
OUT_MESSAGE = "MESSAGE"

Kind = Literal["embed", "extract"]


class BadRequestError(ValueError):
    """A request the model answers with INVALID_ARG."""


class RobustModel:
    """A stateless robust model: everything a cover needs comes with its request."""

    def __init__(self, pb_utils: ModuleType, kind: Kind) -> None:
        self.pb = pb_utils
        self.kind = kind
        self.name = f"stego_robust_{kind}"

    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        pb = self.pb
        key_dims = pb.get_input_config_by_name(config, IN_KEY)["dims"]
        if int(key_dims[-1]) != KEY_BYTES:
            raise ValueError(f"{IN_KEY} must have {KEY_BYTES} bytes, config says {key_dims}")
        if int(config.get("max_batch_size", 0)) != 0:
            raise ValueError(f"{self.name} takes one cover a request: max_batch_size must be 0")
        if args.get("model_instance_kind") == "GPU":
            pb.Logger.log_warn(
                f"{self.name}: no GPU implementation; this KIND_GPU instance runs on the CPU"
            )

    def execute(self, requests: list[Any]) -> list[Any]:
        pb = self.pb
        responses = []
        for request in requests:
            try:
                tensors = self.answer(request)
            except BadRequestError as e:
                error = pb.TritonError(str(e), pb.TritonError.INVALID_ARG)
                responses.append(pb.InferenceResponse(error=error))
            except Exception as e:  # never raise from execute(): answer this request only
                error = pb.TritonError(f"{self.kind} failed: {e}", pb.TritonError.INTERNAL)
                responses.append(pb.InferenceResponse(error=error))
            else:
                outputs = [pb.Tensor(name, array) for name, array in tensors]
                responses.append(pb.InferenceResponse(output_tensors=outputs))
        return responses

    def finalize(self) -> None:
        """Nothing to release: the model holds no state."""

    # -- one request -----------------------------------------------------------------------

    def _get(self, request: Any, name: str) -> npt.NDArray[Any]:
        tensor = self.pb.get_input_tensor_by_name(request, name)
        if tensor is None:
            raise BadRequestError(f"input {name} is missing")
        array: npt.NDArray[Any] = tensor.as_numpy()
        return array

    def answer(self, request: Any) -> list[tuple[str, npt.NDArray[Any]]]:
        """The output tensors for one request (:class:`BadRequestError` for a bad one)."""
        mix = self._get(request, IN_MIX).reshape(-1)
        key = self._get(request, IN_KEY).reshape(-1)
        if mix.dtype != np.float32:
            raise BadRequestError(f"{IN_MIX} must be FP32, got {mix.dtype}")
        if key.size != KEY_BYTES:
            raise BadRequestError(f"{IN_KEY} must have {KEY_BYTES} bytes, got {key.size}")
        k_pos = key.astype(np.uint8).tobytes()
        if self.kind == "embed":
            payload = self._get(request, IN_PAYLOAD).reshape(-1).astype(np.uint8).tobytes()
            try:
                residual = embed_mix(np.ascontiguousarray(mix), k_pos, payload)
            except (CapacityExceeded, UnsuitableCover) as e:
                return [
                    (OUT_RESIDUAL, np.zeros(1, dtype=np.float16)),
                    (OUT_START, np.zeros(1, dtype=np.int64)),
                    *self._status(e),
                ]
            except RobustError as e:
                raise BadRequestError(str(e)) from None
            samples = residual.samples if residual.samples.size else np.zeros(1, np.float16)
            return [
                (OUT_RESIDUAL, samples.astype(np.float16)),
                (OUT_START, np.array([residual.start], dtype=np.int64)),
                *self._status(None),
            ]
        try:
            found = extract_mix(np.ascontiguousarray(mix), k_pos)
        except (NoPayload, ChannelDamaged) as e:
            return [(OUT_PAYLOAD, np.zeros(1, dtype=np.uint8)), *self._status(e)]
        except RobustError as e:
            raise BadRequestError(str(e)) from None
        payload_out = np.frombuffer(found, dtype=np.uint8).copy()
        return [(OUT_PAYLOAD, payload_out), *self._status(None)]

    @staticmethod
    def _status(error: SubtoneError | None) -> list[tuple[str, npt.NDArray[Any]]]:
        code = error.code if error is not None else ""
        message = error.message if error is not None else ""
        return [
            (OUT_CODE, np.array([code.encode()], dtype=np.object_)),
            (OUT_MESSAGE, np.array([message.encode()], dtype=np.object_)),
        ]


def model_class(pb_utils: ModuleType, kind: Kind) -> type[RobustModel]:
    """The ``TritonPythonModel`` class of the ``kind`` robust model, bound to Triton's
    utilities."""

    class TritonPythonModel(RobustModel):
        def __init__(self) -> None:
            super().__init__(pb_utils, kind)

    TritonPythonModel.__qualname__ = TritonPythonModel.__name__
    return TritonPythonModel
