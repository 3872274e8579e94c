"""The stego models through a real tritonserver, and the TritonEngine client.

Windows' planes sent through Triton must come back bit-exact with the kernel run in-process
(and with the sample-based reference kernel); bad windows are answered INVALID_ARG for their
request only; concurrent requests share one execute(); a server that is down, silent or
missing a model is TritonUnavailable, in time.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from server.integrations.triton import (
    EMBED_MODEL,
    EXTRACT_MODEL,
    Reply,
    TritonEngine,
    TritonRequestError,
    TritonUnavailable,
)
from server.standalone.tritonserver import MODEL_REPOSITORY, TritonProcess, free_port
from subtone.stego.engine import (
    DENSE_K,
    EmbedTask,
    ExtractTask,
    FlipMap,
    InProcessEngine,
    flip_indices,
)
from subtone.stego.kernel import (
    KEY_BYTES,
    WINDOW_BYTES,
    WINDOW_SAMPLES,
    apply_flips,
    block_size,
    sample_range,
)
from tests.subtone.stego import reference_kernel

from .conftest import BATCH_OF

pytestmark = pytest.mark.integration

INVALID = "StatusCode.INVALID_ARGUMENT"
SHORT_TIMEOUT_SECONDS = 1.5
TIMEOUT_SLACK_SECONDS = 2.0
FULL_SCALE_RUN = 64
LOCAL = InProcessEngine()

T = TypeVar("T")


@dataclass(frozen=True)
class Window:
    samples: np.ndarray
    bits: np.ndarray  # 0/1 values
    bits_per_sample: int
    task: EmbedTask

    def extract_task(self, samples: np.ndarray | None = None) -> ExtractTask:
        t = self.task
        plane = t.plane if samples is None else np.packbits(samples & 1, bitorder="little")
        return ExtractTask(plane, t.length, t.key, t.k, t.skip, t.nblocks)


def make_window(
    seed: int, length: int, bits_per_sample: int, k: int, skip: int, fill: float = 1.0
) -> Window:
    """A random window with full-scale runs at both ends of the range (they move inwards)."""
    rng = np.random.default_rng(seed)
    lo, hi = sample_range(bits_per_sample)
    samples = rng.integers(lo, hi, length, endpoint=True, dtype=np.int64).astype(np.int32)
    samples[:FULL_SCALE_RUN] = hi
    samples[FULL_SCALE_RUN : 2 * FULL_SCALE_RUN] = lo
    nblocks = int((length - skip) // block_size(k) * fill)
    bits = rng.integers(0, 2, nblocks * k, dtype=np.uint8)
    plane = np.packbits(samples & 1, bitorder="little")
    task = EmbedTask(plane, length, rng.bytes(KEY_BYTES), k, skip, nblocks, np.packbits(bits))
    return Window(samples, bits, bits_per_sample, task)


def reference_embed(window: Window) -> np.ndarray:
    t = window.task
    return reference_kernel.embed_window(
        window.samples,
        t.key,
        k=t.k,
        skip=t.skip,
        bits=window.bits,
        bits_per_sample=window.bits_per_sample,
    )


def reference_flips(window: Window) -> np.ndarray:
    return np.nonzero(reference_embed(window) != window.samples)[0].astype(np.int32)


def together(calls: list[Callable[[], T]]) -> list[T | BaseException]:
    """Run the calls from as many threads, released at once; results or exceptions, in order."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T | BaseException:
        barrier.wait()
        try:
            return call()
        except Exception as e:
            return e

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def statistics(url: str, model: str) -> tuple[int, int]:
    """(inference_count, execution_count) of a model since the server started."""
    with grpcclient.InferenceServerClient(url) as client:
        stats: dict[str, Any] = client.get_inference_statistics(model, as_json=True)
    model_stats = stats["model_stats"][0]
    return int(model_stats.get("inference_count", 0)), int(model_stats.get("execution_count", 0))


