"""Write the hand-made hostile inputs of ``tests/fuzz/corpus`` and their expected outcomes.

    .venv/bin/python -m tests.fuzz.make_corpus

Each target's folder holds one file per input and ``EXPECTED.json`` (file name → ``"ok"`` or
the error code it must be refused with). The files are committed: this script documents how
they were made and adds new ones; crashers found by ``bench/fuzz.py`` are copied in by hand
with the outcome decided when they were fixed. ``--check`` only verifies the folder is up to
date (every made file is there, byte for byte).
"""

from __future__ import annotations

import argparse
import io
import json
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import numpy.typing as npt

from subtone.stego import wav

CORPUS = Path(__file__).resolve().parent / "corpus"
EXPECTED = "EXPECTED.json"

PCM = 1
FLOAT = 3
ALAW = 6
EXTENSIBLE = 0xFFFE
GUID_TAIL = b"\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
MiB = 1 << 20


def chunk(cid: bytes, body: bytes, size: int | None = None, pad: bool = True) -> bytes:
    n = len(body) if size is None else size
    return struct.pack("<4sI", cid, n) + body + (b"\x00" if pad and len(body) % 2 else b"")


def fmt(
    tag: int = PCM,
    channels: int = 2,
    rate: int = 8000,
    bits: int = 16,
    block_align: int | None = None,
    extra: bytes = b"",
) -> bytes:
    align = channels * (bits // 8) if block_align is None else block_align
    body = struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits) + extra
    return chunk(b"fmt ", body)


def extension(cb_size: int = 22, valid: int = 16, mask: int = 3, sub: int = PCM) -> bytes:
    return struct.pack("<HHI", cb_size, valid, mask) + struct.pack("<I", sub) + GUID_TAIL


def riff(*chunks: bytes, size: int | None = None, form: bytes = b"WAVE", magic: bytes = b"RIFF"):
    body = form + b"".join(chunks)
    return magic + struct.pack("<I", len(body) if size is None else size) + body


def pcm(frames: int, channels: int = 2, bits: int = 16, seed: int = 1) -> bytes:
    rng = np.random.default_rng(seed)
    top = 1 << (bits - 1)
    samples = rng.integers(-top, top, size=frames * channels, dtype=np.int64)
    return wav.encode_samples(samples, bits)


def written(samples: np.ndarray, bits: int, **kwargs: object) -> bytes:
    out = io.BytesIO()
    wav.write_wav(out, samples, 8000, bits, **kwargs)  # type: ignore[arg-type]
    return out.getvalue()


