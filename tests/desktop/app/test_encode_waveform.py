"""Pictures on Encode: the cover's waveform, drawn off the GUI thread when a cover is chosen
(one column per pixel of the page, gone when the cover is); after an encode, the stego file
set against the cover (what changed, how loud the difference is, where it lies)."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from desktop.app.encode_view import describe_difference
from desktop.audio.compare import Difference
from tests.desktop.app.test_views import SECRET, WAIT_MS, choose, encode, finished
from tests.desktop.app_support import write_wav


def test_the_covers_waveform_is_drawn_when_it_is_chosen(qtbot, window, desktop_dialogs, tmp_path):
    cover = tmp_path / "voice.wav"
    rate = 8000
    t = np.arange(rate * 20) / rate
    loudness = np.where(t < 10, 0.1, 0.6)  # quiet, then loud
    sf.write(cover, (np.sin(2 * np.pi * 440 * t) * loudness).astype(np.float32), rate)
    window.show_screen("encode")
    view = window.encode_view
    assert not view.cover_wave.isVisible()
    choose(qtbot, window, desktop_dialogs, "encode.cover", cover)
    assert view.cover_wave.isVisible()
    qtbot.waitUntil(lambda: view.cover_drawn, timeout=WAIT_MS)
    columns = view.cover_wave._columns
    assert len(columns) >= view.cover.width()  # a column per pixel, at least
    half = len(columns) // 2
    assert abs(columns[: half - 2, 1].max() - 0.1) < 0.01
    assert abs(columns[half + 2 :, 1].min() - 0.6) < 0.01
    assert "every sample" in view.cover_wave.toolTip()

    view.cover.set_path(None)
    assert not view.cover_wave.isVisible() and not view.cover_drawn


def test_a_cover_that_is_not_a_wav_gets_no_waveform(qtbot, window, desktop_dialogs, tmp_path):
    bogus = tmp_path / "notes.wav"
    bogus.write_bytes(b"not audio at all")
    window.show_screen("encode")
    choose(qtbot, window, desktop_dialogs, "encode.cover", bogus)
    assert not window.encode_view.cover_wave.isVisible()


def test_after_an_encode_the_change_is_shown_against_the_cover(
    qtbot, window, desktop_dialogs, tmp_path
):
    cover = write_wav(tmp_path / "cover.wav", 8000 * 30)
    secret = tmp_path / "plan.txt"
    secret.write_bytes(SECRET)
    view = encode(qtbot, window, desktop_dialogs, cover, secret)
    assert not view.diff_section.isVisible()
    qtbot.waitUntil(lambda: finished(view), timeout=WAIT_MS)
    assert view.diff_section.isVisible()
    qtbot.waitUntil(lambda: view.difference is not None, timeout=WAIT_MS)
    diff = view.difference
    assert diff.frames == 8000 * 30 and 0 < diff.changed < diff.samples
    assert diff.max_step == 1  # ±1 on the lowest bit, nothing more
    assert diff.snr_db > 60
    assert view.diff_label.text() == describe_difference(diff)
    assert "far too quiet to hear" in view.diff_label.text()
    columns = view.diff_wave._columns
    assert len(columns) > 0 and columns.min() >= -1 and columns.max() <= 1


def test_the_change_is_described_plainly():
    diff = Difference(
        frames=240_000,
        samples=240_000,
        changed=2_310,
        max_step=1,
        cover_dbfs=-20.4,
        difference_dbfs=-110.6,
        columns=np.zeros((1, 2), dtype=np.float32),
    )
    assert describe_difference(diff) == (
        "2,310 of 240,000 samples changed (1.0%), none by more than one step of the lowest "
        "bit. The difference lies at −111\u00a0dBFS, 90\u00a0dB below the cover (−20\u00a0dBFS): "
        "far too quiet to hear."
    )
    same = Difference(240_000, 240_000, 0, 0, -20.0, -200.0, np.zeros((1, 2), np.float32))
    assert describe_difference(same) == "The stego file is identical to the cover."
