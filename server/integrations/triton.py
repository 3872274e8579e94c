"""A :class:`~subtone.stego.engine.WindowEngine` (and a :class:`~subtone.robust.engine.
RobustEngine`) that runs on a Triton server.

Each call sends a batch of windows' tasks (LSB planes, keys, parameters; never audio) to the
``stego_embed`` or ``stego_extract`` model over gRPC, as one request of up to
:data:`MAX_ROWS` rows (``model_repository/*/config.pbtxt`` is the wire contract,
:mod:`subtone.stego.triton_model` the model). The client is thread-safe: the codec runs
several batches at once from a thread pool, and Triton's dynamic batcher puts the rows of
concurrent calls (from this job and others) into one ``execute()``.

A robust-mode call (:meth:`TritonEngine.robust_embed`, :meth:`TritonEngine.robust_extract`)
sends one cover's working mix (16 kHz mono) to ``stego_robust_embed`` or
``stego_robust_extract`` (:mod:`subtone.robust.triton_model`) as one request, under its own
deadline (``robust_timeout_seconds``): the unit of robust work is a whole cover.

Errors are the project's: :class:`TritonUnavailable` (503, transient: the server is down or
unreachable, the call ran past its deadline, the model is not loaded or not ready; the worker
retries) and :class:`TritonRequestError` (500: the model rejected the window, which is a bug
in the caller, or failed on it). Windows are checked by the model, with the same rules as
:class:`~subtone.stego.engine.InProcessEngine` (:func:`~subtone.stego.engine.check_tasks`);
only what the wire format cannot carry (a plane or bits longer than a window's) raises
:class:`ValueError` here.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from server.integrations.triton_wire import (
    TRITON_UINT8,
    byte_rows,
    first_text,
    robust_inputs,
    tensor,
    window_inputs,
)
from server.kit import logs
from subtone.errors import CapacityExceeded, ChannelDamaged, NoPayload, SubtoneError
from subtone.robust.wire import Mix, Residual
from subtone.stego.engine import (
    EmbedTask,
    ExtractTask,
    FlipMap,
    Flips,
    answered_as_maps,
    plane_bytes,
)
from subtone.stego.triton_model import (
    IN_BITS,
    OUT_BATCH_SIZE,
    OUT_BITS,
    OUT_COUNT,
    OUT_FLIP_MAP,
    OUT_FLIPS,
)
from subtone.tracing import JOB_ID_PARAMETER, TRACE_ID_PARAMETER

__all__ = [
    "DEFAULT_TIMEOUT_SECONDS",
    "EMBED_MODEL",
    "EXTRACT_MODEL",
    "MAX_ROWS",
    "ROBUST_EMBED_MODEL",
    "ROBUST_EXTRACT_MODEL",
    "Reply",
    "RequestObserver",
    "TritonEngine",
    "TritonModelCrashed",
    "TritonRequestError",
    "TritonUnavailable",
]

log = logging.getLogger(__name__)

EMBED_MODEL = "stego_embed"
EXTRACT_MODEL = "stego_extract"
ROBUST_EMBED_MODEL = "stego_robust_embed"
ROBUST_EXTRACT_MODEL = "stego_robust_extract"
DEFAULT_TIMEOUT_SECONDS = 30.0
DEFAULT_ROBUST_TIMEOUT_SECONDS = 300.0
"""A robust call is one whole cover (seconds per minute of cover), not one window."""

MAX_ROWS = 64
"""Windows per request at most: the models' ``max_batch_size``."""


def _robust_errors() -> dict[str, type[SubtoneError]]:
    """The stable codes a robust model answers with, as the errors they are.

    The robust mode's modules (here and in the robust methods) are imported when a robust
    call is made: they load scipy (some 60 MB), which a worker running LSB jobs never needs.
    """
    from subtone.robust.core import UNSUITABLE_COVER, UnsuitableCover

    return {
        NoPayload.code: NoPayload,
        ChannelDamaged.code: ChannelDamaged,
        CapacityExceeded.code: CapacityExceeded,
        UNSUITABLE_COVER: UnsuitableCover,
    }


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
CLOSED_CHANNEL: Final = ("closed channel", "Channel closed")
"""In grpc's ``ValueError`` for a call on a channel that was closed: "Cannot invoke RPC on
closed channel!" when it was closed before the call, "Cannot invoke RPC: Channel closed!" when
it was closed as the call started."""
RECONNECT_STATUSES = frozenset({"StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED"})
"""After these the channel is replaced: a gRPC channel that lost its server waits out a
growing back-off (up to minutes) before it tries again, long after Triton is back."""
CHANNEL_ARGS: Final = [
    ("grpc.max_send_message_length", 2**31 - 1),
    ("grpc.max_receive_message_length", 2**31 - 1),
    ("grpc.keepalive_time_ms", 2**31 - 1),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", False),
    ("grpc.http2.max_pings_without_data", 2),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1_000),
]
"""tritonclient's defaults, with a reconnect back-off of at most a second."""


