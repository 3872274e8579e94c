"""The models' shared body (subtone/stego/triton_model.py) without Triton: a stand-in for
``triton_python_backend_utils`` with just what the models use."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from subtone.stego import triton_model
from subtone.stego.engine import EmbedTask, InProcessEngine, flip_indices
from subtone.stego.kernel import KEY_BYTES, WINDOW_BYTES, WINDOW_SAMPLES, block_size


class TritonError:
    INVALID_ARG = "INVALID_ARG"
    INTERNAL = "INTERNAL"

    def __init__(self, message: str, code: str = INTERNAL) -> None:
        self.message, self.code = message, code


class Tensor:
    def __init__(self, name: str, array: np.ndarray) -> None:
        self.name, self.array = name, array

    def as_numpy(self) -> np.ndarray:
        return self.array


class InferenceResponse:
    def __init__(self, output_tensors: list[Tensor] | None = None, error: Any = None) -> None:
        self.tensors = {t.name: t.array for t in output_tensors or []}
        self.error = error


def _by_name(config: dict[str, Any], key: str, name: str) -> dict[str, Any]:
    return next(item for item in config[key] if item["name"] == name)


pb = SimpleNamespace(
    TritonError=TritonError,
    Tensor=Tensor,
    InferenceResponse=InferenceResponse,
    Logger=SimpleNamespace(log_warn=lambda message: None, log_info=lambda message: None),
    get_input_config_by_name=lambda c, n: _by_name(c, "input", n),
    get_output_config_by_name=lambda c, n: _by_name(c, "output", n),
    triton_string_to_numpy=lambda t: {"TYPE_INT32": np.int32, "TYPE_UINT8": np.uint8}[t],
    get_input_tensor_by_name=lambda request, name: request.get(name),
)


class Request(dict):
    """A request that names the outputs it asks for, as Triton's stub tells the model."""

    def __init__(self, tensors: dict[str, Tensor], outputs: list[str]) -> None:
        super().__init__(tensors)
        self.outputs = outputs

    def requested_output_names(self) -> list[str]:
        return self.outputs


def config(kind: str) -> dict[str, Any]:
    inputs = [
        {"name": "PLANE", "dims": [WINDOW_BYTES]},
        {"name": "KEY", "dims": [KEY_BYTES]},
        {"name": "BITS", "dims": [WINDOW_BYTES]},
    ]
    out = "FLIPS" if kind == "embed" else "BITS_OUT"
    return {
        "name": f"stego_{kind}",
        "input": inputs,
        "output": [
            {"name": out, "data_type": "TYPE_INT32" if kind == "embed" else "TYPE_UINT8"},
            {"name": "BATCH_SIZE", "data_type": "TYPE_INT32"},
        ],
    }


def model(kind: str, instance_kind: str = "CPU", threads: int = 0) -> triton_model.StegoModel:
    m = triton_model.model_class(pb, kind)()  # type: ignore[arg-type]
    m.threads = max(m.threads, 3)  # split even on a small machine
    cfg = config(kind) | {"parameters": {"threads": {"string_value": str(threads)}}}
    m.initialize({"model_config": json.dumps(cfg), "model_instance_kind": instance_kind})
    return m


