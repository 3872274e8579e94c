"""Issue 12.5: WAVs whose sizes were left as placeholders by a streaming tool are read to the
end of the file, as other audio tools read them.

The corpus in ``streamed/`` was written to a pipe by sox and ffmpeg (``streamed/make.sh``); the
same is redone here through a real pipe where the tools are installed. Hand-made placeholder
files (0, 0xFFFFFFFF, a trailing partial frame...) are in the fuzz corpus.
"""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
from pathlib import Path
from typing import BinaryIO, cast

import numpy as np
import pytest
import soundfile as sf

from subtone.stego import codec, wav
from subtone.stego.engine import InProcessEngine
from tests.fuzz.targets import ShortReads

STREAMED = Path(__file__).resolve().parent / "streamed"
CORPUS = sorted(STREAMED.glob("*.wav"))
K_POS = bytes(range(32))
PIPE_TIMEOUT_SECONDS = 30


def _samples(path: Path, info: wav.WavInfo) -> np.ndarray:
    with path.open("rb") as f:
        wav.read_header(f)
        return np.concatenate(list(wav.read_windows(f, info, 4096)))


def _reference(path: Path, bits: int) -> np.ndarray:
    """What libsndfile reads from the same file, as the file's own integers."""
    frames, _ = sf.read(path, dtype="int32", always_2d=True)
    return (frames >> (32 - bits)).reshape(-1)


def test_the_corpus_is_there() -> None:
    assert {p.name.split("_")[0] for p in CORPUS} == {"sox", "ffmpeg"}


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_a_streamed_file_reads_to_its_end_like_libsndfile(path: Path) -> None:
    with path.open("rb") as f:
        info, prefix = wav.read_header(f)

    assert not info.size_known
    size = path.stat().st_size
    declared = struct.unpack_from("<I", prefix, len(prefix) - 4)[0]
    assert declared in (0, 0xFFFFFFFF) or declared > size
    assert info.data_size == (size - info.prefix_size) // info.block_align * info.block_align
    assert info.frames == sf.info(path).frames
    np.testing.assert_array_equal(_samples(path, info), _reference(path, info.bits_per_sample))
    wav.check_file_size(info, size)


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.name)
def test_a_stream_of_known_size_reads_the_same(path: Path) -> None:
    data = path.read_bytes()
    with path.open("rb") as f:
        expected, _ = wav.read_header(f)

    stream = cast(BinaryIO, ShortReads(data))
    info, _ = wav.read_header(stream, total_size=len(data))

    assert info == expected


def test_a_pipe_of_unknown_length_is_refused_for_what_it_is() -> None:
    data = CORPUS[0].read_bytes()
    with pytest.raises(wav.WavError) as caught:
        wav.read_header(cast(BinaryIO, ShortReads(data)))
    assert caught.value.code == wav.UNKNOWN_LENGTH


def test_capacity_comes_from_the_file_size() -> None:
    path = STREAMED / "sox_pcm16_mono.wav"
    info, capacity = codec.read_capacity(path)
    assert info.samples == (path.stat().st_size - info.prefix_size) // 2
    assert capacity == codec.layout.capacity(info.samples)


def test_a_streamed_cover_round_trips_byte_for_byte_outside_its_samples(tmp_path: Path) -> None:
    cover = STREAMED / "ffmpeg_pcm24_stereo.wav"
    out = tmp_path / "stego.wav"
    codec.embed_file(cover, out, k_pos=K_POS, payload=b"hello", engine=InProcessEngine())

    assert codec.extract_file(out, k_pos=K_POS, engine=InProcessEngine()) == b"hello"
    before, after = cover.read_bytes(), out.read_bytes()
    with cover.open("rb") as f:
        info, prefix = wav.read_header(f)
    end = info.prefix_size + info.data_size
    assert len(after) == len(before)
    assert after[: info.prefix_size] == prefix
    assert after[end:] == before[end:]


def test_a_trailing_partial_frame_is_kept_as_the_suffix() -> None:
    data = (STREAMED / "sox_pcm24_stereo.wav").read_bytes() + b"\x01\x02\x03"
    stream = io.BytesIO(data)
    info, prefix = wav.read_header(stream)
    samples = b"".join(
        wav.encode_samples(w, info.bits_per_sample) for w in wav.read_windows(stream, info, 999)
    )
    rest = stream.read()

    assert len(rest) == len(data) - info.prefix_size - info.data_size == 3
    assert prefix + samples + rest == data


PIPED = {
    "sox": ["sox", "-n", "-b", "16", "-t", "wav", "-", "synth", "0.2", "sine", "440"],
    "ffmpeg": [
        "ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi",
        "-i", "sine=frequency=440:duration=0.2", "-f", "wav", "-",
    ],
}  # fmt: skip


@pytest.mark.parametrize("tool", sorted(PIPED))
def test_a_file_written_through_a_pipe_now(tool: str, tmp_path: Path) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed")
    path = tmp_path / f"{tool}.wav"
    with path.open("wb") as out:
        # tool | cat > file: the tool sees a pipe and cannot seek back to write the sizes
        writer = subprocess.Popen(PIPED[tool], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        assert writer.stdout is not None
        subprocess.run(["cat"], stdin=writer.stdout, stdout=out, check=True)
        writer.stdout.close()
        assert writer.wait(PIPE_TIMEOUT_SECONDS) == 0

    with path.open("rb") as f:
        info, _ = wav.read_header(f)

    assert not info.size_known
    assert info.frames == sf.info(path).frames
