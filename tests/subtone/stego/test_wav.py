"""Streaming WAV parsing: prefix + samples + suffix reassemble the original file exactly."""

from __future__ import annotations

import contextlib
import io
import struct

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from subtone.errors import SubtoneError
from subtone.stego import wav
from subtone.stego.wav import WavError, WavInfo

PCM_GUID = struct.pack("<I", 1) + b"\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
FLOAT_GUID = struct.pack("<I", 3) + PCM_GUID[4:]
MP3_GUID = struct.pack("<I", 0x55) + PCM_GUID[4:]
SHIFT = {16: 16, 24: 8, 32: 0}
SUBTYPE = {16: "PCM_16", 24: "PCM_24", 32: "PCM_32"}


class ShortReads:
    """A non-seekable stream that returns at most ``most`` bytes per read, like a socket."""

    def __init__(self, data: bytes, most: int = 7) -> None:
        self._data = io.BytesIO(data)
        self._most = most
        self.reads = 0

    def read(self, n: int = -1) -> bytes:
        self.reads += 1
        if n is None or n < 0:
            n = self._most
        return self._data.read(min(n, self._most))

    def seekable(self) -> bool:
        return False

    def seek(self, *_: object) -> int:
        raise io.UnsupportedOperation("seek")

    def tell(self) -> int:
        raise io.UnsupportedOperation("tell")


def random_samples(rng: np.random.Generator, frames: int, channels: int, bits: int) -> np.ndarray:
    top = 1 << (bits - 1)
    samples = rng.integers(-top, top, size=(frames, channels), dtype=np.int64)
    if frames:  # always exercise the extremes
        samples.flat[0] = -top
        samples.flat[-1] = top - 1
    return samples.astype(np.int32)


