"""Reading the cover (its LSB plane, or its working mix) while the passphrase's key is derived:
the file appears while the block still runs, is what upload_inputs would have written, and a
block that fails leaves nothing behind."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from desktop.core.orchestration import ProgressEvent, Stage
from desktop.core.orchestration.store import TaskMode
from desktop.core.orchestration.transfer import read_ahead, write_lsb_plane, write_mix
from subtone.stego.wav import generate_cover
from subtone.stego.window import WINDOW_SAMPLES

WAIT_SECONDS = 30.0


@pytest.fixture
def cover(tmp_path: Path) -> Path:
    path = tmp_path / "cover.wav"
    generate_cover(path, 3.0, rate=8000, channels=2, bits=16, seed=3)
    return path


def wait_for(path: Path) -> bool:
    """Whether ``path`` appears within WAIT_SECONDS (polled: the writer is another thread)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if path.is_file():
            return True
        time.sleep(0.01)
    return False


@pytest.mark.parametrize("mode", [TaskMode.LSB, TaskMode.ROBUST])
def test_the_file_is_written_while_the_block_runs(cover: Path, tmp_path: Path, mode: TaskMode):
    target, expected = tmp_path / "ahead", tmp_path / "expected"
    events: list[ProgressEvent] = []
    with read_ahead(cover, target, mode=mode, cover=True, progress=events.append):
        assert wait_for(target)  # the block has not ended: the thread wrote it meanwhile
    if mode is TaskMode.ROBUST:
        write_mix(cover, expected, cover=True, progress=None)
    else:
        write_lsb_plane(cover, expected, progress=None)
    assert target.read_bytes() == expected.read_bytes()
    assert events and {e.stage for e in events} == {Stage.PLANE}
    assert events[-1].done == events[-1].total


def test_a_block_that_fails_leaves_nothing(cover: Path, tmp_path: Path):
    target = tmp_path / "ahead.plane"
    with (
        pytest.raises(RuntimeError),
        read_ahead(cover, target, mode=TaskMode.LSB, cover=True, progress=None),
    ):
        raise RuntimeError("wrong passphrase")
    assert list(tmp_path.glob("ahead*")) == []


def test_a_block_that_fails_stops_the_reading(tmp_path: Path):
    """The thread is stopped at its next piece, not left to read the whole file: the block
    fails while the reader waits on its first window, and of the cover's 24 windows no more
    than a few are read after it (the rest would take the reader tens of milliseconds; the
    stop is a few statements of the failing thread)."""
    cover = tmp_path / "long.wav"
    generate_cover(cover, 24 * WINDOW_SAMPLES / 2 / 8000, rate=8000, channels=2, bits=16, seed=4)
    target = tmp_path / "ahead.plane"
    pieces: list[ProgressEvent] = []
    failed = threading.Event()

    def progress(event: ProgressEvent) -> None:
        pieces.append(event)
        if len(pieces) == 2:  # the header, then the first window
            failed.wait(WAIT_SECONDS)

    with (
        pytest.raises(RuntimeError),
        read_ahead(cover, target, mode=TaskMode.LSB, cover=True, progress=progress),
    ):
        deadline = time.monotonic() + WAIT_SECONDS
        while len(pieces) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        failed.set()
        raise RuntimeError("wrong passphrase")
    assert 2 <= len(pieces) < 24 and pieces[-1].done < pieces[-1].total
    assert list(tmp_path.glob("ahead*")) == []


def test_a_file_it_cannot_read_is_left_to_upload_inputs(tmp_path: Path):
    """Not a WAV (a decode of an OGG file): nothing is written and nothing is raised here;
    upload_inputs reads it again and says why."""
    source = tmp_path / "voice.ogg"
    source.write_bytes(b"OggS" + bytes(100))
    target = tmp_path / "ahead.plane"
    with read_ahead(source, target, mode=TaskMode.LSB, cover=False, progress=None):
        pass
    assert not target.exists()
    assert list(tmp_path.glob("*.plane*")) == []


def test_a_file_already_there_is_kept(cover: Path, tmp_path: Path):
    """An interrupted run's plane is what the next run resumes: it is not written again."""
    target = tmp_path / "ahead.plane"
    target.write_bytes(b"an earlier run's plane")
    with read_ahead(cover, target, mode=TaskMode.LSB, cover=True, progress=None):
        pass
    assert target.read_bytes() == b"an earlier run's plane"