def statistics_after(url: str, model: str, inferences: int) -> tuple[int, int]:
    """:func:`statistics` once they count at least ``inferences``: Triton records a request's
    statistics when it releases the request, after its response has gone out, so a client
    that has every reply may read them a moment too early (seen under load: 0 of 4)."""
    deadline = time.monotonic() + 10
    while True:
        counted = statistics(url, model)
        if counted[0] >= inferences or time.monotonic() > deadline:
            return counted
        time.sleep(0.01)


# -- through the committed model repository -------------------------------------------------


def test_ready(triton_engine: TritonEngine) -> None:
    triton_engine.ready()


@pytest.mark.parametrize(
    ("bits_per_sample", "length", "k", "skip", "fill"),
    [
        (16, WINDOW_SAMPLES, 4, 37, 1.0),
        (16, WINDOW_SAMPLES, 1, 0, 1.0),  # one bit per sample: every bit of BITS is used
        (24, WINDOW_SAMPLES, 7, 0, 0.6),
        (24, 100_003, 3, 21, 1.0),  # a short last window
        (16, 1_000, 16, 0, 1.0),  # too short for one block: nothing to carry
        (32, 5_000, 9, 3, 1.0),
    ],
)
def test_matches_the_kernel_bit_exact(
    triton_engine: TritonEngine,
    bits_per_sample: int,
    length: int,
    k: int,
    skip: int,
    fill: float,
) -> None:
    window = make_window(length + k, length, bits_per_sample, k, skip, fill)

    (answer,) = triton_engine.embed([window.task])

    # Dense windows come back as the kernel's bitmap (a bit a sample), the others as indices.
    assert isinstance(answer, FlipMap) == (k <= DENSE_K)
    flips = flip_indices(answer)
    assert flips.dtype == np.int32
    if isinstance(answer, FlipMap):
        assert answer.bits.size == (length + 7) // 8 and answer.count == flips.size
    np.testing.assert_array_equal(flips, reference_flips(window))
    np.testing.assert_array_equal(flips, flip_indices(LOCAL.embed([window.task])[0]))
    stego = window.samples.copy()
    apply_flips(stego, window.task.key, flips, bits_per_sample)
    np.testing.assert_array_equal(stego, reference_embed(window))

    (packed,) = triton_engine.extract([window.extract_task(stego)])
    assert packed.dtype == np.uint8
    assert packed.size == (window.bits.size + 7) // 8
    np.testing.assert_array_equal(np.unpackbits(packed, count=window.bits.size), window.bits)
    (cover_bits,) = triton_engine.extract([window.extract_task()])
    np.testing.assert_array_equal(cover_bits, LOCAL.extract([window.extract_task()])[0])


@pytest.mark.parametrize("ks", [(1, 2, 3, 4, 5), (1, 2)])
def test_many_windows_in_one_call_match_the_kernel(
    triton_engine: TritonEngine, ks: tuple[int, ...]
) -> None:
    """Mixed windows (answered as indices), dense ones (as bitmaps)."""
    windows = [
        make_window(60 + i, WINDOW_SAMPLES - 997 * i, 16, ks[i % len(ks)], i) for i in range(70)
    ]
    tasks = [w.task for w in windows]  # more than one request's MAX_ROWS

    flips = triton_engine.embed(tasks)

    assert all(isinstance(f, FlipMap) for f in flips) == (max(ks) <= DENSE_K)
    for got, want in zip(flips, LOCAL.embed(tasks), strict=True):
        np.testing.assert_array_equal(flip_indices(got), flip_indices(want))
    extract = [w.extract_task() for w in windows]
    for got, want in zip(triton_engine.extract(extract), LOCAL.extract(extract), strict=True):
        np.testing.assert_array_equal(got, want)


def _task(good: EmbedTask, **changes: Any) -> EmbedTask:
    fields = {f: getattr(good, f) for f in ("plane", "length", "key", "k", "skip", "nblocks")}
    return EmbedTask(**(fields | {"bits": good.bits} | changes))


