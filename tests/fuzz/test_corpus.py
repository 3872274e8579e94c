"""Replay the hostile-input corpus, and fuzz each parser briefly with hypothesis.

Every input must give a result or the project's own error, and the *expected* one (its
``EXPECTED.json``); never another exception, a hang (a per-input alarm) or an allocation out
of proportion with the input (tracemalloc's peak): a 100-byte header claiming a 4 GB chunk
must not allocate 4 GB. ``bench/fuzz.py`` runs the same targets for minutes with atheris.
"""

from __future__ import annotations

import json
import signal
import struct
import sys
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fuzz import make_corpus
from tests.fuzz.targets import TARGETS

CORPUS = Path(__file__).resolve().parent / "corpus"
INPUT_TIMEOUT_SECONDS = 5.0
ALLOCATION_BASE_BYTES = 16 << 20
ALLOCATION_PER_INPUT_BYTE = 4
"""Peak Python allocation allowed for one input: a fixed allowance plus a few copies of it."""


class InputTimeout(Exception):
    pass


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise :class:`InputTimeout` in this thread after ``seconds`` (pytest-timeout's own
    alarm is put back afterwards)."""

    def expire(signum: int, frame: object) -> None:
        raise InputTimeout(f"no answer within {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    outer = signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer[0]:
            signal.setitimer(signal.ITIMER_REAL, *outer)


def corpus_files() -> list[tuple[str, Path]]:
    return [
        (target, path)
        for target in sorted(TARGETS)
        for path in sorted((CORPUS / target).iterdir())
        if path.name != make_corpus.EXPECTED
    ]


def expected(target: str) -> dict[str, str]:
    result: dict[str, str] = json.loads((CORPUS / target / make_corpus.EXPECTED).read_text())
    return result


@pytest.mark.parametrize(("target", "path"), corpus_files(), ids=lambda v: getattr(v, "name", v))
def test_corpus_input_gives_its_expected_outcome(target: str, path: Path) -> None:
    data = path.read_bytes()
    want = expected(target).get(path.name)
    assert want is not None, f"{target}/{path.name} has no entry in {make_corpus.EXPECTED}"
    tracemalloc.start()
    try:
        with time_limit(INPUT_TIMEOUT_SECONDS):
            outcome = TARGETS[target](data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outcome == want
    assert peak < ALLOCATION_BASE_BYTES + ALLOCATION_PER_INPUT_BYTE * len(data), peak


def test_every_target_has_a_corpus() -> None:
    assert {target for target, _ in corpus_files()} == set(TARGETS)
    for target in TARGETS:
        files = {p.name for p in (CORPUS / target).iterdir()} - {make_corpus.EXPECTED}
        assert set(expected(target)) == files


def test_hand_made_corpus_is_up_to_date(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["make_corpus", "--check"])
    assert make_corpus.main() == 0


# --- brief random fuzzing (bench/fuzz.py runs it for minutes) -------------------------------


@pytest.mark.parametrize("target", sorted(TARGETS))
@settings(max_examples=300)
@given(data=st.binary(max_size=2048))
def test_random_bytes_give_a_result_or_our_error(target: str, data: bytes) -> None:
    TARGETS[target](data)


def _chunk(cid: bytes, body: bytes, size: int | None) -> bytes:
    return struct.pack("<4sI", cid, len(body) if size is None else size) + body


chunk_ids = st.sampled_from([b"fmt ", b"data", b"LIST", b"JUNK", b"fact", b"\x00\x00\x00\x00"])
sizes = st.one_of(
    st.none(), st.integers(0, 64), st.sampled_from([0xFFFFFFFF, 0xFFFFFFFE, 1 << 26, 1 << 31])
)


@st.composite
def fmt_bodies(draw: st.DrawFn) -> bytes:
    tag = draw(st.sampled_from([1, 3, 6, 0xFFFE, draw(st.integers(0, 0xFFFF))]))
    channels = draw(st.sampled_from([0, 1, 2, 3, 8, 0xFFFF]))
    bits = draw(st.sampled_from([0, 8, 12, 16, 20, 24, 32, 64]))
    align = draw(st.one_of(st.just(channels * (bits // 8) & 0xFFFF), st.integers(0, 0xFFFF)))
    rate = draw(st.sampled_from([0, 1, 8000, 44100, 0xFFFFFFFF]))
    body = struct.pack("<HHIIHH", tag, channels, rate, (rate * align) & 0xFFFFFFFF, align, bits)
    if tag == 0xFFFE or draw(st.booleans()):
        cb = draw(st.sampled_from([0, 22, 0xFFFF]))
        valid = draw(st.sampled_from([0, bits, 12, 24, 0xFFFF]))
        sub = draw(st.sampled_from([1, 3, 0x55])).to_bytes(4, "little")
        tail = (
            make_corpus.GUID_TAIL
            if draw(st.booleans())
            else draw(st.binary(min_size=12, max_size=12))
        )
        body += struct.pack("<HHI", cb, valid, draw(st.integers(0, 0xFFFFFFFF))) + sub + tail
    return body[: draw(st.integers(0, len(body)))] if draw(st.booleans()) else body


@st.composite
def wav_structures(draw: st.DrawFn) -> bytes:
    """RIFF files of plausible chunks with hostile fields: deeper than random bytes get."""
    chunks = []
    for _ in range(draw(st.integers(0, 6))):
        cid = draw(chunk_ids)
        body = draw(fmt_bodies()) if cid == b"fmt " else draw(st.binary(max_size=96))
        chunks.append(_chunk(cid, body, draw(sizes)))
    body = b"WAVE" + b"".join(chunks)
    riff_size = draw(st.one_of(st.just(len(body)), st.integers(0, 0xFFFFFFFF)))
    data = b"RIFF" + struct.pack("<I", riff_size) + body
    return data[: draw(st.integers(0, len(data)))] if draw(st.booleans()) else data


@settings(max_examples=500)
@given(data=wav_structures())
def test_structured_wavs_give_a_result_or_our_error(data: bytes) -> None:
    TARGETS["wav"](data)
