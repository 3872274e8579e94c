"""The robust-mode models through a real tritonserver, and the TritonEngine's robust calls.

A cover's working mix sent through ``stego_robust_embed`` must come back with the residual the
in-process engine computes, bit for bit; ``stego_robust_extract`` must find the payload, and
tell a wrong key (``no_payload``) from a destroyed payload (``channel_damaged``); a payload that
does not fit is INVALID_ARG for its request.
"""

from __future__ import annotations

import numpy as np
import pytest

from server.integrations.triton import TritonEngine, TritonRequestError
from subtone.errors import ChannelDamaged, NoPayload
from subtone.robust import mix_capacity, working_mix
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
    y[residual.start : residual.start + len(residual.samples)] += residual.samples * 32768.0
    return np.clip(np.round(y), -32768, 32767).astype(np.int16)


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
    noise = np.random.default_rng(9).standard_normal(int(0.8 * n) - int(0.35 * n)) * 3000
    damaged[int(0.35 * n) : int(0.8 * n)] = noise.astype(np.int16)
    with pytest.raises(ChannelDamaged) as broken:
        triton_engine.robust_extract(damaged, KEY)
    assert broken.value.code == "channel_damaged"


def test_a_payload_that_does_not_fit_is_refused_for_its_request(triton_engine, mix):
    room = mix_capacity(len(mix))
    with pytest.raises(TritonRequestError) as caught:
        triton_engine.robust_embed(mix, KEY, bytes(room + 1))
    assert caught.value.grpc_status == "StatusCode.INVALID_ARGUMENT"
    assert f"holds {room:,}" in str(caught.value)
    # The model serves the next request as before.
    assert triton_engine.robust_embed(mix, KEY, bytes(room)).length == len(mix)


def test_the_engine_is_ready_only_with_the_robust_models(triton_engine):
    triton_engine.ready()
    assert triton_engine.robust_embed_model == "stego_robust_embed"