def make_wav(samples: np.ndarray, bits: int, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    size = wav.write_wav(buf, samples, 8000, bits, **kwargs)
    assert size == len(buf.getvalue())
    return buf.getvalue()


def split(data: bytes, window: int = 5, most: int = 7) -> tuple[WavInfo, bytes, np.ndarray, bytes]:
    """Parse ``data`` through a short-reading stream: (info, prefix, samples, suffix)."""
    stream = ShortReads(data, most)
    info, prefix = wav.read_header(stream)
    windows = list(wav.read_windows(stream, info, window))
    assert all(w.dtype == np.int32 for w in windows)
    assert all(0 < w.size <= window for w in windows)
    samples = np.concatenate(windows)
    rest = io.BytesIO()
    wav.copy_rest(stream, rest, 3)
    return info, prefix, samples, rest.getvalue()


def riff(*chunks: bytes, magic: bytes = b"RIFF", form: bytes = b"WAVE") -> bytes:
    body = form + b"".join(chunks)
    return magic + struct.pack("<I", len(body)) + body


def chunk(cid: bytes, body: bytes, size: int | None = None) -> bytes:
    size = len(body) if size is None else size
    return cid + struct.pack("<I", size) + body + b"\x00" * (len(body) & 1)


def fmt(
    tag: int = 1,
    channels: int = 2,
    rate: int = 8000,
    bits: int = 16,
    block_align: int | None = None,
    ext: bytes | None = None,
) -> bytes:
    align = channels * (bits // 8) if block_align is None else block_align
    body = struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)
    return chunk(b"fmt ", body + (ext or b""))


def extension(valid_bits: int, guid: bytes = PCM_GUID, cb_size: int = 22) -> bytes:
    return struct.pack("<HHI", cb_size, valid_bits, 3) + guid


def data(payload: bytes, size: int | None = None) -> bytes:
    return chunk(b"data", payload, size)


# --- round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [16, 24, 32])
@pytest.mark.parametrize("channels", [1, 2, 5])
@pytest.mark.parametrize("extensible", [False, True])
def test_round_trip_reassembles_the_file(bits: int, channels: int, extensible: bool) -> None:
    samples = random_samples(np.random.default_rng(bits * channels), 101, channels, bits)
    original = make_wav(samples, bits, extensible=extensible)
    info, prefix, decoded, suffix = split(original)
    assert info.bits_per_sample == info.valid_bits == bits
    assert info.channels == channels
    assert info.format_tag == (0xFFFE if extensible else 1)
    assert info.frames == 101 and info.samples == 101 * channels
    assert info.block_align == channels * bits // 8
    assert np.array_equal(decoded, samples.reshape(-1))
    assert prefix + wav.encode_samples(decoded, bits) + suffix == original


@pytest.mark.parametrize("bits", [16, 24, 32])
@pytest.mark.parametrize("channels", [1, 2, 5])
@pytest.mark.parametrize("extensible", [False, True])
def test_samples_match_soundfile(tmp_path, bits: int, channels: int, extensible: bool) -> None:
    samples = random_samples(np.random.default_rng(7), 300, channels, bits)
    path = tmp_path / "cover.wav"
    wav.write_wav(path, samples, 48000, bits, extensible=extensible)
    with path.open("rb") as f:
        info, _ = wav.read_header(f)
        decoded = np.concatenate(list(wav.read_windows(f, info, 64)))
    expected, rate = sf.read(path, dtype="int32", always_2d=True)
    assert rate == 48000
    assert np.array_equal(decoded, (expected >> SHIFT[bits]).reshape(-1))


@pytest.mark.parametrize("bits", [16, 24, 32])
@pytest.mark.parametrize("channels", [1, 2, 6])
@pytest.mark.parametrize("container", ["WAV", "WAVEX"])
def test_reads_files_written_by_libsndfile(
    tmp_path, bits: int, channels: int, container: str
) -> None:
    top = 1 << (bits - 1)
    rng = np.random.default_rng(bits + channels)
    values = rng.integers(-top, top, size=(257, channels), dtype=np.int64)
    path = tmp_path / "sf.wav"
    sf.write(path, (values << SHIFT[bits]).astype(np.int32), 22050, SUBTYPE[bits], format=container)
    raw = path.read_bytes()
    info, prefix, decoded, suffix = split(raw, window=1000, most=4096)
    assert (info.channels, info.sample_rate, info.bits_per_sample) == (channels, 22050, bits)
    assert info.format_tag == (0xFFFE if container == "WAVEX" else 1)
    assert np.array_equal(decoded, values.reshape(-1))
    assert prefix + wav.encode_samples(decoded, bits) + suffix == raw


def test_prefix_is_the_file_up_to_the_first_sample() -> None:
    samples = random_samples(np.random.default_rng(1), 10, 2, 16)
    original = make_wav(
        samples, 16, extra_chunks_before=[(b"LIST", b"INFOISFT\x03\x00\x00\x00ab\x00\x00")]
    )
    info, prefix = wav.read_header(io.BytesIO(original))
    assert len(prefix) == info.prefix_size
    assert prefix == original[: info.prefix_size]
    assert prefix.endswith(b"data" + struct.pack("<I", info.data_size))
    assert info.riff_size == len(original) - 8


def test_stream_is_left_at_the_first_sample() -> None:
    samples = np.arange(-6, 6, dtype=np.int32).reshape(-1, 2)
    original = make_wav(samples, 16)
    stream = io.BytesIO(original)
    info, _ = wav.read_header(stream)
    assert stream.tell() == info.prefix_size
    list(wav.read_windows(stream, info, 4))
    assert stream.tell() == info.prefix_size + info.data_size


def test_chunks_before_and_after_data_and_odd_padding_are_kept() -> None:
    samples = random_samples(np.random.default_rng(2), 7, 1, 24)  # 21 bytes: odd, padded
    before = [(b"LIST", b"INFOINAM\x05\x00\x00\x00abcd\x00"), (b"bext", b"x" * 3), (b"JUNK", b"")]
    after = [(b"LIST", b"INFOICMT\x01\x00\x00\x00z"), (b"cue ", b"\x01\x02\x03")]
    original = make_wav(samples, 24, extra_chunks_before=before, extra_chunks_after=after)
    info, prefix, decoded, suffix = split(original)
    assert info.data_size == 21
    assert b"bext\x03\x00\x00\x00xxx\x00" in prefix
    assert suffix.startswith(b"\x00LIST")
    assert suffix.endswith(b"cue \x03\x00\x00\x00\x01\x02\x03\x00")
    assert prefix + wav.encode_samples(decoded, 24) + suffix == original
    # libsndfile agrees on where the samples are
    expected, _ = sf.read(io.BytesIO(original), dtype="int32", always_2d=True)
    assert np.array_equal(decoded, (expected >> 8).reshape(-1))


def test_unknown_chunk_before_fmt_is_kept() -> None:
    body = np.array([1, -2, 3, -4], dtype=np.int32)
    original = riff(
        chunk(b"fact", b"\x04\x00\x00"), fmt(channels=1), data(wav.encode_samples(body, 16))
    )
    info, prefix, decoded, suffix = split(original)
    assert prefix == original[: info.prefix_size]
    assert b"fact\x03\x00\x00\x00\x04\x00\x00\x00" in prefix
    assert np.array_equal(decoded, body)
    assert suffix == b""


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    bits=st.sampled_from([16, 24, 32]),
    channels=st.integers(1, 6),
    frames=st.integers(1, 60),
    extensible=st.booleans(),
    window=st.integers(1, 50),
    most=st.integers(1, 64),
    seed=st.integers(0, 2**32 - 1),
    before=st.lists(
        st.tuples(
            st.sampled_from([b"LIST", b"JUNK", b"bext", b"fact", b"id3 "]), st.binary(max_size=9)
        ),
        max_size=3,
    ),
    after=st.lists(
        st.tuples(st.sampled_from([b"LIST", b"cue ", b"smpl"]), st.binary(max_size=9)), max_size=3
    ),
)
def test_any_valid_wav_reassembles_exactly(
    bits, channels, frames, extensible, window, most, seed, before, after
) -> None:
    samples = random_samples(np.random.default_rng(seed), frames, channels, bits)
    original = make_wav(
        samples, bits, extensible=extensible, extra_chunks_before=before, extra_chunks_after=after
    )
    info, prefix, decoded, suffix = split(original, window, most)
    assert info.samples == decoded.size == frames * channels
    assert np.array_equal(decoded, samples.reshape(-1))
    assert prefix + wav.encode_samples(decoded, bits) + suffix == original


