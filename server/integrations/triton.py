"""A :class:`~subtone.stego.engine.WindowEngine` that runs windows on a Triton server.

Each call sends ONE window to the ``stego_embed`` or ``stego_extract`` model over gRPC
(``model_repository/*/config.pbtxt`` is the wire contract). The client is thread-safe: the
codec runs several windows at once from a thread pool, and Triton's dynamic batcher puts the
windows of concurrent calls (from this job and others) into one ``execute()``.

Errors are the project's: :class:`TritonUnavailable` (503, transient: the server is down or
unreachable, the call ran past its deadline, the model is not loaded or not ready; the worker
retries) and :class:`TritonRequestError` (500: the model rejected the window, which is a bug
in the caller, or failed on it). Windows are checked by the model, with the same rules as
:class:`~subtone.stego.engine.InProcessEngine` (:func:`~subtone.stego.engine.check_embed`);
only what the wire format cannot carry (a window that is not one-dimensional, bits that are
not whole blocks) raises :class:`ValueError` here, as the in-process engine does.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from subtone.errors import SubtoneError
from subtone.stego.engine import EmbedWindow, ExtractWindow
from subtone.stego.kernel import WINDOW_SAMPLES

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "EMBED_MODEL",
    "EXTRACT_MODEL",
    "Reply",
    "TritonEngine",
    "TritonModelCrashed",
    "TritonRequestError",
    "TritonUnavailable",
]

log = logging.getLogger(__name__)

EMBED_MODEL = "stego_embed"
EXTRACT_MODEL = "stego_extract"
DEFAULT_TIMEOUT_SECONDS = 30.0

BITS_PER_BYTE = 8
PACKED_BITS_BYTES = WINDOW_SAMPLES // BITS_PER_BYTE
"""Bytes of the ``BITS`` / ``BITS_OUT`` tensors: one bit per sample of a full window."""

IN_SAMPLES = "SAMPLES"
IN_LENGTH = "LENGTH"
IN_KEY = "KEY"
IN_K = "K"
IN_SKIP = "SKIP"
IN_NBLOCKS = "NBLOCKS"
IN_BITS = "BITS"
IN_BITS_PER_SAMPLE = "BITS_PER_SAMPLE"
OUT_SAMPLES = "SAMPLES_OUT"
OUT_BITS = "BITS_OUT"
OUT_BATCH_SIZE = "BATCH_SIZE"

TRITON_INT32 = "INT32"
TRITON_UINT8 = "UINT8"

_STUB_DEAD = "is not healthy"
"""How Triton's python backend reports a model whose stub process died."""
RELOAD_DEBOUNCE_SECONDS = 2.0
"""Windows failing within this of a reload saw the same crash: no second reload."""

TRANSIENT_STATUSES = frozenset(
    {
        "StatusCode.UNAVAILABLE",  # connection refused or lost, server shutting down
        "StatusCode.DEADLINE_EXCEEDED",  # client_timeout ran out
        "StatusCode.NOT_FOUND",  # model not loaded (yet)
        "StatusCode.RESOURCE_EXHAUSTED",
        "StatusCode.ABORTED",
        "StatusCode.CANCELLED",
    }
)
"""gRPC statuses that mean "try again later" rather than "this window is wrong"."""


class TritonUnavailable(SubtoneError):
    """Triton cannot serve now: down, too slow, or the model is not ready. Transient."""

    code = "triton_unavailable"
    status = 503


class TritonModelCrashed(TritonUnavailable):
    """A model's python-backend stub died (a window crashed it). Triton does not restart a
    dead stub by itself, and keeps answering healthy; the engine reloads the model, and
    the job is retried like any other Triton outage."""

    code = "model_crashed"


class TritonRequestError(SubtoneError):
    """Triton answered with an error for this window (``INVALID_ARG`` or a model failure)."""

    code = "triton_rejected"
    status = 500

    def __init__(self, message: str, *, grpc_status: str | None = None) -> None:
        super().__init__(message)
        self.grpc_status = grpc_status


@dataclass(frozen=True, eq=False)
class Reply:
    """A model's answer for one window, with how many windows its ``execute()`` served."""

    data: npt.NDArray[Any]
    batch_size: int


