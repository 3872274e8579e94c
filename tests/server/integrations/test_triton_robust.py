"""The robust-mode models through a real tritonserver, and the TritonEngine's robust calls.

A cover's working mix sent through ``stego_robust_embed`` must come back with the residual the
in-process engine computes, bit for bit; ``stego_robust_extract`` must find the payload, and
tell a wrong key (``no_payload``) from a destroyed payload (``channel_damaged``); a payload that
does not fit, or a cover that does not hold the marks, is answered with its own code; a mix the
wire format cannot be (not float32) is INVALID_ARG for its request alone.
"""

from __future__ import annotations

import numpy as np
import pytest
import tritonclient.grpc as grpcclient

from server.integrations.triton import TritonEngine
from subtone.errors import CapacityExceeded, ChannelDamaged, NoPayload
from subtone.robust import UnsuitableCover, mix_capacity, working_mix
from subtone.robust.engine import InProcessRobustEngine
from tests.subtone.robust.test_robust import _cover

pytestmark = pytest.mark.integration

RATE = 44_100
KEY = bytes(range(32))
WRONG = bytes(range(1, 33))
LOCAL = InProcessRobustEngine()


@pytest.fixture(scope="module")
def mix() -> np.ndarray:
    return working_mix(_cover(12.0), RATE)


@pytest.fixture(scope="module")
def payload() -> bytes:
    return np.random.default_rng(3).integers(0, 256, 100, dtype=np.uint8).tobytes()


def test_embed_through_triton_is_the_in_process_residual(triton_engine, mix, payload):
    remote = triton_engine.robust_embed(mix, KEY, payload)
    local = LOCAL.robust_embed(mix, KEY, payload)
    assert (remote.start, remote.length) == (local.start, local.length) == (remote.start, len(mix))
    assert remote.samples.dtype == np.float16
    np.testing.assert_array_equal(remote.samples, local.samples)


def _marked(mix: np.ndarray, residual) -> np.ndarray:
    y = mix.astype(np.float64)
    y[residual.start : residual.start + len(residual.samples)] += residual.samples
    return y.astype(np.float32)


def test_extract_through_triton_finds_the_payload_or_says_why_not(
    triton_engine: TritonEngine, mix, payload
):
    marked = _marked(mix, LOCAL.robust_embed(mix, KEY, payload))
    assert triton_engine.robust_extract(marked, KEY) == payload
    with pytest.raises(NoPayload) as wrong:
        triton_engine.robust_extract(marked, WRONG)
    assert wrong.value.code == "no_payload" and "passphrase" in wrong.value.message
    with pytest.raises(NoPayload):
        triton_engine.robust_extract(mix, KEY)  # never marked
    damaged = marked.copy()
    n = len(damaged)
    noise = np.random.default_rng(9).standard_normal(int(0.8 * n) - int(0.35 * n)) * 0.1
    damaged[int(0.35 * n) : int(0.8 * n)] = noise
    with pytest.raises(ChannelDamaged) as broken:
        triton_engine.robust_extract(damaged, KEY)
    assert broken.value.code == "channel_damaged"


def test_a_payload_that_does_not_fit_is_capacity_exceeded(triton_engine, mix):
    room = mix_capacity(len(mix))
    with pytest.raises(CapacityExceeded) as caught:
        triton_engine.robust_embed(mix, KEY, bytes(room + 1))
    assert caught.value.code == "capacity_exceeded"
    assert f"holds {room:,}" in caught.value.message
    # The model serves the next request as before.
    assert triton_engine.robust_embed(mix, KEY, bytes(room)).length == len(mix)


def test_a_cover_that_does_not_hold_the_marks_is_unsuitable_cover(triton_engine):
    noise = np.random.default_rng(1).uniform(-0.1, 0.1, 16_000 * 30).astype(np.float32)
    with pytest.raises(UnsuitableCover) as caught:
        triton_engine.robust_embed(noise, KEY, bytes(300))  # broadband noise: too much for it
    assert caught.value.code == "unsuitable_cover"
    assert "speech and music" in caught.value.message


def test_a_mix_that_is_not_float32_is_invalid_for_its_request_alone(triton_engine, mix):
    client = grpcclient.InferenceServerClient(triton_engine.url)
    wrong = grpcclient.InferInput("MIX", [1000], "INT16")
    wrong.set_data_from_numpy(np.zeros(1000, dtype=np.int16))
    key = grpcclient.InferInput("KEY", [32], "UINT8")
    key.set_data_from_numpy(np.frombuffer(KEY, dtype=np.uint8))
    with pytest.raises(Exception) as caught:
        client.infer("stego_robust_extract", [wrong, key])
    assert "INT16" in str(caught.value) or "INVALID" in str(caught.value)
    client.close()
    with pytest.raises(NoPayload):  # and the model answers the next request as before
        triton_engine.robust_extract(mix, KEY)


def test_the_engine_is_ready_only_with_the_robust_models(triton_engine):
    triton_engine.ready()
    assert triton_engine.robust_embed_model == "stego_robust_embed"