def test_windows_may_split_frames_and_cover_all_samples() -> None:
    samples = np.arange(30, dtype=np.int32).reshape(10, 3)
    stream = io.BytesIO(make_wav(samples, 16))
    info, _ = wav.read_header(stream)
    windows = list(wav.read_windows(stream, info, 4))
    assert [w.size for w in windows] == [4] * 7 + [2]
    assert np.array_equal(np.concatenate(windows), np.arange(30))


def test_windows_are_writable() -> None:
    stream = io.BytesIO(make_wav(np.zeros((4, 1), dtype=np.int32), 24))
    info, _ = wav.read_header(stream)
    (window,) = wav.read_windows(stream, info, 100)
    window[0] = 5  # the engine may modify a window in place


def test_each_window_is_one_read_when_the_stream_allows() -> None:
    samples = np.zeros((1000, 2), dtype=np.int32)
    stream = ShortReads(make_wav(samples, 16), most=1 << 20)
    info, _ = wav.read_header(stream)
    before = stream.reads
    assert len(list(wav.read_windows(stream, info, 500))) == 4
    assert stream.reads - before == 4


def test_duration_and_sample_bytes() -> None:
    info, _ = wav.read_header(io.BytesIO(make_wav(np.zeros((4000, 2), dtype=np.int32), 24)))
    assert info.duration_seconds == pytest.approx(0.5)
    assert info.sample_bytes == 3


def test_zero_valid_bits_in_extensible_means_the_whole_container() -> None:
    original = riff(fmt(0xFFFE, 1, bits=24, ext=extension(0)), data(b"\x01\x02\x03"))
    info, _ = wav.read_header(io.BytesIO(original))
    assert info.valid_bits == 24


# --- sample coding -----------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [16, 24, 32])
def test_encode_decode_extremes(bits: int) -> None:
    top = 1 << (bits - 1)
    values = np.array([-top, -top + 1, -1, 0, 1, top - 2, top - 1], dtype=np.int64)
    raw = wav.encode_samples(values, bits)
    assert len(raw) == values.size * bits // 8
    assert np.array_equal(wav.decode_samples(raw, bits), values)


def test_24_bit_layout_is_little_endian() -> None:
    assert wav.encode_samples(np.array([0x123456, -2], dtype=np.int32), 24) == bytes.fromhex(
        "563412feffff"
    )
    decoded = wav.decode_samples(bytes.fromhex("563412000080"), 24)
    assert decoded.tolist() == [0x123456, -(1 << 23)]


@pytest.mark.parametrize("bits", [16, 24, 32])
def test_encode_takes_frames_in_row_order_from_any_layout(bits: int) -> None:
    frames = np.arange(-12, 12, dtype=np.int64).reshape(6, 4)[::2, ::-1]  # not contiguous
    raw = wav.encode_samples(frames, bits)
    assert np.array_equal(wav.decode_samples(raw, bits), frames.reshape(-1))


