"""What travels in robust mode, and the client's steps on files: the mix and residual
objects round-trip and refuse what they are not; the client's steps (mix → server → residual →
apply) give the file an in-process embed gives, byte for byte, keeping everything but the
samples; any format soundfile reads decodes."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
import soundfile as sf

from subtone.robust import (
    apply_residual_file,
    cover_capacity,
    cover_mix,
    embed,
    embed_file,
    embed_mix,
    extract_file,
    file_mix,
    working_mix,
    write_cover_mix,
    write_file_mix,
)
from subtone.robust.core import Residual, capacity_frames
from subtone.robust.wire import (
    MALFORMED_MIX,
    MALFORMED_RESIDUAL,
    WireError,
    mix_bytes,
    read_mix,
    read_residual,
    residual_bytes,
    write_mix,
    write_residual,
)
from subtone.stego import wav

from .test_robust import _cover

RATE = 44_100
KEY = bytes(range(32))


def _wav(path, seconds=10.0, bits=16, channels=2, **chunks):
    x = _cover(seconds)
    full = float(1 << (bits - 1))
    pcm = np.stack([x, 0.7 * x][:channels], axis=1) * (full - 1)
    wav.write_wav(path, np.round(pcm).astype(np.int32), RATE, bits, **chunks)
    return path


def test_the_mix_round_trips_and_is_small():
    mix = np.linspace(-0.5, 0.5, 1000, dtype=np.float32)
    buffer = io.BytesIO()
    assert write_mix(buffer, mix) == mix_bytes(len(mix)) == len(buffer.getvalue())
    np.testing.assert_array_equal(
        read_mix(io.BytesIO(buffer.getvalue()), len(buffer.getvalue())), mix
    )
    # 64 kB per second of cover, whatever the cover's rate and channels.
    assert mix_bytes(16_000) - mix_bytes(0) == 64_000


def test_the_residual_round_trips():
    residual = Residual(100, np.linspace(-0.1, 0.1, 999).astype(np.float16), 5000)
    buffer = io.BytesIO()
    assert write_residual(buffer, residual) == residual_bytes(999)
    back = read_residual(io.BytesIO(buffer.getvalue()), len(buffer.getvalue()))
    assert (back.start, back.length) == (100, 5000)
    np.testing.assert_array_equal(back.samples, residual.samples)


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b"XXXX" + b[4:],  # not a mix
        lambda b: b[:-2],  # shorter than announced
        lambda b: b[:10],  # not even a header
        lambda b: b[:-4] + np.float32(np.nan).tobytes(),  # not a number
    ],
)
def test_a_malformed_mix_is_refused(damage):
    buffer = io.BytesIO()
    write_mix(buffer, np.zeros(100, dtype=np.float32))
    data = damage(buffer.getvalue())
    with pytest.raises(WireError) as e:
        read_mix(io.BytesIO(data), len(data))
    assert e.value.code == MALFORMED_MIX


def test_a_malformed_residual_is_refused():
    buffer = io.BytesIO()
    write_residual(buffer, Residual(4000, np.zeros(2000, dtype=np.float16), 5000))  # past the end
    with pytest.raises(WireError) as e:
        read_residual(io.BytesIO(buffer.getvalue()))
    assert e.value.code == MALFORMED_RESIDUAL
    buffer = io.BytesIO()
    write_residual(buffer, Residual(0, np.array([np.nan], dtype=np.float16), 10))
    with pytest.raises(WireError):
        read_residual(io.BytesIO(buffer.getvalue()))


@pytest.mark.parametrize("bits", [16, 24])
def test_the_split_pipeline_is_the_in_process_embed_byte_for_byte(tmp_path, bits):
    before = [(b"LIST", b"INFOISFT\x06\x00\x00\x00tests\x00")]
    after = [(b"id3 ", b"\x00" * 10)]
    cover = _wav(tmp_path / "cover.wav", bits=bits, extra_chunks_before=before,
                 extra_chunks_after=after)  # fmt: skip
    payload = os.urandom(80)
    embed_file(cover, tmp_path / "local.wav", KEY, payload)

    # The client: the mix, sent as an object; the server: the residual, sent back.
    info, mix = cover_mix(cover)
    sent = io.BytesIO()
    write_mix(sent, mix)
    received = read_mix(io.BytesIO(sent.getvalue()), len(sent.getvalue()))
    back = io.BytesIO()
    write_residual(back, embed_mix(received, KEY, payload))
    residual = read_residual(io.BytesIO(back.getvalue()), len(back.getvalue()))
    written = apply_residual_file(cover, residual, tmp_path / "split.wav", mode=0o644)

    split = (tmp_path / "split.wav").read_bytes()
    assert split == (tmp_path / "local.wav").read_bytes()
    assert written == len(split) == cover.stat().st_size
    assert (tmp_path / "split.wav").stat().st_mode & 0o777 == 0o644
    with (tmp_path / "split.wav").open("rb") as f:
        out_info, prefix = wav.read_header(f)
    assert out_info == info
    assert prefix == cover.read_bytes()[: info.prefix_size]  # header and chunks kept
    assert split.endswith(cover.read_bytes()[info.prefix_size + info.data_size :])
    assert extract_file(tmp_path / "split.wav", KEY) == payload
    # What travels: 64 kB a second up, 2 bytes a marked sample back.
    assert len(sent.getvalue()) < cover.stat().st_size / (2.7 if bits == 16 else 4)
    assert len(back.getvalue()) <= len(sent.getvalue())


def test_the_file_steps_are_the_array_embed(tmp_path):
    cover = _wav(tmp_path / "cover.wav")
    pcm, _ = sf.read(cover, dtype="int16")
    payload = b"hello robust" * 6
    embed_file(cover, tmp_path / "out.wav", KEY, payload)
    np.testing.assert_array_equal(sf.read(tmp_path / "out.wav", dtype="int16")[0],
                                  embed(pcm, RATE, KEY, payload))  # fmt: skip
    np.testing.assert_array_equal(cover_mix(cover)[1], working_mix(pcm, RATE))
    np.testing.assert_array_equal(file_mix(cover), working_mix(pcm, RATE))
    info, room = cover_capacity(cover)
    assert room == capacity_frames(info.frames, RATE) > len(payload)


def test_a_residual_for_another_cover_is_refused(tmp_path):
    cover = _wav(tmp_path / "cover.wav", seconds=6.0)
    with pytest.raises(Exception) as e:
        apply_residual_file(cover, Residual(0, np.zeros(10, np.float16), 1234), tmp_path / "o.wav")
    assert getattr(e.value, "code", "") == "residual_mismatch"
    assert not (tmp_path / "o.wav").exists()


def test_a_compressed_copy_decodes(tmp_path):
    cover = _wav(tmp_path / "cover.wav")
    payload = os.urandom(60)
    embed_file(cover, tmp_path / "stego.wav", KEY, payload)
    data, rate = sf.read(tmp_path / "stego.wav")
    flac = tmp_path / "stego.flac"
    sf.write(flac, data, rate, subtype="PCM_16")
    assert extract_file(flac, KEY) == payload
    not_audio = tmp_path / "notes.txt"
    not_audio.write_text("hello")
    with pytest.raises(Exception) as e:
        file_mix(not_audio)
    assert getattr(e.value, "code", "") == "not_audio"


def test_the_mix_written_as_it_is_made_is_the_mix(tmp_path):
    cover = _wav(tmp_path / "cover.wav", seconds=7.0)
    written = io.BytesIO()
    write_cover_mix(cover, written)
    data = written.getvalue()
    np.testing.assert_array_equal(read_mix(io.BytesIO(data), len(data)), cover_mix(cover)[1])
    flac = tmp_path / "cover.flac"
    sf.write(flac, sf.read(cover)[0], RATE, subtype="PCM_16")
    with (tmp_path / "mix").open("w+b") as f:
        f.write(b"left over from an earlier try")
        write_file_mix(flac, f)
        f.seek(0)
        data = f.read()
    np.testing.assert_array_equal(read_mix(io.BytesIO(data), len(data)), file_mix(flac))