def bad_embeds() -> Iterator[Any]:
    good = make_window(1, 4096, 16, 3, 0).task
    yield pytest.param(_task(good, k=0), "k must be in 1..16, got 0", id="k=0")
    yield pytest.param(_task(good, skip=5), "do not fit a window of 4096", id="blocks-do-not-fit")
    yield pytest.param(
        _task(good, length=0, nblocks=0), "length must be in 1..262144, got 0", id="empty-window"
    )
    yield pytest.param(
        _task(good, length=WINDOW_SAMPLES + 1, nblocks=0),
        "length must be in 1..262144, got 262145",
        id="window-too-long",
    )
    yield pytest.param(
        _task(good, key=good.key[:-1]), "a window key has 32 bytes, got 31", id="short-key"
    )


@pytest.mark.parametrize(("task", "message"), list(bad_embeds()))
def test_bad_embed_is_invalid_arg(
    triton_engine: TritonEngine, task: EmbedTask, message: str
) -> None:
    with pytest.raises((TritonRequestError, ValueError)) as caught:
        triton_engine.embed([task])
    if isinstance(caught.value, TritonRequestError):
        assert caught.value.grpc_status == INVALID
        assert caught.value.code == "triton_rejected"
        assert caught.value.status == 500
        assert message in caught.value.message
    else:
        assert message in str(caught.value)
    # The in-process engine says the same.
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        LOCAL.embed([task])
    # The model is still serving.
    good = make_window(2, 2048, 16, 2, 0)
    np.testing.assert_array_equal(
        flip_indices(triton_engine.embed([good.task])[0]), reference_flips(good)
    )


@pytest.mark.parametrize(
    ("k", "nblocks", "message"),
    [
        (0, 1, "k must be in 1..16, got 0"),
        (17, 1, "k must be in 1..16, got 17"),
        (4, 1000, "1000 blocks of 15 samples after 0 do not fit a window of 4096"),
        (4, -1, "do not fit"),
    ],
)
def test_bad_extract_is_invalid_arg(
    triton_engine: TritonEngine, k: int, nblocks: int, message: str
) -> None:
    task = ExtractTask(np.zeros(512, np.uint8), 4096, bytes(KEY_BYTES), k, 0, nblocks)
    with pytest.raises(TritonRequestError) as caught:
        triton_engine.extract([task])
    assert caught.value.grpc_status == INVALID
    assert message in caught.value.message


def test_engine_refuses_a_plane_longer_than_a_window(triton_engine: TritonEngine) -> None:
    good = make_window(3, 4096, 16, 3, 0).task
    with pytest.raises(ValueError, match="at most 32768 bytes"):
        triton_engine.embed([_task(good, plane=np.zeros(WINDOW_BYTES + 1, np.uint8))])


def _rows(windows: list[Window]) -> dict[str, np.ndarray]:
    planes = np.zeros((len(windows), WINDOW_BYTES), np.uint8)
    bits = np.zeros((len(windows), WINDOW_BYTES), np.uint8)
    for i, w in enumerate(windows):
        planes[i, : w.task.plane.size] = w.task.plane
        bits[i, : w.task.bits.size] = w.task.bits

    def column(values: list[int]) -> np.ndarray:
        return np.array(values, np.int32).reshape(-1, 1)

    return {
        "PLANE": planes,
        "LENGTH": column([w.task.length for w in windows]),
        "KEY": np.stack([np.frombuffer(w.task.key, np.uint8) for w in windows]),
        "K": column([w.task.k for w in windows]),
        "SKIP": column([w.task.skip for w in windows]),
        "NBLOCKS": column([w.task.nblocks for w in windows]),
        "BITS": bits,
    }