def task(seed: int, length: int, k: int) -> EmbedTask:
    rng = np.random.default_rng(seed)
    nblocks = length // block_size(k)
    plane = rng.integers(0, 256, (length + 7) // 8, dtype=np.uint8)
    bits = rng.integers(0, 256, (nblocks * k + 7) // 8, dtype=np.uint8)
    return EmbedTask(plane, length, rng.bytes(KEY_BYTES), k, 0, nblocks, bits)


def request(tasks: list[EmbedTask], embed: bool = True) -> dict[str, Tensor]:
    n = len(tasks)
    planes = np.zeros((n, WINDOW_BYTES), np.uint8)
    bits = np.zeros((n, WINDOW_BYTES), np.uint8)
    for i, t in enumerate(tasks):
        planes[i, : t.plane.size] = t.plane
        bits[i, : t.bits.size] = t.bits

    def column(name: str) -> np.ndarray:
        return np.array([getattr(t, name) for t in tasks], np.int32).reshape(-1, 1)

    arrays = {
        "PLANE": planes,
        "LENGTH": column("length"),
        "KEY": np.stack([np.frombuffer(t.key, np.uint8) for t in tasks]),
        "K": column("k"),
        "SKIP": column("skip"),
        "NBLOCKS": column("nblocks"),
    } | ({"BITS": bits} if embed else {})
    return {name: Tensor(name, a) for name, a in arrays.items()}


@pytest.mark.parametrize("threads", [0, 1])
def test_requests_of_a_batch_run_together_and_match_the_engine(threads):
    """Split over three threads (``threads=0``: every core, at least 3 here) or run on one."""
    tasks = [task(i, WINDOW_SAMPLES - 5000 * i, 1 + i) for i in range(5)]
    requests = [request(tasks[:2]), request(tasks[2:3]), request(tasks[3:])]
    embedder = model("embed", threads=threads)
    assert embedder.threads == (1 if threads else 3)
    responses = embedder.execute(requests)
    want = [flip_indices(f) for f in InProcessEngine().embed(tasks)]
    got = []
    for response, size in zip(responses, (2, 1, 2), strict=True):
        assert response.error is None
        flips, counts = response.tensors["FLIPS"], response.tensors["COUNT"]
        assert flips.shape[0] == counts.shape[0] == size
        assert response.tensors["BATCH_SIZE"].reshape(-1).tolist() == [5] * size
        got += [row[:c] for row, c in zip(flips, counts[:, 0], strict=True)]
        assert all((row[c:] == -1).all() for row, c in zip(flips, counts[:, 0], strict=True))
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a, b)

    out = model("extract", "GPU", threads=threads).execute([request(tasks, embed=False)])
    (response,) = out
    bits = response.tensors["BITS_OUT"]
    assert bits.shape == (5, WINDOW_BYTES)
    for row, packed in zip(bits, InProcessEngine().extract(tasks), strict=True):
        np.testing.assert_array_equal(row[: packed.size], packed)
        assert not row[packed.size :].any()


@pytest.mark.parametrize("threads", [0, 1])
def test_a_request_for_flip_maps_gets_the_same_flips_as_bitmaps(threads):
    """Requests batched together, one asking for FLIP_MAP (dense windows), one for FLIPS, one
    for both: each gets what it asked for, the same flips as the in-process engine."""
    tasks = [task(10 + i, WINDOW_SAMPLES - 7000 * i, 1 + i % 2) for i in range(5)]
    asked = [["FLIP_MAP", "COUNT", "BATCH_SIZE"], ["FLIPS", "COUNT", "BATCH_SIZE"],
             ["FLIPS", "FLIP_MAP", "COUNT", "BATCH_SIZE"]]  # fmt: skip
    parts = [tasks[:2], tasks[2:3], tasks[3:]]
    requests = [Request(request(p), a) for p, a in zip(parts, asked, strict=True)]
    responses = model("embed", threads=threads).execute(requests)
    want = iter([flip_indices(f) for f in InProcessEngine().embed(tasks)])
    for response, part, names in zip(responses, parts, asked, strict=True):
        assert response.error is None
        assert ("FLIPS" in response.tensors) == ("FLIPS" in names)
        assert ("FLIP_MAP" in response.tensors) == ("FLIP_MAP" in names)
        counts = response.tensors["COUNT"][:, 0]
        for i, t in enumerate(part):
            flips = next(want)
            assert counts[i] == flips.size
            if "FLIP_MAP" in names:
                row = response.tensors["FLIP_MAP"][i]
                assert row.shape == (WINDOW_BYTES,)
                flags = np.unpackbits(row, bitorder="little")
                np.testing.assert_array_equal(np.flatnonzero(flags), flips)
                assert not flags[t.length :].any()
            if "FLIPS" in names:
                np.testing.assert_array_equal(response.tensors["FLIPS"][i, : flips.size], flips)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r.pop("KEY"), "input KEY is missing"),
        (lambda r: r.__setitem__("K", Tensor("K", np.zeros((1, 1), np.int32))), "2 windows"),
        (lambda r: r["K"].array.__setitem__((1, 0), 17), "window 1: k must be in 1..16"),
        (lambda r: r["LENGTH"].array.__setitem__((0, 0), 0), "window 0: length must be"),
        (lambda r: r["NBLOCKS"].array.__setitem__((0, 0), 10**6), "do not fit"),
    ],
)
def test_a_bad_request_is_answered_alone(change, message):
    bad = request([task(1, 4096, 3), task(2, 4096, 3)])
    change(bad)
    good = request([task(3, 4096, 2)])
    bad_response, good_response = model("embed").execute([bad, good])
    assert bad_response.error.code == TritonError.INVALID_ARG
    assert message in bad_response.error.message
    assert good_response.error is None
    assert good_response.tensors["BATCH_SIZE"].reshape(-1).tolist() == [1]


def test_the_config_must_match_the_window():
    wrong = config("embed")
    wrong["input"][0]["dims"] = [1024]
    m = triton_model.model_class(pb, "embed")()  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="PLANE must have 32768 bytes"):
        m.initialize({"model_config": json.dumps(wrong)})


@pytest.mark.parametrize(("rows", "parts"), [(0, 2), (1, 4), (5, 3), (64, 2), (7, 7), (3, 1)])
def test_rows_are_cut_into_contiguous_spans_that_cover_them_once(rows, parts):
    spans = triton_model.row_spans(rows, parts)
    assert [i for a, b in spans for i in range(a, b)] == list(range(rows))
    assert len(spans) == min(max(parts, 1), rows)
    assert all(b > a for a, b in spans)