@pytest.mark.parametrize(
    ("bits", "value"), [(16, 32768), (16, -32769), (24, 1 << 23), (32, 1 << 31)]
)
def test_encode_refuses_values_out_of_range(bits: int, value: int) -> None:
    with pytest.raises(ValueError, match="do not fit"):
        wav.encode_samples(np.array([0, value], dtype=np.int64), bits)


def test_decode_refuses_partial_samples_and_unknown_widths() -> None:
    with pytest.raises(ValueError, match="whole 24-bit"):
        wav.decode_samples(b"\x00" * 7, 24)
    with pytest.raises(ValueError, match="bits_per_sample"):
        wav.decode_samples(b"\x00" * 8, 8)
    assert wav.decode_samples(b"", 24).size == 0


def test_encode_refuses_floats_and_unknown_widths() -> None:
    with pytest.raises(ValueError, match="integers"):
        wav.encode_samples(np.zeros(3, dtype=np.float32), 16)
    with pytest.raises(ValueError, match="bits_per_sample"):
        wav.encode_samples(np.zeros(3, dtype=np.int32), 8)
    assert wav.encode_samples(np.zeros(0, dtype=np.int32), 24) == b""


# --- bad input ---------------------------------------------------------------------------------

PCM16 = fmt(1, 2, bits=16)
FOUR_FRAMES = data(b"\x00" * 16)


def code_of(raw: bytes) -> str:
    with pytest.raises(WavError) as caught:
        wav.read_header(ShortReads(raw))
    return caught.value.code


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"", "not_wav"),
        (b"ID3\x04" + b"\x00" * 40, "not_wav"),
        (b"OggS" + b"\x00" * 40, "not_wav"),
        (riff(PCM16, FOUR_FRAMES, form=b"AVI "), "not_wav"),
        (riff(PCM16, FOUR_FRAMES, magic=b"RIFX"), "unsupported_format"),
        (riff(PCM16, FOUR_FRAMES, magic=b"RF64"), "unsupported_format"),
        (riff(PCM16, FOUR_FRAMES, magic=b"BW64"), "unsupported_format"),
        (b"RIF", "truncated"),
        (b"RIFF\x10\x00\x00\x00WA", "truncated"),
        (riff(PCM16, FOUR_FRAMES)[:15], "truncated"),  # inside a chunk header
        (riff(PCM16, FOUR_FRAMES)[:30], "truncated"),  # inside the fmt chunk
        (riff(chunk(b"LIST", b"abc"))[:-1], "truncated"),  # the pad byte is missing
        (riff(PCM16), "no_data_chunk"),
        (riff(), "no_data_chunk"),
        (riff(FOUR_FRAMES), "malformed_wav"),  # data before fmt
        (riff(PCM16, PCM16, FOUR_FRAMES), "malformed_wav"),
        (riff(PCM16, data(b"")), "empty_audio"),
        (riff(PCM16, data(b"\x00" * 6)), "malformed_wav"),  # 1.5 frames
        (riff(fmt(1, 2, bits=16, block_align=2), FOUR_FRAMES), "malformed_wav"),
        (riff(fmt(1, 0), FOUR_FRAMES), "malformed_wav"),
        (riff(fmt(1, 2, rate=0), FOUR_FRAMES), "malformed_wav"),
        (riff(chunk(b"fmt ", b"\x01\x00\x02\x00"), FOUR_FRAMES), "malformed_wav"),
        (riff(fmt(3, 2, bits=32), FOUR_FRAMES), "unsupported_format"),
        (riff(fmt(1, 2, bits=8), FOUR_FRAMES), "unsupported_format"),
        (riff(fmt(1, 2, bits=20, block_align=6), FOUR_FRAMES), "unsupported_format"),
        (riff(fmt(6, 1, bits=8), FOUR_FRAMES), "unsupported_format"),
        (riff(fmt(7, 1, bits=8), FOUR_FRAMES), "unsupported_format"),
        (riff(fmt(0x55, 2, bits=0, block_align=1), FOUR_FRAMES), "unsupported_format"),
        (riff(fmt(2, 2, bits=4, block_align=2048), FOUR_FRAMES), "unsupported_format"),
        (
            riff(fmt(0xFFFE, 2, bits=32, ext=extension(32, FLOAT_GUID)), FOUR_FRAMES),
            "unsupported_format",
        ),
        (
            riff(fmt(0xFFFE, 2, bits=16, ext=extension(16, MP3_GUID)), FOUR_FRAMES),
            "unsupported_format",
        ),
        (
            riff(fmt(0xFFFE, 2, bits=16, ext=extension(16, b"\x07" * 16)), FOUR_FRAMES),
            "unsupported_format",
        ),
        (
            riff(fmt(0xFFFE, 2, bits=24, ext=extension(20)), data(b"\x00" * 12)),
            "unsupported_format",
        ),
        (riff(fmt(0xFFFE, 2, bits=16, ext=extension(24)), FOUR_FRAMES), "malformed_wav"),
        (riff(fmt(0xFFFE, 2, bits=16, ext=extension(16, cb_size=0)), FOUR_FRAMES), "malformed_wav"),
        (riff(fmt(0xFFFE, 2, bits=16, ext=b"\x16\x00"), FOUR_FRAMES), "malformed_wav"),  # too short
        (riff(PCM16, chunk(b"LIST", b"", size=65 << 20), FOUR_FRAMES), "malformed_wav"),
        (riff(PCM16, chunk(b"JUNK", b"", size=64 << 20), FOUR_FRAMES), "malformed_wav"),
        (riff(PCM16, chunk(b"JUNK", b"", size=0xFFFFFFFF)), "malformed_wav"),
    ],
)
def test_bad_input_is_refused_with_a_code(raw: bytes, code: str) -> None:
    assert code_of(raw) == code


