"""Saving a task's output: the name offered, the places refused, the copy (no Qt)."""

from __future__ import annotations

from pathlib import Path

import pytest

from desktop.app.saving import copy_with_progress, refused_target, suggested_path
from desktop.core.orchestration import Task, TaskKind, TaskStatus
from subtone.errors import SubtoneError


def _task(kind: TaskKind, input_path: Path, output: Path) -> Task:
    return Task(
        id="task_1",
        kind=kind,
        status=TaskStatus.SUCCEEDED,
        server="http://x",
        input_path=str(input_path),
        input_bytes=1,
        k_pos="ab" * 32,
        job_nonce="n",
        output_path=str(output),
    )


def test_the_stego_file_offered_is_never_the_cover(tmp_path: Path):
    downloads = tmp_path / "Downloads"
    cover = downloads / "holiday.wav"
    task = _task(TaskKind.ENCODE, cover, tmp_path / "work" / "holiday.wav")
    assert suggested_path(task, downloads) == downloads / "holiday-stego.wav"
    # A cover that already carries the suffix still gets a name of its own.
    stego_named = downloads / "song-stego.wav"
    task = _task(TaskKind.ENCODE, stego_named, tmp_path / "work" / "song-stego.wav")
    assert suggested_path(task, downloads) == downloads / "song-stego-stego.wav"


def test_a_recovered_file_keeps_its_name(tmp_path: Path):
    task = _task(TaskKind.DECODE, tmp_path / "in.wav", tmp_path / "work" / "plan.txt")
    assert suggested_path(task, tmp_path) == tmp_path / "plan.txt"


def test_the_original_input_is_refused_as_a_target(tmp_path: Path):
    cover = tmp_path / "holiday.wav"
    task = _task(TaskKind.ENCODE, cover, tmp_path / "work" / "holiday.wav")
    assert "is the original cover" in refused_target(task, tmp_path / "." / "holiday.wav")
    assert refused_target(task, tmp_path / "holiday-stego.wav") is None
    decode = _task(TaskKind.DECODE, cover, tmp_path / "work" / "plan.txt")
    assert "is the original stego file" in refused_target(decode, cover)


def test_copy_reports_progress_and_appears_whole(tmp_path: Path):
    source = tmp_path / "big.bin"
    source.write_bytes(b"x" * (9 * 1024 * 1024))
    seen: list[tuple[int, int]] = []
    target = tmp_path / "out" / "big.bin"
    target.parent.mkdir()
    assert copy_with_progress(source, target, lambda d, t: seen.append((d, t))) == 9 * 1024**2
    assert target.read_bytes() == source.read_bytes()
    assert seen[-1] == (9 * 1024**2, 9 * 1024**2) and len(seen) == 3
    assert [p.name for p in target.parent.iterdir()] == ["big.bin"]


def test_a_copy_that_fails_says_why_and_leaves_nothing(tmp_path: Path):
    source = tmp_path / "a.bin"
    source.write_bytes(b"data")
    with pytest.raises(SubtoneError, match="Could not save to") as e:
        copy_with_progress(source, tmp_path / "missing-folder" / "a.bin")
    assert e.value.code == "save_failed"
    readonly = tmp_path / "ro"
    readonly.mkdir()
    (readonly / "a.bin").mkdir()  # a folder where the file would go: replace fails
    with pytest.raises(SubtoneError, match="Could not save to"):
        copy_with_progress(source, readonly / "a.bin")
    assert [p.name for p in readonly.iterdir()] == ["a.bin"]