def wav_cases() -> dict[str, tuple[bytes, str]]:
    stereo = pcm(100)
    rng = np.random.default_rng(7)
    cases: dict[str, tuple[bytes, str]] = {
        # Valid files, as writers make them.
        "ok_pcm16_stereo.wav": (riff(fmt(), chunk(b"data", stereo)), "ok"),
        "ok_pcm24_mono_odd.wav": (
            written(
                rng.integers(-(1 << 23), 1 << 23, size=(33, 1)),
                24,
                extra_chunks_after=[(b"LIST", b"INFOISFT\x03\x00\x00\x00ab\x00\x00")],
            ),
            "ok",
        ),
        "ok_pcm32_extensible.wav": (
            written(rng.integers(-(1 << 31), 1 << 31, size=(40, 3)), 32, extensible=True),
            "ok",
        ),
        "ok_chunks_around.wav": (
            riff(
                chunk(b"JUNK", b"\x00" * 27),
                fmt(),
                chunk(b"LIST", b"INFO"),
                chunk(b"data", stereo),
                chunk(b"id3 ", b"ID3" + b"\x00" * 10),
            ),
            "ok",
        ),
        "ok_riff_size_wrong.wav": (riff(fmt(), chunk(b"data", stereo), size=0), "ok"),
        "ok_nul_chunk_id.wav": (
            riff(chunk(b"\x00" * 4, b"xy"), fmt(), chunk(b"data", stereo)),
            "ok",
        ),
        "ok_extensible_odd_fields.wav": (
            riff(
                fmt(EXTENSIBLE, 3, bits=16, extra=extension(cb_size=400, valid=0, mask=0xFFFFFFFF)),
                chunk(b"data", pcm(10, 3)),
            ),
            "ok",
        ),
        "ok_many_chunks_under_limit.wav": (
            riff(*[chunk(b"JUNK", b"")] * 1000, fmt(), chunk(b"data", stereo)),
            "ok",
        ),
        "ok_data_after_1024_chunks.wav": (
            riff(*[chunk(b"JUNK", b"")] * 1023, fmt(), chunk(b"data", stereo)),
            "ok",
        ),
        # Written by streaming tools: sizes left as placeholders, the audio runs to the end.
        "ok_streamed_ffffffff.wav": (
            riff(fmt(), chunk(b"data", stereo, size=0xFFFFFFFF), size=0xFFFFFFFF),
            "ok",
        ),
        "ok_streamed_zero.wav": (riff(fmt(), chunk(b"data", stereo, size=0), size=0), "ok"),
        "ok_streamed_recorder_never_finished.wav": (
            riff(fmt(), chunk(b"data", b"", size=0)) + stereo,
            "ok",
        ),
        "ok_streamed_sox_pipe.wav": (
            riff(fmt(), chunk(b"data", stereo, size=0x7FFFF000), size=0x7FFFF024),
            "ok",
        ),
        "ok_streamed_partial_frame.wav": (
            riff(fmt(), chunk(b"data", stereo + b"\x01\x02\x03", size=0xFFFFFFFF)),
            "ok",
        ),
        "streamed_less_than_a_frame.wav": (
            riff(fmt(), chunk(b"data", b"\x01\x02", size=0xFFFFFFFF), size=0xFFFFFFFF),
            "empty_audio",
        ),
        "empty_data_then_chunks.wav": (
            riff(fmt(), chunk(b"data", b""), chunk(b"LIST", b"INFOabcd")),
            "empty_audio",
        ),
        # Not a WAV at all.
        "empty.wav": (b"", "not_wav"),
        "id3_mp3.wav": (b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb" * 50, "not_wav"),
        "avi_form.wav": (riff(form=b"AVI "), "not_wav"),
        "rifx.wav": (riff(fmt(), magic=b"RIFX"), "unsupported_format"),
        "rf64.wav": (riff(fmt(), magic=b"RF64"), "unsupported_format"),
        # Truncated anywhere.
        "riff_4_bytes.wav": (b"RIFF", "truncated"),
        "riff_11_bytes.wav": (b"RIFF\x00\x00\x00\x00WAV", "truncated"),
        "chunk_header_cut.wav": (riff() + b"fmt \x10\x00", "truncated"),
        "fmt_body_cut.wav": (
            riff() + struct.pack("<4sI", b"fmt ", 16) + b"\x01\x00\x02\x00",
            "truncated",
        ),
        "data_cut.wav": (riff(fmt(), chunk(b"data", stereo))[:-101], "truncated"),
        "data_beyond_file.wav": (riff(fmt(), chunk(b"data", stereo[:40], size=4000)), "truncated"),
        # Sizes that would allocate gigabytes if believed.
        "list_claims_4gb.wav": (
            riff(fmt(), chunk(b"LIST", b"INFO", size=0xFFFFFFFF)),
            "malformed_wav",
        ),
        "list_claims_60mib.wav": (
            riff(fmt(), chunk(b"LIST", b"INFO" * 10, size=60 * MiB)),
            "truncated",
        ),
        "prefix_over_64mib.wav": (
            riff(chunk(b"JUNK", b"", size=40 * MiB), chunk(b"JUNK", b"", size=40 * MiB)),
            "truncated",
        ),
        "data_claims_4gb.wav": (riff(fmt(), chunk(b"data", stereo, size=0xFFFFFFFC)), "truncated"),
        "many_tiny_chunks.wav": (riff(*[chunk(b"JUNK", b"")] * 5000), "malformed_wav"),
        "many_tiny_chunks_then_data.wav": (
            riff(*[chunk(b"JUNK", b"")] * 1100, fmt(), chunk(b"data", stereo)),
            "malformed_wav",
        ),
        # Chunks in the wrong order, missing or twice.
        "no_chunks.wav": (riff(), "no_data_chunk"),
        "fmt_only.wav": (riff(fmt()), "no_data_chunk"),
        "fmt_after_data.wav": (riff(chunk(b"data", stereo), fmt()), "malformed_wav"),
        "two_fmt.wav": (riff(fmt(), fmt(), chunk(b"data", stereo)), "malformed_wav"),
        "empty_data.wav": (riff(fmt(), chunk(b"data", b"")), "empty_audio"),
        "odd_chunk_unpadded.wav": (
            riff(chunk(b"LIST", b"abc", pad=False), fmt(), chunk(b"data", stereo)),
            "truncated",
        ),
        # fmt fields a parser must not trust.
        "fmt_too_short.wav": (
            riff(chunk(b"fmt ", b"\x01\x00" * 7), chunk(b"data", stereo)),
            "malformed_wav",
        ),
        "zero_channels.wav": (
            riff(fmt(channels=0, block_align=0), chunk(b"data", stereo)),
            "malformed_wav",
        ),
        "zero_rate.wav": (riff(fmt(rate=0), chunk(b"data", stereo)), "malformed_wav"),
        "zero_bits.wav": (riff(fmt(bits=0), chunk(b"data", stereo)), "unsupported_format"),
        "bits_8.wav": (riff(fmt(bits=8), chunk(b"data", stereo)), "unsupported_format"),
        "bits_17.wav": (
            riff(fmt(bits=17, block_align=6), chunk(b"data", stereo[:396])),
            "unsupported_format",
        ),
        "max_channels.wav": (
            riff(fmt(channels=65535, block_align=65535), chunk(b"data", stereo)),
            "malformed_wav",
        ),
        "block_align_mismatch.wav": (
            riff(fmt(block_align=3), chunk(b"data", stereo)),
            "malformed_wav",
        ),
        "data_not_whole_frames.wav": (riff(fmt(), chunk(b"data", stereo[:7])), "malformed_wav"),
        "float32.wav": (riff(fmt(FLOAT, bits=32), chunk(b"data", stereo)), "unsupported_format"),
        "alaw.wav": (riff(fmt(ALAW, bits=8), chunk(b"data", stereo)), "unsupported_format"),
        "unknown_tag.wav": (riff(fmt(0x1234), chunk(b"data", stereo)), "unsupported_format"),
        "extensible_too_short.wav": (
            riff(fmt(EXTENSIBLE, extra=b"\x00\x00"), chunk(b"data", stereo)),
            "malformed_wav",
        ),
        "extensible_cbsize_0.wav": (
            riff(fmt(EXTENSIBLE, extra=extension(cb_size=0)), chunk(b"data", stereo)),
            "malformed_wav",
        ),
        "extensible_valid_over_container.wav": (
            riff(fmt(EXTENSIBLE, extra=extension(valid=24)), chunk(b"data", stereo)),
            "malformed_wav",
        ),
        "extensible_12_in_16.wav": (
            riff(fmt(EXTENSIBLE, extra=extension(valid=12)), chunk(b"data", stereo)),
            "unsupported_format",
        ),
        "extensible_float.wav": (
            riff(
                fmt(EXTENSIBLE, bits=32, extra=extension(valid=32, sub=FLOAT)),
                chunk(b"data", stereo),
            ),
            "unsupported_format",
        ),
        "extensible_unknown_guid.wav": (
            riff(
                fmt(EXTENSIBLE, extra=struct.pack("<HHI", 22, 16, 3) + b"\xab" * 16),
                chunk(b"data", stereo),
            ),
            "unsupported_format",
        ),
        "extensible_0_channels.wav": (
            riff(
                fmt(EXTENSIBLE, channels=0, block_align=0, extra=extension()),
                chunk(b"data", stereo),
            ),
            "malformed_wav",
        ),
    }
    return cases


def frame_body(
    data: bytes = b"secret bytes",
    name: bytes = b"note.txt",
    media: bytes = b"text/plain",
    version: int = 1,
    name_len: int | None = None,
    data_len: int | None = None,
    padding: bytes = b"\x00" * 8,
) -> bytes:
    header = struct.pack(
        ">BBBI",
        version,
        len(name) if name_len is None else name_len,
        len(media),
        len(data) if data_len is None else data_len,
    )
    return header + name + media + data + padding


def frame_cases() -> dict[str, tuple[bytes, str]]:
    return {
        "ok_plain.bin": (frame_body(), "ok"),
        "ok_traversal_name.bin": (frame_body(name=b"../../../etc/passwd"), "ok"),
        "ok_windows_path_name.bin": (frame_body(name=b"C:\\Windows\\system32\\cmd.exe"), "ok"),
        "ok_nul_in_name.bin": (frame_body(name=b"a\x00b.txt"), "ok"),
        "ok_rtl_override_name.bin": (frame_body(name="invoice\u202etxt.exe".encode()), "ok"),
        "ok_device_name.bin": (frame_body(name=b"CON.txt"), "ok"),
        "ok_empty_name.bin": (frame_body(name=b""), "ok"),
        "ok_dots_name.bin": (frame_body(name=b".."), "ok"),
        "ok_255_byte_name.bin": (frame_body(name="é".encode() * 127 + b"x"), "ok"),
        "empty.bin": (b"", "corrupt_payload"),
        "too_short.bin": (b"\x01\x00\x00", "corrupt_payload"),
        "version_2.bin": (frame_body(version=2), "corrupt_payload"),
        "lengths_exceed.bin": (frame_body(data_len=0xFFFFFFFF), "corrupt_payload"),
        "name_len_exceeds.bin": (
            frame_body(name=b"", media=b"", data=b"", name_len=255, padding=b""),
            "corrupt_payload",
        ),
        "nonzero_padding.bin": (frame_body(padding=b"\x00\x01"), "corrupt_payload"),
        "bad_utf8_name.bin": (frame_body(name=b"\xff\xfe.txt"), "corrupt_payload"),
        "non_ascii_media_type.bin": (frame_body(media="téxt/plain".encode()), "corrupt_payload"),
        "media_type_no_slash.bin": (frame_body(media=b"textplain"), "corrupt_payload"),
        "media_type_empty.bin": (frame_body(media=b""), "corrupt_payload"),
        "media_type_control.bin": (frame_body(media=b"text/pl\nain"), "corrupt_payload"),
        "empty_data.bin": (frame_body(data=b""), "corrupt_payload"),
    }


def sealed_cases() -> dict[str, tuple[bytes, str]]:
    raw = 0  # mode byte: the rest is the payload itself
    framed = 1  # mode byte: the rest is a frame, sealed under the target's passphrase
    salt_nonce = b"\x11" * 28
    ct = b"\x22" * 40
    cases = {
        "raw_empty.bin": (bytes([raw]), "corrupt_payload"),
        "raw_short.bin": (bytes([raw]) + b"\x01\x01\x01\x01" + b"\x00" * 30, "corrupt_payload"),
        "raw_version_0.bin": (bytes([raw, 0, 1, 1, 1]) + salt_nonce + ct, "corrupt_payload"),
        "raw_version_255.bin": (bytes([raw, 255, 1, 1, 1]) + salt_nonce + ct, "corrupt_payload"),
        "raw_kdf_n_0.bin": (bytes([raw, 1, 0, 1, 1]) + salt_nonce + ct, "corrupt_payload"),
        "raw_kdf_n_2_21.bin": (bytes([raw, 1, 21, 1, 1]) + salt_nonce + ct, "corrupt_payload"),
        "raw_kdf_4gib.bin": (bytes([raw, 1, 20, 32, 1]) + salt_nonce + ct, "corrupt_payload"),
        "raw_kdf_n_255.bin": (bytes([raw, 1, 255, 255, 255]) + salt_nonce + ct, "corrupt_payload"),
        "raw_kdf_r_0.bin": (bytes([raw, 1, 10, 0, 1]) + salt_nonce + ct, "corrupt_payload"),
        "raw_kdf_p_5.bin": (bytes([raw, 1, 10, 1, 5]) + salt_nonce + ct, "corrupt_payload"),
        "raw_bad_tag.bin": (bytes([raw, 1, 1, 1, 1]) + salt_nonce + ct, "wrong_passphrase"),
        "raw_tag_only.bin": (
            bytes([raw, 1, 1, 1, 1]) + salt_nonce + b"\x00" * 16,
            "wrong_passphrase",
        ),
    }
    for name, (body, outcome) in frame_cases().items():
        cases[f"framed_{name}"] = (bytes([framed]) + body, outcome)
    return cases


def range_cases() -> dict[str, tuple[bytes, str]]:
    def case(size: int, header: str) -> bytes:
        return size.to_bytes(4, "little") + header.encode("latin-1")

    return {
        "ok_first_bytes.bin": (case(100, "bytes=0-9"), "ok"),
        "ok_suffix.bin": (case(100, "bytes=-10"), "ok"),
        "ok_open_end.bin": (case(100, "bytes=90-"), "ok"),
        "ok_end_past_size.bin": (case(100, "bytes=0-99999999999999999999"), "ok"),
        "ok_several_ranges_ignored.bin": (case(100, "bytes=0-1,5-6"), "ok"),
        "ok_other_unit.bin": (case(100, "items=0-1"), "ok"),
        "ok_reversed.bin": (case(100, "bytes=9-0"), "ok"),
        "ok_huge_suffix.bin": (case(100, "bytes=-99999999999999999999"), "ok"),
        "start_past_end.bin": (case(100, "bytes=100-"), "invalid_range"),
        "suffix_zero.bin": (case(100, "bytes=-0"), "invalid_range"),
        "empty_object.bin": (case(0, "bytes=-5"), "invalid_range"),
        "ok_dash_only.bin": (case(100, "bytes=-"), "ok"),
        "ok_whitespace.bin": (case(100, "  bytes=1-2  "), "ok"),
        "ok_superscript_digits.bin": (case(100, "bytes=\xb2-\xb3"), "ok"),
    }


def patch_cases() -> dict[str, tuple[bytes, str]]:
    from subtone.stego import patch

    samples = (1 << 18) + 5000  # a whole window and a short one
    rng = np.random.default_rng(11)

    def written_patch(*flips: npt.NDArray[np.int64]) -> bytes:
        out = io.BytesIO()
        writer = patch.PatchWriter(out, samples)
        for index, where in enumerate(flips):
            writer.window(index, where.astype(np.int32))
        writer.close()
        return out.getvalue()

    def window(mode: int, body: bytes, n: int | None = None) -> bytes:
        return patch.WINDOW.pack(mode, len(body) if n is None else n) + body

    header = patch.PatchHeader(samples).pack()
    sparse = np.flatnonzero(rng.random(1 << 18) < 0.03)
    dense = np.flatnonzero(rng.random(5000) < 0.4)
    empty = window(patch.MODE_INDICES, b"", 0)
    gaps = zlib.compress(patch.encode_gaps(np.array([1, 2, 3], dtype=np.uint32)))
    return {
        "ok_gaps_and_bitmap.bin": (written_patch(sparse, dense), "ok"),
        "ok_indices.bin": (written_patch(np.array([0, 7]), np.array([4999])), "ok"),
        "ok_no_flips.bin": (header + empty + empty, "ok"),
        "ok_version_1.bin": (
            patch.HEADER.pack(patch.MAGIC, 1, bytes(3), samples) + empty + empty,
            "ok",
        ),
        "gaps_in_version_1.bin": (
            patch.HEADER.pack(patch.MAGIC, 1, bytes(3), samples)
            + window(patch.MODE_GAPS, gaps)
            + empty,
            "malformed_patch",
        ),
        "gaps_bomb.bin": (
            header + window(patch.MODE_GAPS, zlib.compress(bytes(1 << 22), 9)) + empty,
            "malformed_patch",
        ),
        "gaps_past_window.bin": (
            header + empty + window(patch.MODE_GAPS, zlib.compress(bytes([0x88, 0x27]))),
            "malformed_patch",
        ),
        "gaps_not_zlib.bin": (
            header + window(patch.MODE_GAPS, b"\x00" * 9) + empty,
            "malformed_patch",
        ),
        "bitmap_wrong_size.bin": (
            header + window(patch.MODE_BITMAP, bytes(10)) + empty,
            "malformed_patch",
        ),
        "indices_past_window.bin": (
            header + empty + window(patch.MODE_INDICES, struct.pack("<I", 5000), 1),
            "malformed_patch",
        ),
        "unknown_mode.bin": (header + window(7, b"") + empty, "malformed_patch"),
        # Found by bench/fuzz.py: an index of 2**31 or more became negative when cast to
        # int32 and passed the window's bounds (it would have moved a sample before it).
        "indices_past_int32.bin": (
            header + window(patch.MODE_INDICES, struct.pack("<II", 0x88000000, 1043), 2) + empty,
            "malformed_patch",
        ),
        "cut_short.bin": (written_patch(sparse, dense)[:-1], "malformed_patch"),
        "trailing_bytes.bin": (header + empty + empty + b"x", "malformed_patch"),
        "huge_sample_count.bin": (
            patch.HEADER.pack(patch.MAGIC, 2, bytes(3), (1 << 64) - 1) + empty,
            "malformed_patch",
        ),
    }


CASES = {
    "wav": wav_cases,
    "frame": frame_cases,
    "sealed": sealed_cases,
    "range": range_cases,
    "patch": patch_cases,
}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    stale = []
    for target, make in CASES.items():
        folder = CORPUS / target
        folder.mkdir(parents=True, exist_ok=True)
        expected_path = folder / EXPECTED
        expected = json.loads(expected_path.read_text()) if expected_path.exists() else {}
        for name, (data, outcome) in make().items():
            path = folder / name
            if args.check:
                if not path.exists() or path.read_bytes() != data or expected.get(name) != outcome:
                    stale.append(f"{target}/{name}")
                continue
            path.write_bytes(data)
            expected[name] = outcome
        if not args.check:
            expected_path.write_text(json.dumps(dict(sorted(expected.items())), indent=1) + "\n")
    for name in stale:
        print(f"stale: {name}", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