def test_unsupported_format_names_what_was_found() -> None:
    with pytest.raises(WavError) as caught:
        wav.read_header(io.BytesIO(riff(fmt(3, 2, bits=32), FOUR_FRAMES)))
    assert caught.value.message == "32-bit float WAV is not supported; use 16- or 24-bit PCM WAV."
    with pytest.raises(WavError, match="MP3"):
        wav.read_header(io.BytesIO(riff(fmt(0x55, 2, bits=0, block_align=1), FOUR_FRAMES)))
    with pytest.raises(WavError, match="8-bit PCM"):
        wav.read_header(io.BytesIO(riff(fmt(1, 2, bits=8), FOUR_FRAMES)))
    with pytest.raises(WavError, match="A-law"):
        wav.read_header(io.BytesIO(riff(fmt(6, 1, bits=8), FOUR_FRAMES)))


def test_hostile_chunk_size_is_refused_before_reading() -> None:
    stream = ShortReads(riff(PCM16, chunk(b"LIST", b"", size=0x7FFFFFFF)), most=1 << 20)
    with pytest.raises(WavError) as caught:
        wav.read_header(stream)
    assert caught.value.code == "malformed_wav"
    assert stream.reads == 4  # RIFF header, fmt header + body, LIST header


def test_data_shorter_than_announced_is_truncated_while_reading() -> None:
    raw = riff(PCM16, data(b"\x00" * 16, size=4000))
    stream = ShortReads(raw)
    info, _ = wav.read_header(stream)
    assert info.data_size == 4000
    windows = wav.read_windows(stream, info, 4)
    assert next(windows).size == 4
    next(windows)
    with pytest.raises(WavError) as caught:
        next(windows)
    assert caught.value.code == "truncated"


def test_check_file_size() -> None:
    raw = riff(PCM16, data(b"\x00" * 16, size=4000))
    info, _ = wav.read_header(io.BytesIO(raw))
    with pytest.raises(WavError) as caught:
        wav.check_file_size(info, len(raw))
    assert caught.value.code == "truncated"
    wav.check_file_size(info, info.prefix_size + 4000)
    wav.check_file_size(info, info.prefix_size + 5000)


def test_read_windows_refuses_an_empty_window() -> None:
    stream = io.BytesIO(riff(PCM16, FOUR_FRAMES))
    info, _ = wav.read_header(stream)
    with pytest.raises(ValueError, match="window_samples"):
        next(wav.read_windows(stream, info, 0))


def test_wav_error_is_a_subtone_error() -> None:
    with pytest.raises(SubtoneError) as caught:
        wav.read_header(io.BytesIO(b"not a wav file at all"))
    assert isinstance(caught.value, WavError)
    assert caught.value.status == 422
    assert caught.value.to_dict()["error"]["code"] == "not_wav"


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_arbitrary_bytes_give_a_wav_error_or_a_result(raw: bytes) -> None:
    with contextlib.suppress(WavError):
        wav.read_header(ShortReads(raw))


