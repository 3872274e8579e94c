"""The payload's bits read and written in runs, as the codec's windows take and give them."""

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from subtone.errors import SubtoneError
from subtone.stego._bitstream import BitReader, BitWriter

runs = st.lists(st.integers(0, 200), min_size=1, max_size=12)


@settings(max_examples=80, deadline=None)
@given(data=st.binary(min_size=0, max_size=48), lengths=runs)
def test_reader_gives_consecutive_runs_then_zeros(data, lengths):
    reader = BitReader(io.BytesIO(data), len(data))
    stream = np.unpackbits(np.frombuffer(data, np.uint8))
    at = 0
    for n in lengths:
        got = reader.take(n)
        assert got.size == (n + 7) // 8
        want = np.zeros(got.size * 8, np.uint8)
        part = stream[at : at + n]
        want[: part.size] = part
        np.testing.assert_array_equal(np.unpackbits(got), want)
        at += n


def test_reader_reads_exactly_the_payload():
    stream = io.BytesIO(b"\xff" * 5 + b"after")
    reader = BitReader(stream, 5)
    assert np.unpackbits(reader.take(60)).tolist() == [1] * 40 + [0] * 24
    assert stream.read() == b"after"


def test_a_short_stream_is_truncated():
    with pytest.raises(SubtoneError) as caught:
        BitReader(io.BytesIO(b"ab"), 3).take(24)
    assert caught.value.code == "truncated"


@settings(max_examples=80, deadline=None)
@given(data=st.binary(min_size=1, max_size=48), lengths=runs, size=st.integers(0, 48))
def test_writer_joins_runs_and_keeps_the_payload_only(data, lengths, size):
    bits = np.unpackbits(np.frombuffer(data, np.uint8))
    sink = io.BytesIO()
    writer = BitWriter(sink, size)
    joined = []
    for n in lengths:
        run = np.resize(bits, n)  # any bits
        joined.append(run)
        writer.write(np.packbits(run), n)
    writer.close()
    everything = np.packbits(np.concatenate(joined)).tobytes()
    assert sink.getvalue() == everything[:size]


def test_writer_ignores_bits_past_the_run():
    sink = io.BytesIO()
    writer = BitWriter(sink, 2)
    writer.write(np.array([0xFF], np.uint8), 3)
    writer.write(np.array([0x00, 0xFF], np.uint8), 9)  # 0000_0000 1, then ignored
    writer.close()
    assert sink.getvalue() == bytes([0b1110_0000, 0b0001_0000])