def _tensor(name: str, array: npt.NDArray[Any], datatype: str) -> grpcclient.InferInput:
    tensor = grpcclient.InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array)
    return tensor


def _scalar(name: str, value: int) -> grpcclient.InferInput:
    return _tensor(name, np.array([[value]], dtype=np.int32), TRITON_INT32)


def _padded_samples(samples: npt.NDArray[Any]) -> npt.NDArray[np.int32]:
    array = np.asarray(samples, dtype=np.int32)
    if array.ndim != 1:
        raise ValueError(f"a window's samples are one-dimensional, got shape {array.shape}")
    # A window longer than WINDOW_SAMPLES goes as it is: Triton rejects its shape.
    padded = np.zeros((1, max(WINDOW_SAMPLES, array.size)), dtype=np.int32)
    padded[0, : array.size] = array
    return padded


def _key(key: bytes) -> npt.NDArray[np.uint8]:
    return np.frombuffer(bytes(key), dtype=np.uint8).reshape(1, -1)


class TritonEngine:
    """Embeds and extracts one window per call on a Triton server (gRPC); thread-safe."""

    def __init__(
        self,
        url: str,
        *,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        embed_model: str = EMBED_MODEL,
        extract_model: str = EXTRACT_MODEL,
        model_version: str = "",
    ) -> None:
        """``url`` is gRPC's ``host:port``; ``timeout_seconds`` bounds every call end to end."""
        if timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be positive, got {timeout_seconds}")
        self.url = url
        self.timeout_seconds = timeout_seconds
        self.embed_model = embed_model
        self.extract_model = extract_model
        self.model_version = model_version
        self._closed = False
        self._reload_lock = threading.Lock()
        self._reloaded: dict[str, float] = {}
        try:
            self._client = grpcclient.InferenceServerClient(url=url)
        except InferenceServerException as e:
            raise TritonUnavailable(f"Cannot reach Triton at {url}: {e.message()}") from e

    # -- errors ----------------------------------------------------------------------------

    def _error(self, e: InferenceServerException, what: str, model: str) -> SubtoneError:
        status = e.status() or ""
        detail = e.message() or str(e)
        if _STUB_DEAD in detail:
            self._reload(model)
            return TritonModelCrashed(
                f"Triton's model {model!r} crashed while it tried to {what}; it was reloaded."
            )
        if status in TRANSIENT_STATUSES:
            return TritonUnavailable(f"Triton at {self.url} could not {what}: {detail} ({status})")
        return TritonRequestError(
            f"Triton at {self.url} refused to {what}: {detail} ({status or 'no status'})",
            grpc_status=status or None,
        )

    def _infer(
        self, model: str, inputs: list[grpcclient.InferInput], outputs: tuple[str, ...], what: str
    ) -> grpcclient.InferResult:
        if self._closed:
            raise RuntimeError("this TritonEngine is closed")
        try:
            return self._client.infer(
                model,
                inputs,
                model_version=self.model_version,
                outputs=[grpcclient.InferRequestedOutput(name) for name in outputs],
                client_timeout=self.timeout_seconds,
            )
        except InferenceServerException as e:
            raise self._error(e, what, model) from e

    def _reload(self, model: str) -> None:
        """Unload and load ``model`` again, which starts new stubs: once per crash, however
        many windows in flight saw it (needs ``--model-control-mode=explicit``)."""
        with self._reload_lock:
            if time.monotonic() - self._reloaded.get(model, -math.inf) < RELOAD_DEBOUNCE_SECONDS:
                return
            log.error("Triton's model %s crashed (its stub died): reloading it", model)
            try:
                self._client.unload_model(model, client_timeout=self.timeout_seconds)
                self._client.load_model(model, client_timeout=self.timeout_seconds)
            except InferenceServerException as e:
                log.error(
                    "could not reload %s (%s): restart Triton, and run it with "
                    "--model-control-mode=explicit --load-model=* so that it can be reloaded",
                    model,
                    e.message(),
                )
            self._reloaded[model] = time.monotonic()

    # -- WindowEngine ----------------------------------------------------------------------

    def embed_reply(self, window: EmbedWindow) -> Reply:
        """:meth:`embed`, with the batch size the model reports."""
        samples = _padded_samples(window.samples)
        bits = np.asarray(window.bits, dtype=np.uint8).reshape(-1)
        if window.k > 0 and bits.size % window.k:
            raise ValueError(f"{bits.size} bits is not a whole number of {window.k}-bit blocks")
        packed = np.packbits(bits)
        # More bits than a window can carry go as they are: Triton rejects the shape.
        packed_row = np.zeros((1, max(PACKED_BITS_BYTES, packed.size)), dtype=np.uint8)
        packed_row[0, : packed.size] = packed
        length = np.asarray(window.samples).size
        inputs = [
            _tensor(IN_SAMPLES, samples, TRITON_INT32),
            _scalar(IN_LENGTH, length),
            _tensor(IN_KEY, _key(window.key), TRITON_UINT8),
            _scalar(IN_K, window.k),
            _scalar(IN_SKIP, window.skip),
            _scalar(IN_NBLOCKS, window.nblocks),
            _tensor(IN_BITS, packed_row, TRITON_UINT8),
            _scalar(IN_BITS_PER_SAMPLE, window.bits_per_sample),
        ]
        result = self._infer(
            self.embed_model, inputs, (OUT_SAMPLES, OUT_BATCH_SIZE), "embed a window"
        )
        out = result.as_numpy(OUT_SAMPLES)
        batch = result.as_numpy(OUT_BATCH_SIZE)
        if out is None or batch is None:
            raise TritonRequestError(f"Triton at {self.url} answered without {OUT_SAMPLES}")
        data = np.array(out[0, :length], dtype=np.int32, copy=True)
        return Reply(data=data, batch_size=int(batch.reshape(-1)[0]))

    def extract_reply(self, window: ExtractWindow) -> Reply:
        """:meth:`extract`, with the batch size the model reports."""
        samples = _padded_samples(window.samples)
        inputs = [
            _tensor(IN_SAMPLES, samples, TRITON_INT32),
            _scalar(IN_LENGTH, np.asarray(window.samples).size),
            _tensor(IN_KEY, _key(window.key), TRITON_UINT8),
            _scalar(IN_K, window.k),
            _scalar(IN_SKIP, window.skip),
            _scalar(IN_NBLOCKS, window.nblocks),
        ]
        result = self._infer(
            self.extract_model, inputs, (OUT_BITS, OUT_BATCH_SIZE), "extract from a window"
        )
        packed = result.as_numpy(OUT_BITS)
        batch = result.as_numpy(OUT_BATCH_SIZE)
        if packed is None or batch is None:
            raise TritonRequestError(f"Triton at {self.url} answered without {OUT_BITS}")
        bits = np.unpackbits(packed[0].astype(np.uint8))[: window.nblocks * window.k]
        return Reply(data=bits, batch_size=int(batch.reshape(-1)[0]))

    def embed(self, window: EmbedWindow) -> npt.NDArray[np.int32]:
        """The window's samples carrying its bits (same length as ``window.samples``)."""
        data: npt.NDArray[np.int32] = self.embed_reply(window).data
        return data

    def extract(self, window: ExtractWindow) -> npt.NDArray[np.uint8]:
        """The ``nblocks * k`` bits (0/1 values) the window carries."""
        data: npt.NDArray[np.uint8] = self.extract_reply(window).data
        return data

    def ready(self) -> None:
        """Return if the server and both models are ready; raise :class:`TritonUnavailable`."""
        try:
            if not self._client.is_server_ready(client_timeout=self.timeout_seconds):
                raise TritonUnavailable(f"Triton at {self.url} is not ready")
            for model in (self.embed_model, self.extract_model):
                if not self._client.is_model_ready(
                    model, self.model_version, client_timeout=self.timeout_seconds
                ):
                    raise TritonUnavailable(
                        f"Triton at {self.url} has no ready version of model {model!r}"
                    )
        except InferenceServerException as e:
            raise TritonUnavailable(
                f"Triton at {self.url} is not reachable: {e.message()} ({e.status()})"
            ) from e

    def close(self) -> None:
        """Close the gRPC channel (idempotent)."""
        if not self._closed:
            self._closed = True
            self._client.close()

    def __enter__(self) -> TritonEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
