"""Where a payload goes in a cover: window keys, the payload header, capacity and allocation.

Everything here is pure arithmetic on the cover's sample count and ``k_pos``; no audio is
touched, so a client can compute capacity from a WAV header alone and the worker can plan a
job before it reads a sample.

Format v1 (see :mod:`subtone.stego.kernel` for the per-window part):

* The data chunk's samples are cut into windows of ``WINDOW_SAMPLES``; window ``i`` has the
  key ``HMAC-SHA256(k_pos, "subtone/v1/window" || i)``.
* Window 0's first :data:`HEADER_BITS` keyed positions hold the header, one bit per sample
  (k = 1). The header is ``version | k | flags(2) | payload length (4, big-endian) | tag (8)``
  where the tag is a truncated HMAC of the first 8 bytes under a key derived from ``k_pos``,
  and the 16 bytes are XORed with a mask derived from ``k_pos``: without the right key the
  header is noise, and a wrong key is told apart from a right one by the tag.
* The payload is cut into ``k``-bit Hamming blocks; blocks are dealt to windows in proportion
  to each window's capacity (so they spread over the whole cover), in window order.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path

from subtone import errors
from subtone.errors import SubtoneError
from subtone.stego import wav
from subtone.stego.window import KEY_BYTES, MAX_K, WINDOW_SAMPLES, block_size

__all__ = [
    "FORMAT_VERSION",
    "HEADER_BITS",
    "Capacity",
    "Header",
    "Plan",
    "StegoError",
    "capacity",
    "choose_k",
    "open_header",
    "plan",
    "read_capacity",
    "seal_header",
    "window_key",
]

FORMAT_VERSION = 1
HEADER_BYTES = 16
HEADER_BITS = HEADER_BYTES * 8
MAX_PAYLOAD_BYTES = (1 << 32) - 1
_HEADER_STRUCT = struct.Struct(">BBHI")
_TAG_BYTES = 8


class StegoError(SubtoneError):
    """A cover or stego file that cannot be used as asked."""

    status = 422


def _derive(k_pos: bytes, label: bytes, length: int = 32) -> bytes:
    if len(k_pos) != KEY_BYTES:
        raise ValueError(f"k_pos has {KEY_BYTES} bytes, got {len(k_pos)}")
    return hmac.new(k_pos, b"subtone/v1/" + label, hashlib.sha256).digest()[:length]


def window_key(k_pos: bytes, index: int) -> bytes:
    """The 32-byte key of window ``index`` (what Triton receives instead of ``k_pos``)."""
    return _derive(k_pos, b"window" + index.to_bytes(8, "big"))


def window_count(samples: int) -> int:
    return max(1, math.ceil(samples / WINDOW_SAMPLES))


def window_length(samples: int, index: int) -> int:
    return min(WINDOW_SAMPLES, samples - index * WINDOW_SAMPLES)


def _skip(index: int) -> int:
    return HEADER_BITS if index == 0 else 0


def _blocks_per_window(samples: int, k: int) -> list[int]:
    n = block_size(k)
    return [
        max(0, (window_length(samples, i) - _skip(i)) // n) for i in range(window_count(samples))
    ]


@dataclass(frozen=True)
class Capacity:
    """How much a cover can carry, from its sample count alone."""

    samples: int
    max_payload_bytes: int
    """The most payload bytes that fit (with k = 1, one bit per used sample)."""

    def fits(self, payload_bytes: int) -> bool:
        return 0 < payload_bytes <= self.max_payload_bytes

    def payload_bytes_at(self, k: int) -> int:
        """The most payload bytes that fit with Hamming parameter ``k``."""
        return min(MAX_PAYLOAD_BYTES, sum(_blocks_per_window(self.samples, k)) * k // 8)


def capacity(samples: int) -> Capacity:
    """The capacity of a cover with ``samples`` PCM samples (frames x channels)."""
    if samples <= HEADER_BITS:
        return Capacity(samples=samples, max_payload_bytes=0)
    total = sum(_blocks_per_window(samples, 1))
    return Capacity(samples=samples, max_payload_bytes=min(MAX_PAYLOAD_BYTES, total // 8))


def read_capacity(path: str | os.PathLike[str]) -> tuple[wav.WavInfo, Capacity]:
    """A cover's format and capacity from its header alone."""
    with Path(path).open("rb") as f:
        info, _ = wav.read_header(f)
    wav.check_file_size(info, Path(path).stat().st_size)
    return info, capacity(info.samples)