@settings(max_examples=400, deadline=None)
@given(
    extensible=st.booleans(),
    edits=st.lists(st.tuples(st.integers(0, 100), st.integers(0, 255)), max_size=4),
    cut=st.integers(0, 120),
)
def test_damaged_headers_give_a_wav_error_or_a_result(extensible, edits, cut) -> None:
    raw = bytearray(
        make_wav(
            np.zeros((8, 2), dtype=np.int32),
            24,
            extensible=extensible,
            extra_chunks_before=[(b"LIST", b"INFOabc")],
            extra_chunks_after=[(b"JUNK", b"z")],
        )
    )
    for offset, value in edits:
        if offset < len(raw):
            raw[offset] = value
    stream = ShortReads(bytes(raw[: len(raw) - cut]))
    try:
        info, prefix = wav.read_header(stream)
        assert len(prefix) == info.prefix_size
        for window in wav.read_windows(stream, info, 5):
            assert window.dtype == np.int32
    except WavError:
        pass


# --- writing -----------------------------------------------------------------------------------


def test_write_wav_stream_refuses_a_wrong_frame_count() -> None:
    block = np.zeros((4, 2), dtype=np.int32)
    with pytest.raises(ValueError, match="announced"):
        wav.write_wav_stream(
            io.BytesIO(), [block], frames=5, channels=2, rate=8000, bits_per_sample=16
        )
    with pytest.raises(ValueError, match="more than"):
        wav.write_wav_stream(
            io.BytesIO(), [block, block], frames=5, channels=2, rate=8000, bits_per_sample=16
        )
    with pytest.raises(ValueError, match="whole"):
        wav.write_wav_stream(
            io.BytesIO(), [np.zeros(3)], frames=5, channels=2, rate=8000, bits_per_sample=16
        )
    with pytest.raises(ValueError, match="bits_per_sample"):
        wav.write_wav(io.BytesIO(), np.zeros((4, 1), dtype=np.int32), 8000, 8)


def test_write_wav_stream_writes_blocks_in_order() -> None:
    blocks = [np.arange(6).reshape(3, 2), np.arange(6, 10)]
    buf = io.BytesIO()
    wav.write_wav_stream(buf, blocks, frames=5, channels=2, rate=8000, bits_per_sample=24)
    _, _, decoded, suffix = split(buf.getvalue())
    assert np.array_equal(decoded, np.arange(10))
    assert suffix == b""


def test_generate_cover_is_deterministic_and_does_not_clip(tmp_path) -> None:
    a, b, c = tmp_path / "a.wav", tmp_path / "b.wav", tmp_path / "c.wav"
    size = wav.generate_cover(a, 1.6, 44100, 2, 24, seed=3)
    wav.generate_cover(b, 1.6, 44100, 2, 24, seed=3)
    wav.generate_cover(c, 1.6, 44100, 2, 24, seed=4)
    assert a.stat().st_size == size
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    with a.open("rb") as f:
        info, _ = wav.read_header(f)
        wav.check_file_size(info, size)
        assert (info.frames, info.channels, info.bits_per_sample) == (70560, 2, 24)
        peak = max(int(np.abs(w).max()) for w in wav.read_windows(f, info, 1 << 16))
    assert (1 << 23) // 10 < peak < (1 << 23) // 2
    expected, _ = sf.read(a, dtype="int32")
    assert expected.shape == (70560, 2)


def test_public_names() -> None:
    assert set(wav.__all__) == {
        "EMPTY_AUDIO",
        "MALFORMED_WAV",
        "MAX_METADATA_CHUNK_BYTES",
        "MAX_PREFIX_BYTES",
        "MAX_PREFIX_CHUNKS",
        "NOT_WAV",
        "NO_DATA_CHUNK",
        "SUPPORTED_BITS",
        "TRUNCATED",
        "UNKNOWN_LENGTH",
        "UNKNOWN_SIZE_MARKERS",
        "UNSUPPORTED_FORMAT",
        "WavError",
        "WavInfo",
        "check_file_size",
        "copy_rest",
        "decode_samples",
        "encode_samples",
        "generate_cover",
        "read_header",
        "read_raw_windows",
        "read_windows",
        "write_wav",
        "write_wav_stream",
    }
    assert all(hasattr(wav, name) for name in wav.__all__)