def _infer(url: str, model: str, arrays: dict[str, np.ndarray]) -> grpcclient.InferResult:
    inputs = []
    for name, array in arrays.items():
        datatype = "UINT8" if array.dtype == np.uint8 else "INT32"
        tensor = grpcclient.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    with grpcclient.InferenceServerClient(url) as client:
        return client.infer(model, inputs, client_timeout=60)


def test_the_wire_format(triton_server: TritonProcess) -> None:
    windows = [make_window(10, WINDOW_SAMPLES, 16, 5, 0), make_window(11, 70_001, 24, 2, 9)]
    arrays = _rows(windows)

    result = _infer(triton_server.grpc_url, EMBED_MODEL, arrays)

    flips, counts = result.as_numpy("FLIPS"), result.as_numpy("COUNT")
    assert flips.dtype == np.int32 and counts.shape == (2, 1)
    assert flips.shape == (2, int(counts.max()))
    for row, count, window in zip(flips, counts[:, 0], windows, strict=True):
        np.testing.assert_array_equal(row[:count], reference_flips(window))
        assert (row[count:] == -1).all()  # the padding
    # No outputs named: every output, the bitmap of the same flips among them.
    maps = result.as_numpy("FLIP_MAP")
    assert maps.dtype == np.uint8 and maps.shape == (2, WINDOW_SAMPLES // 8)
    for row, window in zip(maps, windows, strict=True):
        flags = np.unpackbits(row, bitorder="little")
        np.testing.assert_array_equal(np.flatnonzero(flags), reference_flips(window))
    assert result.as_numpy("BATCH_SIZE").reshape(-1).tolist() == [2, 2]

    arrays = {n: arrays[n] for n in ("PLANE", "LENGTH", "KEY", "K", "SKIP", "NBLOCKS")}
    for i, window in enumerate(windows):
        stego = reference_embed(window)
        arrays["PLANE"][i] = 0
        plane = np.packbits(stego & 1, bitorder="little")
        arrays["PLANE"][i, : plane.size] = plane
    bits = _infer(triton_server.grpc_url, EXTRACT_MODEL, arrays).as_numpy("BITS_OUT")
    # As wide as the widest row needs (the bits a window carries, not its whole plane).
    assert bits.shape == (2, max((w.bits.size + 7) // 8 for w in windows))
    for row, window in zip(bits, windows, strict=True):
        unpacked = np.unpackbits(row)
        np.testing.assert_array_equal(unpacked[: window.bits.size], window.bits)
        assert not unpacked[window.bits.size :].any()


def test_a_bad_window_fails_its_whole_request(triton_server: TritonProcess) -> None:
    arrays = _rows([make_window(12, 4096, 16, 3, 0), make_window(13, 4096, 16, 3, 0)])
    arrays["K"][1, 0] = 0
    with pytest.raises(InferenceServerException) as caught:
        _infer(triton_server.grpc_url, EMBED_MODEL, arrays)
    assert caught.value.status() == INVALID
    assert "window 1: k must be in 1..16, got 0" in caught.value.message()


# -- batching (stego_embed waits for BATCH_OF requests; stego_extract not loaded) ------------


@pytest.mark.parametrize("k", [4, 2])
def test_concurrent_requests_share_one_execute(
    triton_batching_server: TritonProcess, k: int
) -> None:
    """Requests for indices (k = 4) batch together, and so do requests for bitmaps (dense
    windows, k = 2). (Triton batches only requests that ask for the same outputs: a dense
    job's and a sparse job's requests at the same moment run in executes of their own.)"""
    url = triton_batching_server.grpc_url
    windows = [make_window(20 + i, WINDOW_SAMPLES - i * 1000, 16, k, i) for i in range(BATCH_OF)]
    before = statistics(url, EMBED_MODEL)
    with TritonEngine(url, timeout_seconds=60) as engine:
        replies = together([lambda w=w: engine.embed_reply([w.task]) for w in windows])
    after = statistics_after(url, EMBED_MODEL, before[0] + BATCH_OF)

    for reply, window in zip(replies, windows, strict=True):
        assert isinstance(reply, Reply), reply
        assert reply.batch_size == BATCH_OF
        assert isinstance(reply.data[0], FlipMap) == (k <= DENSE_K)
        np.testing.assert_array_equal(flip_indices(reply.data[0]), reference_flips(window))
    assert after[0] - before[0] == BATCH_OF  # inferences
    assert after[1] - before[1] == 1  # executions


def test_a_bad_request_does_not_disturb_its_batch(triton_batching_server: TritonProcess) -> None:
    windows = [make_window(30 + i, 50_000, 24, 6, 0) for i in range(BATCH_OF)]
    tasks = [w.task for w in windows]
    tasks[1] = _task(tasks[1], k=0)
    with TritonEngine(triton_batching_server.grpc_url, timeout_seconds=60) as engine:
        replies = together([lambda t=t: engine.embed_reply([t]) for t in tasks])

    assert isinstance(replies[1], TritonRequestError)
    assert replies[1].grpc_status == INVALID
    for i in (0, 2, 3):
        reply = replies[i]
        assert isinstance(reply, Reply), reply
        assert reply.batch_size == BATCH_OF - 1  # windows processed: the bad one was not
        np.testing.assert_array_equal(reply.data[0], reference_flips(windows[i]))


def test_model_not_loaded_is_unavailable(triton_batching_server: TritonProcess) -> None:
    with TritonEngine(triton_batching_server.grpc_url, timeout_seconds=10) as engine:
        with pytest.raises(TritonUnavailable, match=EXTRACT_MODEL) as caught:
            engine.ready()
        assert caught.value.code == "triton_unavailable"
        assert caught.value.status == 503
        task = ExtractTask(np.zeros(13, np.uint8), 100, bytes(KEY_BYTES), 1, 0, 10)
        with pytest.raises(TritonUnavailable, match="unknown model"):
            engine.extract([task])


# -- a server that is not there, silent, or stopped -----------------------------------------


def _timed(call: Callable[[], object], error: type[Exception]) -> tuple[float, Exception]:
    start = time.monotonic()
    with pytest.raises(error) as caught:
        call()
    return time.monotonic() - start, caught.value


def test_nothing_listening_is_unavailable_at_once() -> None:
    window = make_window(40, 4096, 16, 3, 0)
    with TritonEngine(f"127.0.0.1:{free_port()}", timeout_seconds=SHORT_TIMEOUT_SECONDS) as engine:
        for call in (engine.ready, lambda: engine.embed([window.task])):
            elapsed, error = _timed(call, TritonUnavailable)
            assert elapsed < SHORT_TIMEOUT_SECONDS + TIMEOUT_SLACK_SECONDS
            assert "UNAVAILABLE" in str(error) or "DEADLINE" in str(error)


def test_a_silent_server_times_out() -> None:
    """A socket that accepts connections and never answers: the deadline is honoured."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"127.0.0.1:{silent.getsockname()[1]}"
        window = make_window(41, 4096, 16, 3, 0)
        with TritonEngine(url, timeout_seconds=SHORT_TIMEOUT_SECONDS) as engine:
            for call in (engine.ready, lambda: engine.embed([window.task])):
                elapsed, error = _timed(call, TritonUnavailable)
                assert elapsed >= SHORT_TIMEOUT_SECONDS * 0.9
                assert elapsed < SHORT_TIMEOUT_SECONDS + TIMEOUT_SLACK_SECONDS
                assert "DEADLINE_EXCEEDED" in str(error)


def test_a_call_on_a_channel_another_call_replaced_is_unavailable() -> None:
    """Windows in flight when Triton goes away: the first failure replaces the channel and
    closes the old one; a window that took the old channel just before then meets grpc's
    ValueError. That is Triton unreachable (retried), not an internal error."""
    window = make_window(43, 4096, 16, 3, 0)
    with TritonEngine(f"127.0.0.1:{free_port()}", timeout_seconds=SHORT_TIMEOUT_SECONDS) as engine:
        taken = engine._current()  # what a call in flight holds
        engine._reconnect(taken[0])  # another call's failure replaces it
        engine._current = lambda: taken  # type: ignore[method-assign]
        for call in (engine.ready, lambda: engine.embed([window.task])):
            _, error = _timed(call, TritonUnavailable)
            assert "replaced" in str(error)


@pytest.mark.parametrize(
    "message",
    # grpc's words for a channel closed before the call, and for one closed as it started
    # (what the fault test met: a job recorded internal_error instead of being retried).
    ["Cannot invoke RPC on closed channel!", "Cannot invoke RPC: Channel closed!"],
)
def test_grpcs_closed_channel_errors_are_unavailable(message: str) -> None:
    with TritonEngine(f"127.0.0.1:{free_port()}", timeout_seconds=SHORT_TIMEOUT_SECONDS) as engine:
        _, client = engine._current()

        def closed(*args: object, **kwargs: object) -> None:
            raise ValueError(message)

        client.infer = closed  # type: ignore[method-assign]
        with pytest.raises(TritonUnavailable, match="replaced"):
            engine.embed([make_window(44, 4096, 16, 3, 0).task])
        client.infer = lambda *a, **k: (_ for _ in ()).throw(ValueError("something else"))
        with pytest.raises(ValueError, match="something else"):
            engine.embed([make_window(44, 4096, 16, 3, 0).task])


def test_a_stopped_server_is_unavailable() -> None:
    window = make_window(42, 4096, 16, 3, 0)
    with TritonProcess(MODEL_REPOSITORY) as server:
        engine = TritonEngine(server.grpc_url, timeout_seconds=SHORT_TIMEOUT_SECONDS * 20)
        try:
            engine.ready()
            np.testing.assert_array_equal(engine.embed([window.task])[0], reference_flips(window))
            server.stop()
            assert not server.running()
            engine.timeout_seconds = SHORT_TIMEOUT_SECONDS
            for call in (engine.ready, lambda: engine.embed([window.task])):
                elapsed, _ = _timed(call, TritonUnavailable)
                assert elapsed < SHORT_TIMEOUT_SECONDS + TIMEOUT_SLACK_SECONDS
        finally:
            engine.close()


def test_the_first_call_after_triton_returns_succeeds(tmp_path) -> None:
    """Triton killed, then started again on the same ports: the engine's next call (a retry
    budget of two: one while it is down, one after) gets through at once, on a new channel,
    not after the old channel's reconnect back-off."""
    first = TritonProcess(MODEL_REPOSITORY, workdir=tmp_path / "first").start()
    window = make_window(7, 5000, 16, 3, 0)
    engine = TritonEngine(first.grpc_url, timeout_seconds=10.0)
    try:
        assert np.array_equal(engine.embed([window.task])[0], reference_flips(window))
        first.stop()
        for _ in range(3):  # the channel's back-off grows while nothing answers
            with pytest.raises(TritonUnavailable):
                engine.embed([window.task])
            time.sleep(1.5)
        with TritonProcess(MODEL_REPOSITORY, ports=first.ports, workdir=tmp_path / "again"):
            assert np.array_equal(engine.embed([window.task])[0], reference_flips(window))
    finally:
        engine.close()
        first.stop()


@pytest.mark.parametrize(
    ("longest", "width"), [(0, 64), (1, 64), (64, 64), (65, 128), (5000, 8192), (32768, 32768)]
)
def test_an_embeds_bits_are_sent_in_a_power_of_two_wide_enough(longest: int, width: int) -> None:
    """Few bytes for a short secret, one shape for similar ones (so Triton batches them)."""
    from server.integrations.triton_wire import byte_rows

    rows = byte_rows([bytes(longest), bytes(1)], "bits", fit=True)
    assert rows.shape == (2, width)
    assert byte_rows([bytes(longest)], "bits").shape == (1, WINDOW_BYTES)
