"""The stego models through a real tritonserver, and the TritonEngine client.

Windows sent through Triton must come back bit-exact with the kernel run in-process; bad
windows are answered INVALID_ARG for their request only; concurrent requests share one
execute(); a server that is down, silent or missing a model is TritonUnavailable, in time.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
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
from subtone.stego.engine import EmbedWindow, ExtractWindow
from subtone.stego.kernel import (
    KEY_BYTES,
    WINDOW_SAMPLES,
    block_size,
    embed_window,
    extract_window,
    sample_range,
)

from .conftest import BATCH_OF

pytestmark = pytest.mark.integration

INVALID = "StatusCode.INVALID_ARGUMENT"
SHORT_TIMEOUT_SECONDS = 1.5
TIMEOUT_SLACK_SECONDS = 2.0
FULL_SCALE_RUN = 64
PACKED_BYTES = WINDOW_SAMPLES // 8

T = TypeVar("T")


def make_window(
    seed: int, length: int, bits_per_sample: int, k: int, skip: int, fill: float = 1.0
) -> EmbedWindow:
    """A random window with full-scale runs at both ends of the range (they move inwards)."""
    rng = np.random.default_rng(seed)
    lo, hi = sample_range(bits_per_sample)
    samples = rng.integers(lo, hi, length, endpoint=True, dtype=np.int64).astype(np.int32)
    samples[:FULL_SCALE_RUN] = hi
    samples[FULL_SCALE_RUN : 2 * FULL_SCALE_RUN] = lo
    nblocks = int((length - skip) // block_size(k) * fill)
    bits = rng.integers(0, 2, nblocks * k, dtype=np.uint8)
    return EmbedWindow(samples, rng.bytes(KEY_BYTES), k, skip, bits, bits_per_sample)


def kernel_embed(window: EmbedWindow) -> np.ndarray:
    return embed_window(
        window.samples,
        window.key,
        k=window.k,
        skip=window.skip,
        bits=window.bits,
        bits_per_sample=window.bits_per_sample,
    )


def extract_of(window: EmbedWindow, samples: np.ndarray) -> ExtractWindow:
    return ExtractWindow(samples, window.key, window.k, window.skip, window.nblocks)


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
    expected = kernel_embed(window)

    stego = triton_engine.embed(window)

    assert stego.dtype == np.int32
    assert stego.shape == (length,)
    np.testing.assert_array_equal(stego, expected)
    lo, hi = sample_range(bits_per_sample)
    assert stego.min() >= lo
    assert stego.max() <= hi
    assert np.abs(stego.astype(np.int64) - window.samples).max(initial=0) <= 1

    bits = triton_engine.extract(extract_of(window, stego))
    assert bits.dtype == np.uint8
    np.testing.assert_array_equal(bits, window.bits)
    cover_bits = triton_engine.extract(extract_of(window, window.samples))
    np.testing.assert_array_equal(
        cover_bits,
        extract_window(window.samples, window.key, k=k, skip=skip, nblocks=window.nblocks),
    )


def bad_embeds() -> Iterator[Any]:
    good = make_window(1, 4096, 16, 3, 0)
    yield pytest.param(
        EmbedWindow(good.samples, good.key, 0, 0, np.zeros(0, np.uint8), 16),
        "k must be in 1..16, got 0",
        id="k=0",
    )
    yield pytest.param(
        EmbedWindow(good.samples, good.key, 3, 0, good.bits, 8),
        "bits_per_sample must be one of (16, 24, 32), got 8",
        id="bits_per_sample=8",
    )
    yield pytest.param(
        EmbedWindow(good.samples, good.key, 3, 5, good.bits, 16),
        "do not fit a window of 4096",
        id="blocks-do-not-fit",
    )
    yield pytest.param(
        EmbedWindow(good.samples[:0], good.key, 3, 0, np.zeros(0, np.uint8), 16),
        "length must be in 1..262144, got 0",
        id="empty-window",
    )
    yield pytest.param(
        EmbedWindow(good.samples + 40_000, good.key, 3, 0, good.bits, 16),
        "samples outside the 16-bit range",
        id="samples-out-of-range",
    )
    yield pytest.param(
        EmbedWindow(good.samples, good.key[:-1], 3, 0, good.bits, 16),
        "KEY",  # Triton itself rejects the tensor's shape
        id="short-key",
    )
    yield pytest.param(
        EmbedWindow(
            np.zeros(WINDOW_SAMPLES + 1, np.int32), good.key, 3, 0, np.zeros(0, np.uint8), 16
        ),
        "SAMPLES",
        id="window-too-long",
    )


@pytest.mark.parametrize(("window", "message"), list(bad_embeds()))
def test_bad_embed_is_invalid_arg(
    triton_engine: TritonEngine, window: EmbedWindow, message: str
) -> None:
    with pytest.raises(TritonRequestError) as caught:
        triton_engine.embed(window)
    assert caught.value.grpc_status == INVALID
    assert caught.value.code == "triton_rejected"
    assert caught.value.status == 500
    assert message in caught.value.message
    # The model is still serving.
    good = make_window(2, 2048, 16, 2, 0)
    np.testing.assert_array_equal(triton_engine.embed(good), kernel_embed(good))


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
    window = ExtractWindow(np.zeros(4096, np.int32), bytes(KEY_BYTES), k, 0, nblocks)
    with pytest.raises(TritonRequestError) as caught:
        triton_engine.extract(window)
    assert caught.value.grpc_status == INVALID
    assert message in caught.value.message


def test_engine_refuses_bits_that_are_not_whole_blocks(triton_engine: TritonEngine) -> None:
    window = make_window(3, 4096, 16, 3, 0)
    with pytest.raises(ValueError, match="whole number of 3-bit blocks"):
        triton_engine.embed(EmbedWindow(window.samples, window.key, 3, 0, window.bits[:-1], 16))


def _rows(windows: list[EmbedWindow]) -> dict[str, np.ndarray]:
    samples = np.zeros((len(windows), WINDOW_SAMPLES), np.int32)
    bits = np.zeros((len(windows), PACKED_BYTES), np.uint8)
    for i, w in enumerate(windows):
        samples[i, : w.samples.size] = w.samples
        packed = np.packbits(w.bits)
        bits[i, : packed.size] = packed

    def column(values: list[int]) -> np.ndarray:
        return np.array(values, np.int32).reshape(-1, 1)

    return {
        "SAMPLES": samples,
        "LENGTH": column([w.samples.size for w in windows]),
        "KEY": np.stack([np.frombuffer(w.key, np.uint8) for w in windows]),
        "K": column([w.k for w in windows]),
        "SKIP": column([w.skip for w in windows]),
        "NBLOCKS": column([w.nblocks for w in windows]),
        "BITS": bits,
        "BITS_PER_SAMPLE": column([w.bits_per_sample for w in windows]),
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


def test_one_request_may_carry_several_windows(triton_server: TritonProcess) -> None:
    windows = [make_window(10, WINDOW_SAMPLES, 16, 5, 0), make_window(11, 70_001, 24, 2, 9)]
    arrays = _rows(windows)

    result = _infer(triton_server.grpc_url, EMBED_MODEL, arrays)

    out = result.as_numpy("SAMPLES_OUT")
    assert out.shape == (2, WINDOW_SAMPLES)
    for row, window in zip(out, windows, strict=True):
        np.testing.assert_array_equal(row[: window.samples.size], kernel_embed(window))
        assert not row[window.samples.size :].any()  # the padding stays zero
    assert result.as_numpy("BATCH_SIZE").reshape(-1).tolist() == [2, 2]

    arrays = {name: arrays[name] for name in ("LENGTH", "KEY", "K", "SKIP", "NBLOCKS")}
    arrays["SAMPLES"] = out
    bits = _infer(triton_server.grpc_url, EXTRACT_MODEL, arrays).as_numpy("BITS_OUT")
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


def test_concurrent_requests_share_one_execute(triton_batching_server: TritonProcess) -> None:
    url = triton_batching_server.grpc_url
    windows = [make_window(20 + i, WINDOW_SAMPLES - i * 1000, 16, 4, i) for i in range(BATCH_OF)]
    before = statistics(url, EMBED_MODEL)
    with TritonEngine(url, timeout_seconds=60) as engine:
        replies = together([lambda w=w: engine.embed_reply(w) for w in windows])
    after = statistics(url, EMBED_MODEL)

    for reply, window in zip(replies, windows, strict=True):
        assert isinstance(reply, Reply), reply
        assert reply.batch_size == BATCH_OF
        np.testing.assert_array_equal(reply.data, kernel_embed(window))
    assert after[0] - before[0] == BATCH_OF  # inferences
    assert after[1] - before[1] == 1  # executions


def test_a_bad_request_does_not_disturb_its_batch(triton_batching_server: TritonProcess) -> None:
    windows = [make_window(30 + i, 50_000, 24, 6, 0) for i in range(BATCH_OF)]
    bad = windows[1]
    windows[1] = EmbedWindow(bad.samples, bad.key, bad.k, bad.skip, bad.bits, 8)
    with TritonEngine(triton_batching_server.grpc_url, timeout_seconds=60) as engine:
        replies = together([lambda w=w: engine.embed_reply(w) for w in windows])

    assert isinstance(replies[1], TritonRequestError)
    assert replies[1].grpc_status == INVALID
    for i in (0, 2, 3):
        reply = replies[i]
        assert isinstance(reply, Reply), reply
        assert reply.batch_size == BATCH_OF - 1  # windows processed: the bad one was not
        np.testing.assert_array_equal(reply.data, kernel_embed(windows[i]))


def test_model_not_loaded_is_unavailable(triton_batching_server: TritonProcess) -> None:
    with TritonEngine(triton_batching_server.grpc_url, timeout_seconds=10) as engine:
        with pytest.raises(TritonUnavailable, match=EXTRACT_MODEL) as caught:
            engine.ready()
        assert caught.value.code == "triton_unavailable"
        assert caught.value.status == 503
        window = ExtractWindow(np.zeros(100, np.int32), bytes(KEY_BYTES), 1, 0, 10)
        with pytest.raises(TritonUnavailable, match="unknown model"):
            engine.extract(window)


# -- a server that is not there, silent, or stopped -----------------------------------------


def _timed(call: Callable[[], object], error: type[Exception]) -> tuple[float, Exception]:
    start = time.monotonic()
    with pytest.raises(error) as caught:
        call()
    return time.monotonic() - start, caught.value


def test_nothing_listening_is_unavailable_at_once() -> None:
    window = make_window(40, 4096, 16, 3, 0)
    with TritonEngine(f"127.0.0.1:{free_port()}", timeout_seconds=SHORT_TIMEOUT_SECONDS) as engine:
        for call in (engine.ready, lambda: engine.embed(window)):
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
            for call in (engine.ready, lambda: engine.embed(window)):
                elapsed, error = _timed(call, TritonUnavailable)
                assert elapsed >= SHORT_TIMEOUT_SECONDS * 0.9
                assert elapsed < SHORT_TIMEOUT_SECONDS + TIMEOUT_SLACK_SECONDS
                assert "DEADLINE_EXCEEDED" in str(error)


def test_a_stopped_server_is_unavailable() -> None:
    window = make_window(42, 4096, 16, 3, 0)
    with TritonProcess(MODEL_REPOSITORY) as server:
        engine = TritonEngine(server.grpc_url, timeout_seconds=SHORT_TIMEOUT_SECONDS * 20)
        try:
            engine.ready()
            np.testing.assert_array_equal(engine.embed(window), kernel_embed(window))
            server.stop()
            assert not server.running()
            engine.timeout_seconds = SHORT_TIMEOUT_SECONDS
            for call in (engine.ready, lambda: engine.embed(window)):
                elapsed, _ = _timed(call, TritonUnavailable)
                assert elapsed < SHORT_TIMEOUT_SECONDS + TIMEOUT_SLACK_SECONDS
        finally:
            engine.close()
