"""The cover's waveform on Encode: drawn off the GUI thread when a cover is chosen, one column
per pixel of the page, gone when the cover is."""

from __future__ import annotations

import numpy as np
import soundfile as sf

from tests.desktop.app.test_views import WAIT_MS, choose


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
