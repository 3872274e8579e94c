"""Robust mode: round trip, channels, wrong key vs damage, capacity, FEC, atomic file output.

Covers are short (12 s) speech-like signals so the whole module runs in a few seconds."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from subtone.robust import (
    ChannelDamaged,
    NoPayload,
    RobustError,
    capacity,
    embed,
    embed_file,
    extract,
    extract_file,
)
from subtone.robust._dsp import resample
from subtone.stego import wav

RATE = 44100
KEY = bytes(range(32))
WRONG = bytes(range(1, 33))


def _cover(seconds: float = 12.0, rate: int = RATE) -> np.ndarray:
    """Noise shaped like speech: a 1/f-ish spectrum, syllable-rate envelope, never silent."""
    rng = np.random.default_rng(2)
    n = int(seconds * rate)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / rate)
    spec /= np.maximum(f, 200.0) ** 0.8
    x = np.fft.irfft(spec, n)
    t = np.arange(n) / rate
    x *= 0.55 + 0.45 * np.sin(2 * np.pi * 3.0 * t)
    return x / np.abs(x).max() * 0.3


@pytest.fixture(scope="module")
def marked() -> tuple[np.ndarray, np.ndarray, bytes]:
    cover = _cover()
    payload = np.random.default_rng(3).integers(0, 256, 100, dtype=np.uint8).tobytes()
    return cover, embed(cover, RATE, KEY, payload), payload


def test_round_trip_clean_and_quality(marked):
    cover, stego, payload = marked
    assert stego.shape == cover.shape and stego.dtype == cover.dtype
    assert extract(stego, RATE, KEY) == payload
    snr = 10 * np.log10(np.sum(cover**2) / np.sum((stego - cover) ** 2))
    assert snr > 30  # bench/robust.py: 31.0 dB (speech), 31.3 dB (music) at full capacity


def _opus(x: np.ndarray, rate: int, kbps: int) -> tuple[np.ndarray, int]:
    b = io.BytesIO()
    sf.write(
        b,
        resample(x, rate, 48000),
        48000,
        format="OGG",
        subtype="OPUS",
        compression_level=(256 - kbps) / 250,
    )
    b.seek(0)
    return sf.read(b)[0], 48000


def _mp3(x: np.ndarray, rate: int) -> tuple[np.ndarray, int]:
    b = io.BytesIO()
    sf.write(
        b,
        x,
        rate,
        format="MP3",
        subtype="MPEG_LAYER_III",
        compression_level=(320 - 128) / 312,
        bitrate_mode="CONSTANT",
    )
    b.seek(0)
    return sf.read(b)[0], rate


@pytest.mark.parametrize(
    "channel",
    [
        pytest.param(lambda x, r: (resample(x, r, 48000), 48000), id="44.1-to-48k"),
        pytest.param(lambda x, r: (x * 0.5, r), id="gain-6dB"),
        pytest.param(lambda x, r: (x * 2.0, r), id="gain+6dB"),
        pytest.param(lambda x, r: (x[r:-r], r), id="crop-1s-both"),
        pytest.param(lambda x, r: (x[int(0.5 * r) : -int(0.25 * r)], r), id="crop-odd"),
        pytest.param(lambda x, r: (resample(x[r:], r, 48000) * 1.7, 48000), id="mix-crop-48k-gain"),
        pytest.param(_mp3, id="mp3-128k"),
    ],
)
def test_channels(marked, channel):
    _, stego, payload = marked
    y, r = channel(stego, RATE)
    assert extract(y, r, KEY) == payload


def _tonal(seconds: float = 12.0, rate: int = RATE) -> np.ndarray:
    """Chords of harmonic tones: most bands between the partials hold only leakage (the cover
    on which format r1 did not converge)."""
    t = np.arange(int(seconds * rate)) / rate
    x = np.zeros_like(t)
    chords = [[220, 277, 330], [196, 247, 294], [175, 220, 262]]
    for i in range(int(np.ceil(seconds / 2))):
        s = slice(i * 2 * rate, (i + 1) * 2 * rate)
        tt = t[s] - 2 * i
        for f in chords[i % 3]:
            for h in range(1, 8):
                x[s] += np.sin(2 * np.pi * f * h * tt) / h**1.5 * np.exp(-tt * 0.7)
    return x / np.abs(x).max() * 0.4


def test_tonal_cover_clean_and_mp3():
    cover = _tonal()
    payload = np.random.default_rng(4).integers(0, 256, 100, dtype=np.uint8).tobytes()
    stego = embed(cover, RATE, KEY, payload)
    snr = 10 * np.log10(np.sum(cover**2) / np.sum((stego - cover) ** 2))
    assert snr > 30
    assert extract(stego, RATE, KEY) == payload
    assert extract(*_mp3(stego, RATE), KEY) == payload
    # Not Opus: on a cover of pure sustained chords (no drums, no noise) Opus 64k leaves more
    # errors than the code corrects; the bench's music cover passes it (docs/robust.md).


def test_opus_64k(marked):
    _, stego, payload = marked
    y, r = _opus(stego, RATE, 64)
    assert extract(y, r, KEY) == payload


def test_wrong_key_and_unmarked_are_no_payload(marked):
    cover, stego, _ = marked
    with pytest.raises(NoPayload) as e:
        extract(stego, RATE, WRONG)
    assert e.value.code == "no_payload"
    with pytest.raises(NoPayload):
        extract(cover, RATE, KEY)


def test_destroyed_payload_is_channel_damaged(marked):
    _, stego, _ = marked
    y = stego.copy()
    n = len(y)
    # The header and the pilots at the start survive; the payload's middle is wiped out.
    y[int(0.35 * n) : int(0.8 * n)] = (
        np.random.default_rng(9).standard_normal(int(0.8 * n) - int(0.35 * n)) * 0.1
    )
    with pytest.raises(ChannelDamaged) as e:
        extract(y, RATE, KEY)
    assert e.value.code == "channel_damaged"


def test_capacity():
    assert capacity(0, RATE) == 0
    assert capacity(2.0, RATE) == 0  # all guard
    c30, c60 = capacity(30, RATE), capacity(60, 48000)
    assert c30 * 8 / 30 >= 100  # the floor: 100 payload bits per second of cover
    assert c60 > c30
    # capacity does not depend on the sample rate beyond rounding
    assert abs(capacity(60, 44100) - capacity(60, 48000)) <= 2
    cover = _cover(10.0)
    room = capacity(10.0, RATE)
    embed(cover, RATE, KEY, b"x" * room)
    with pytest.raises(RobustError) as e:
        embed(cover, RATE, KEY, b"x" * (room + 1))
    assert e.value.code == "capacity_exceeded"


def test_int16_stereo_file_round_trip_atomic(tmp_path: Path, monkeypatch):
    x = _cover(10.0)
    pcm = (np.stack([x, 0.8 * x], axis=1) * 32767).astype(np.int16)
    src, dst = tmp_path / "cover.wav", tmp_path / "out.wav"
    sf.write(src, pcm, RATE, subtype="PCM_16")
    embed_file(src, dst, KEY, b"hello robust")
    info = sf.info(dst)
    assert (info.samplerate, info.channels, info.subtype, info.frames) == (
        RATE,
        2,
        "PCM_16",
        len(x),
    )
    assert extract_file(dst, KEY) == b"hello robust"
    # A failure mid-write leaves neither a partial file nor a temp file behind.
    dst2 = tmp_path / "fail.wav"

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(wav, "encode_samples", boom)
    with pytest.raises(OSError):
        embed_file(src, dst2, KEY, b"x")
    assert not dst2.exists()
    assert [p for p in os.listdir(tmp_path) if p.endswith(".part")] == []


def test_convolutional_code_corrects_noise_and_erasures():
    from subtone.robust._fec import RATE_INV, TAIL, coded_length, conv_decode, conv_encode

    rng = np.random.default_rng(0)
    msg = rng.integers(0, 2, 2000)
    coded = conv_encode(msg)
    assert len(coded) == coded_length(2000) == RATE_INV * (2000 + TAIL)
    soft = (1.0 - 2.0 * coded) + 0.8 * rng.standard_normal(len(coded))  # ~11 % hard errors
    soft[rng.random(len(coded)) < 0.2] = 0.0  # and a fifth erased
    assert np.mean(soft * (1 - 2 * coded) < 0) > 0.05
    assert np.array_equal(conv_decode(soft), msg)


@pytest.mark.parametrize("seconds", [12.0, 10.2])
@pytest.mark.parametrize("key", [KEY, WRONG])
def test_the_search_scores_each_alignment_as_its_own_tiles_do(marked, seconds, key):
    """The alignment search scores all starts of an offset from one pass over its frames;
    each score is bit for bit the z of that alignment's own tiles (the thresholds measured
    on z stay what they were), on a full window and on a file a little shorter (10.2 s: the
    later starts see fewer columns)."""
    from subtone.robust import sync
    from subtone.robust._dsp import HOP, frame_energies, stft
    from subtone.robust.core import _EDGES, _keys, _tile_energies
    from subtone.robust.layout import CELLS, TILE_FRAMES

    _, stego, _ = marked
    mix = resample(stego, RATE, 16_000)[: int(seconds * 16_000)].astype(np.float32)
    keys = _keys(key, sync.SYNC_COLUMNS)
    max_start = sync.GUARD_FRAMES + 8
    for off in (0, 3 * HOP // 8):
        e = frame_energies(stft(mix[off:]), _EDGES)
        want = []
        for start in range(max_start + 1):
            cols = min(sync.SYNC_COLUMNS, (e.shape[0] - start) // TILE_FRAMES)
            if cols < 8:
                break
            tiles = _tile_energies(e, start, cols)
            soft = sync._soft(tiles, keys.dither[: cols * CELLS])
            want.append(sync._pilot_z(soft, tiles, keys, cols * CELLS))
        assert len(want) == max_start + 1
        np.testing.assert_array_equal(sync._start_z(e, keys, max_start), want)
    found = sync._search(mix, key)
    assert (found.z > 10) == (key == KEY)
