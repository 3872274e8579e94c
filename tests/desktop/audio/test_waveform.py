"""Waveform decimation and the scrolling view."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import soundfile as sf

from desktop.audio.waveform import (
    ScrollingWaveform,
    min_max_columns,
    overview_of_file,
    to_mono,
    waveform_of_file,
)


def test_min_max_columns_cover_every_sample():
    samples = np.arange(100, dtype=np.float32) / 100
    columns = min_max_columns(samples, 10)
    assert columns.shape == (10, 2)
    assert columns[0].tolist() == pytest.approx([0.0, 0.09])
    assert columns[-1].tolist() == pytest.approx([0.9, 0.99])


def test_min_max_columns_with_few_samples_and_stereo():
    stereo = np.array([[1.0, -1.0], [0.5, 0.5]], dtype=np.float32)
    assert to_mono(stereo).tolist() == [0.0, 0.5]
    columns = min_max_columns(stereo, 100)
    assert columns.tolist() == [[0.0, 0.0], [0.5, 0.5]]
    assert min_max_columns(np.zeros(0), 5).shape == (0, 2)
    with pytest.raises(ValueError):
        min_max_columns(stereo, 0)


def test_scrolling_view_keeps_the_last_columns_in_order():
    view = ScrollingWaveform(columns=4, samples_per_column=10)
    view.push(np.full(15, 0.1, dtype=np.float32))  # one column closed, five samples pending
    assert len(view) == 1
    view.push(np.full(5, 0.2, dtype=np.float32))  # closes the second column (half 0.1, half 0.2)
    np.testing.assert_allclose(view.columns(), [[0.1, 0.1], [0.1, 0.2]])
    for value in (0.3, 0.4, 0.5):
        view.push(np.full(10, value, dtype=np.float32))
    assert len(view) == 4
    assert view.columns()[:, 1].tolist() == pytest.approx([0.2, 0.3, 0.4, 0.5])
    view.clear()
    assert len(view) == 0


def test_scrolling_view_takes_a_block_longer_than_the_view():
    view = ScrollingWaveform(columns=3, samples_per_column=2)
    view.push(np.arange(20, dtype=np.float32))
    assert view.columns()[:, 0].tolist() == [14.0, 16.0, 18.0]


def test_for_rate_sizes_columns_to_the_seconds_shown():
    view = ScrollingWaveform.for_rate(48_000, seconds=6.0, columns=600)
    assert view.samples_per_column == 480


@pytest.mark.parametrize(("frames", "columns", "block"), [(10_007, 600, 1000), (50, 600, 7)])
def test_waveform_of_a_file_is_read_in_blocks_and_matches_the_whole(
    tmp_path, frames, columns, block
):
    rng = np.random.default_rng(3)
    stereo = rng.uniform(-1, 1, (frames, 2)).astype(np.float32)
    path = tmp_path / "long.wav"
    sf.write(path, stereo, 16_000, subtype="FLOAT")
    streamed = waveform_of_file(path, columns, block_frames=block)
    np.testing.assert_allclose(streamed, min_max_columns(stereo, columns), atol=1e-6)


def test_waveform_of_an_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros((0, 1), dtype=np.float32), 16_000)
    assert waveform_of_file(path, 600).shape == (0, 2)


def ramp_file(path, frames: int, rate: int = 8000):
    """A 1 kHz tone whose amplitude grows linearly from 0 to 0.9 over the file."""
    t = np.arange(frames) / rate
    data = (np.sin(2 * np.pi * 1000 * t) * 0.9 * np.arange(frames) / frames).astype(np.float32)
    sf.write(path, data, rate, subtype="PCM_16")
    return data


def test_the_overview_of_a_short_file_reads_every_sample(tmp_path):
    path = tmp_path / "short.wav"
    ramp_file(path, 40_000)
    overview = overview_of_file(path, 100, exact_up_to=40_000)
    assert overview.exact and (overview.frames, overview.samplerate) == (40_000, 8000)
    np.testing.assert_array_equal(overview.columns, waveform_of_file(path, 100))


def test_the_overview_of_a_long_file_is_sampled_and_keeps_its_shape(tmp_path):
    path = tmp_path / "long.wav"
    data = ramp_file(path, 400_000)
    overview = overview_of_file(path, 80, exact_up_to=100_000, window_frames=256)
    assert not overview.exact
    assert overview.columns.shape == (80, 2)
    exact = min_max_columns(data, 80)
    # Each column is the peak of a slice of its span: at most what the whole span holds, and
    # close to it (the tone repeats every 8 samples; the ramp barely moves within a column).
    assert (overview.columns[:, 1] <= exact[:, 1] + 1e-4).all()
    np.testing.assert_allclose(overview.columns[:, 1], exact[:, 1], atol=0.02)
    np.testing.assert_allclose(overview.columns[:, 0], exact[:, 0], atol=0.02)


def test_the_overview_of_a_large_file_never_holds_it_whole(tmp_path):
    path = tmp_path / "large.wav"
    frames = 12_000_000  # 24 MB on disk, 48 MB as float32 samples: past the exact limit
    with sf.SoundFile(path, "w", 8000, 1, subtype="PCM_16") as f:
        block = (np.sin(np.arange(400_000) / 7) * 0.5).astype(np.float32)
        for _ in range(frames // block.size):
            f.write(block)
    tracemalloc.start()
    try:
        overview = overview_of_file(path, 1000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not overview.exact and overview.columns.shape == (1000, 2)
    assert peak < 2_000_000, peak
    assert overview.columns[:, 1].max() == pytest.approx(0.5, abs=0.01)


def test_the_overview_of_a_file_cut_short_draws_what_is_there(tmp_path):
    path = tmp_path / "cut.wav"
    ramp_file(path, 200_000)
    with path.open("r+b") as f:
        f.truncate(44 + 2 * 100_000)  # half the samples are gone; the header still says all
    overview = overview_of_file(path, 50, exact_up_to=1000, window_frames=100)
    assert overview.frames == 100_000 and len(overview.columns) == 50
    assert overview.columns[-1, 1] == pytest.approx(0.45, abs=0.01)  # half way up the ramp