RequestObserver = Callable[[str, float, "int | None"], None]
"""Told of each inference request: the model, its seconds, its batch's windows (or None)."""


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
    """A model's answer for one request: one result per task, and how many windows the
    ``execute()`` that served it ran."""

    data: list[Any]  # embed: Flips; extract: packed bits (uint8)
    batch_size: int


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
        max_rows: int = MAX_ROWS,
        on_request: RequestObserver | None = None,
        robust_timeout_seconds: float = DEFAULT_ROBUST_TIMEOUT_SECONDS,
        robust_embed_model: str = ROBUST_EMBED_MODEL,
        robust_extract_model: str = ROBUST_EXTRACT_MODEL,
    ) -> None:
        """``url`` is gRPC's ``host:port``; ``timeout_seconds`` bounds every call end to end;
        ``max_rows`` windows go in one request at most (the models' ``max_batch_size``);
        ``robust_timeout_seconds`` bounds a robust call (one whole cover);
        ``on_request(model, seconds, batch_windows)`` is told of every inference request
        (``batch_windows`` ``None`` when it failed).

        Every request carries the trace id and the job id of the log context it is sent from
        (:mod:`server.kit.logs`) as the request parameters :data:`TRACE_ID_PARAMETER` and
        :data:`JOB_ID_PARAMETER`, and the trace id as its request id."""
        if timeout_seconds <= 0:
            raise ValueError(f"timeout_seconds must be positive, got {timeout_seconds}")
        if max_rows <= 0:
            raise ValueError(f"max_rows must be positive, got {max_rows}")
        self.max_rows = max_rows
        self.url = url
        self.timeout_seconds = timeout_seconds
        self.embed_model = embed_model
        self.extract_model = extract_model
        self.model_version = model_version
        self.robust_timeout_seconds = robust_timeout_seconds
        self.robust_embed_model = robust_embed_model
        self.robust_extract_model = robust_extract_model
        self._on_request = on_request
        self._closed = False
        self._reload_lock = threading.Lock()
        self._reloaded: dict[str, float] = {}
        self._channel_lock = threading.Lock()
        self._generation = 0
        self._client = self._connect()

    def _connect(self) -> grpcclient.InferenceServerClient:
        try:
            return grpcclient.InferenceServerClient(url=self.url, channel_args=CHANNEL_ARGS)
        except InferenceServerException as e:
            raise TritonUnavailable(f"Cannot reach Triton at {self.url}: {e.message()}") from e

    def _current(self) -> tuple[int, grpcclient.InferenceServerClient]:
        with self._channel_lock:
            return self._generation, self._client

    def _reconnect(self, generation: int) -> None:
        """Replace the channel that failed (once, however many calls saw it fail): the next
        call connects at once instead of after the old channel's back-off."""
        with self._channel_lock:
            if generation != self._generation or self._closed:
                return
            old, self._client = self._client, self._connect()
            self._generation += 1
        log.info("Triton at %s unreachable: the next call opens a new connection", self.url)
        old.close()

    # -- errors ----------------------------------------------------------------------------

    def _error(
        self, e: InferenceServerException, what: str, model: str, generation: int
    ) -> SubtoneError:
        status = e.status() or ""
        detail = e.message() or str(e)
        if status in RECONNECT_STATUSES:
            self._reconnect(generation)
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
        self,
        model: str,
        inputs: list[grpcclient.InferInput],
        outputs: tuple[str, ...],
        what: str,
        *,
        timeout_seconds: float | None = None,
    ) -> tuple[grpcclient.InferResult, float]:
        """The model's answer, and when the request was sent (``time.perf_counter()``)."""
        if self._closed:
            raise RuntimeError("this TritonEngine is closed")
        generation, client = self._current()
        context = logs.current()
        parameters = {
            name: value
            for name, value in (
                (TRACE_ID_PARAMETER, context.trace_id),
                (JOB_ID_PARAMETER, context.job_id),
            )
            if value
        }
        start = time.perf_counter()
        try:
            result = client.infer(
                model,
                inputs,
                model_version=self.model_version,
                outputs=[grpcclient.InferRequestedOutput(name) for name in outputs],
                client_timeout=timeout_seconds or self.timeout_seconds,
                request_id=context.trace_id or "",
                parameters=parameters or None,
            )
        except InferenceServerException as e:
            self._observe(model, start, None)
            raise self._error(e, what, model, generation) from e
        except ValueError as e:
            self._observe(model, start, None)
            raise self._replaced(e, what) from e
        return result, start

    def _replaced(self, e: ValueError, what: str) -> Exception:
        """grpc's ``ValueError`` for a call on a closed channel: another call that failed
        replaced this one's channel (:meth:`_reconnect`) just before it started. That is
        Triton being unreachable, to retry like any other; was an ``internal_error``."""
        if not any(marker in str(e) for marker in CLOSED_CHANNEL):
            return e
        if self._closed:
            return RuntimeError("this TritonEngine is closed")
        return TritonUnavailable(
            f"Triton at {self.url} could not {what}: its connection had just failed and was "
            "replaced"
        )

    def _observe(self, model: str, start: float, batch_windows: int | None) -> None:
        if self._on_request is not None:
            self._on_request(model, time.perf_counter() - start, batch_windows)

    def _reload(self, model: str) -> None:
        """Unload and load ``model`` again, which starts new stubs: once per crash, however
        many windows in flight saw it (needs ``--model-control-mode=explicit``)."""
        with self._reload_lock:
            if time.monotonic() - self._reloaded.get(model, -math.inf) < RELOAD_DEBOUNCE_SECONDS:
                return
            log.error("Triton's model %s crashed (its stub died): reloading it", model)
            try:
                _, client = self._current()
                client.unload_model(model, client_timeout=self.timeout_seconds)
                client.load_model(model, client_timeout=self.timeout_seconds)
            except InferenceServerException as e:
                log.error(
                    "could not reload %s (%s): restart Triton, and run it with "
                    "--model-control-mode=explicit --load-model=* so that it can be reloaded",
                    model,
                    e.message(),
                )
            self._reloaded[model] = time.monotonic()

    # -- WindowEngine ----------------------------------------------------------------------

    def embed_reply(self, tasks: Sequence[EmbedTask]) -> Reply:
        """:meth:`embed` as ONE request (at most :data:`MAX_ROWS` tasks), with the batch size
        the model reports. Dense tasks (:func:`~subtone.stego.engine.answered_as_maps`) ask for
        their flips as bitmaps (``FLIP_MAP``: a bit a sample, less than their indices)."""
        inputs = window_inputs(tasks)
        bits = byte_rows([t.bits for t in tasks], "bits", fit=True)
        inputs.append(tensor(IN_BITS, bits, TRITON_UINT8))
        what = f"embed in {len(tasks)} window(s)"
        as_map = answered_as_maps(tasks)
        flips_out = OUT_FLIP_MAP if as_map else OUT_FLIPS
        outputs = (flips_out, OUT_COUNT, OUT_BATCH_SIZE)
        result, start = self._infer(self.embed_model, inputs, outputs, what)
        flips = result.as_numpy(flips_out)
        counts = result.as_numpy(OUT_COUNT)
        batch = result.as_numpy(OUT_BATCH_SIZE)
        if flips is None or counts is None or batch is None:
            raise TritonRequestError(f"Triton at {self.url} answered without {flips_out}")
        n = [int(counts[i].reshape(-1)[0]) for i in range(len(tasks))]
        data: list[Flips]
        if as_map:
            data = [
                FlipMap(np.array(flips[i, : plane_bytes(t.length)], copy=True), n[i])
                for i, t in enumerate(tasks)
            ]
        else:
            data = [
                np.array(flips[i, : n[i]], dtype=np.int32, copy=True) for i in range(len(tasks))
            ]
        reply = Reply(data=data, batch_size=int(batch.reshape(-1)[0]))
        self._observe(self.embed_model, start, reply.batch_size)
        return reply

    def extract_reply(self, tasks: Sequence[ExtractTask]) -> Reply:
        """:meth:`extract` as ONE request (at most :data:`MAX_ROWS` tasks), with the batch
        size the model reports."""
        what = f"extract from {len(tasks)} window(s)"
        outputs = (OUT_BITS, OUT_BATCH_SIZE)
        result, start = self._infer(self.extract_model, window_inputs(tasks), outputs, what)
        packed = result.as_numpy(OUT_BITS)
        batch = result.as_numpy(OUT_BATCH_SIZE)
        if packed is None or batch is None:
            raise TritonRequestError(f"Triton at {self.url} answered without {OUT_BITS}")
        data = [
            np.array(packed[i, : plane_bytes(t.nblocks * t.k)], dtype=np.uint8, copy=True)
            for i, t in enumerate(tasks)
        ]
        reply = Reply(data=data, batch_size=int(batch.reshape(-1)[0]))
        self._observe(self.extract_model, start, reply.batch_size)
        return reply

    def embed(self, tasks: Sequence[EmbedTask]) -> list[Flips]:
        """For each task, the samples to flip (window-relative, ascending; a dense task's as
        a :class:`~subtone.stego.engine.FlipMap`)."""
        out: list[Flips] = []
        for at in range(0, len(tasks), self.max_rows):
            out += self.embed_reply(tasks[at : at + self.max_rows]).data
        return out

    def extract(self, tasks: Sequence[ExtractTask]) -> list[npt.NDArray[np.uint8]]:
        """For each task, its ``nblocks * k`` bits, packed most significant first."""
        out: list[npt.NDArray[np.uint8]] = []
        for at in range(0, len(tasks), self.max_rows):
            out += self.extract_reply(tasks[at : at + self.max_rows]).data
        return out

    # -- RobustEngine ----------------------------------------------------------------------

    def robust_embed(self, mix: Mix, k_pos: bytes, payload: bytes) -> Residual:
        """What marking ``payload`` under ``k_pos`` adds to the working mix ``mix`` (one
        request: the whole cover)."""
        from subtone.robust import triton_model as robust_model

        inputs = [
            *robust_inputs(mix, k_pos),
            tensor(robust_model.IN_PAYLOAD, np.frombuffer(payload, dtype=np.uint8), TRITON_UINT8),
        ]
        outputs = (
            robust_model.OUT_RESIDUAL,
            robust_model.OUT_START,
            robust_model.OUT_CODE,
            robust_model.OUT_MESSAGE,
        )
        what = f"mark {len(payload)} bytes into a {len(mix) / 16_000:.0f} s cover"
        model = self.robust_embed_model
        result, start = self._infer(
            model, inputs, outputs, what, timeout_seconds=self.robust_timeout_seconds
        )
        samples = result.as_numpy(robust_model.OUT_RESIDUAL)
        first = result.as_numpy(robust_model.OUT_START)
        if samples is None or first is None:
            raise TritonRequestError(f"Triton at {self.url} answered without a residual")
        self._observe(model, start, 1)
        self._raise_status(result)
        residual = np.array(samples.reshape(-1), dtype=np.float16, copy=True)
        return Residual(int(first.reshape(-1)[0]), residual, len(mix))

    def robust_extract(self, mix: Mix, k_pos: bytes) -> bytes:
        """The payload marked under ``k_pos`` in the working mix ``mix``; raises
        :class:`~subtone.errors.NoPayload` or :class:`~subtone.errors.ChannelDamaged` as the
        model found."""
        from subtone.robust import triton_model as robust_model

        outputs = (robust_model.OUT_PAYLOAD, robust_model.OUT_CODE, robust_model.OUT_MESSAGE)
        what = f"read a {len(mix) / 16_000:.0f} s file"
        model = self.robust_extract_model
        result, start = self._infer(
            model,
            robust_inputs(mix, k_pos),
            outputs,
            what,
            timeout_seconds=self.robust_timeout_seconds,
        )
        payload = result.as_numpy(robust_model.OUT_PAYLOAD)
        if payload is None:
            raise TritonRequestError(f"Triton at {self.url} answered without a payload")
        self._observe(model, start, 1)
        self._raise_status(result)
        return bytes(payload.reshape(-1).astype(np.uint8).tobytes())

    def _raise_status(self, result: grpcclient.InferResult) -> None:
        """Raise the error a robust model's CODE and MESSAGE name, if any."""
        from subtone.robust import triton_model as robust_model

        code = result.as_numpy(robust_model.OUT_CODE)
        message = result.as_numpy(robust_model.OUT_MESSAGE)
        if code is None or message is None:
            raise TritonRequestError(f"Triton at {self.url} answered without a status")
        found = first_text(code)
        if not found:
            return
        error = _robust_errors().get(found)
        if error is None:
            raise TritonRequestError(f"Triton at {self.url} answered {found!r}")
        raise error(first_text(message) or f"[{found}]", code=found)

    def ready(self) -> None:
        """Return if the server and every model is ready; raise :class:`TritonUnavailable`."""
        generation, client = self._current()
        try:
            if not client.is_server_ready(client_timeout=self.timeout_seconds):
                raise TritonUnavailable(f"Triton at {self.url} is not ready")
            models = (
                self.embed_model,
                self.extract_model,
                self.robust_embed_model,
                self.robust_extract_model,
            )
            for model in models:
                if not client.is_model_ready(
                    model, self.model_version, client_timeout=self.timeout_seconds
                ):
                    raise TritonUnavailable(
                        f"Triton at {self.url} has no ready version of model {model!r}"
                    )
        except InferenceServerException as e:
            if (e.status() or "") in RECONNECT_STATUSES:
                self._reconnect(generation)
            raise TritonUnavailable(
                f"Triton at {self.url} is not reachable: {e.message()} ({e.status()})"
            ) from e
        except ValueError as e:
            raise self._replaced(e, "answer whether it is ready") from e

    def close(self) -> None:
        """Close the gRPC channel (idempotent)."""
        with self._channel_lock:
            if self._closed:
                return
            self._closed = True
        self._client.close()

    def __enter__(self) -> TritonEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