def choose_k(samples: int, payload_bytes: int) -> int:
    """The largest ``k`` whose blocks still hold the payload: fewest samples changed."""
    cap = capacity(samples)
    if payload_bytes <= 0:
        raise StegoError("There is nothing to hide: the secret is empty.", code="empty_secret")
    if payload_bytes > cap.max_payload_bytes:
        raise StegoError(
            f"The secret needs {payload_bytes:,} bytes but this cover holds at most "
            f"{cap.max_payload_bytes:,}. Use a longer cover or a smaller secret.",
            code="capacity_exceeded",
        )
    bits = payload_bytes * 8
    for k in range(MAX_K, 0, -1):
        if sum(_blocks_per_window(samples, k)) * k >= bits:
            return k
    raise AssertionError("k = 1 always fits a payload within capacity")  # pragma: no cover


@dataclass(frozen=True)
class Plan:
    """Which blocks of the payload each window carries."""

    samples: int
    k: int
    payload_bytes: int
    blocks: tuple[int, ...]
    """Blocks carried by each window, in window order."""

    @property
    def total_blocks(self) -> int:
        return sum(self.blocks)

    def bit_ranges(self) -> list[tuple[int, int]]:
        """``[start, stop)`` of each window's bits in the block-padded bit stream."""
        ranges, start = [], 0
        for count in self.blocks:
            stop = start + count * self.k
            ranges.append((start, stop))
            start = stop
        return ranges

    def skip(self, index: int) -> int:
        return _skip(index)


def plan(samples: int, payload_bytes: int, k: int | None = None) -> Plan:
    """Deal the payload's blocks to windows in proportion to their capacity."""
    if k is None:
        k = choose_k(samples, payload_bytes)
    per_window = _blocks_per_window(samples, k)
    total_capacity = sum(per_window)
    needed = math.ceil(payload_bytes * 8 / k)
    if needed > total_capacity:
        raise StegoError(
            "The payload does not fit this cover with the recorded setting.",
            code="capacity_exceeded",
        )
    blocks, seen = [], 0
    for cap in per_window:
        # floor(needed * C_{i+1} / C) - floor(needed * C_i / C) never exceeds cap.
        before = needed * seen // total_capacity
        seen += cap
        blocks.append(needed * seen // total_capacity - before)
    return Plan(samples=samples, k=k, payload_bytes=payload_bytes, blocks=tuple(blocks))


@dataclass(frozen=True)
class Header:
    k: int
    payload_bytes: int


def seal_header(k_pos: bytes, header: Header) -> bytes:
    """The 16 masked header bytes for window 0."""
    body = _HEADER_STRUCT.pack(FORMAT_VERSION, header.k, 0, header.payload_bytes)
    tag = hmac.new(_derive(k_pos, b"header-tag"), body, hashlib.sha256).digest()[:_TAG_BYTES]
    mask = _derive(k_pos, b"header-mask", HEADER_BYTES)
    return bytes(a ^ b for a, b in zip(body + tag, mask, strict=True))


def open_header(k_pos: bytes, sealed: bytes, samples: int) -> Header:
    """Unmask and check a header read from window 0; a wrong key or no payload is refused."""
    mask = _derive(k_pos, b"header-mask", HEADER_BYTES)
    plain = bytes(a ^ b for a, b in zip(sealed, mask, strict=True))
    body, tag = plain[: _HEADER_STRUCT.size], plain[_HEADER_STRUCT.size :]
    want = hmac.new(_derive(k_pos, b"header-tag"), body, hashlib.sha256).digest()[:_TAG_BYTES]
    if not hmac.compare_digest(tag, want):
        raise StegoError(errors.MESSAGES[errors.NO_PAYLOAD], code=errors.NO_PAYLOAD)
    version, k, _flags, payload_bytes = _HEADER_STRUCT.unpack(body)
    if version != FORMAT_VERSION:
        raise StegoError(
            f"This file was written by a newer Subtone (format {version}); update to read it.",
            code="unsupported_version",
        )
    header = Header(k=k, payload_bytes=payload_bytes)
    if not 1 <= k <= MAX_K or not 0 < payload_bytes <= capacity(samples).payload_bytes_at(k):
        raise StegoError(
            "The hidden message's header is damaged: the file was changed after encoding.",
            code="corrupt_stego",
        )
    return header
