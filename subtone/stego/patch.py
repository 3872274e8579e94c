"""The patch: an embed's result, the samples whose LSB must flip, window by window.

The server computes *which* samples change from the LSB plane alone; only the client, which
holds the cover, changes them: each flipped sample moves by ±1 with the keyed sign, and a
sample at full scale moves inwards (:func:`subtone.stego.pcm.apply_flips` semantics). The
stego file is byte-identical to an in-process embed of the same inputs.

Object format (version 2), little-endian::

    magic "STPT" | version u8 | reserved 3 bytes (0) | samples u64
    then, for each window in order:  mode u8 | n u32 | body
      mode 0: n window-relative sample indices (u32, ascending)
      mode 1: a bitmap of the window's samples, n = ceil(length / 8) bytes (LSB first)
      mode 2: n bytes of zlib (RFC 1950): the gaps before each flip (index minus the previous
              index minus one; the first is the index itself) as LEB128 varints

A window takes whichever mode is smaller, so a short secret costs a few bytes per window and
a secret that fills the cover never costs more than its plane. The gaps (mode 2) come within
a few per cent of the entropy of a window's flips when they are spread at random, as the
keyed positions spread them: 3.8 % of a window's samples flipped (a 1 MB secret in a 100 MB
cover) cost about 0.24 bits a sample, not the bitmap's 1. Version 1 (no mode 2) still reads.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
import sys
import tempfile
import threading
import zlib
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

import numpy as np
import numpy.typing as npt

from subtone.errors import SubtoneError
from subtone.stego import layout, wav
from subtone.stego.pcm import (
    apply_flips_across,
    apply_flips_pcm,
    apply_flips_pcm_across,
    sign_key,
)
from subtone.stego.window import WINDOW_SAMPLES, FlipMap

__all__ = [
    "HEADER",
    "MAGIC",
    "MALFORMED_PATCH",
    "MEDIA_TYPE",
    "PatchError",
    "PatchWriter",
    "StegoDraft",
    "apply_patch",
    "apply_patch_file",
    "read_patch",
]

MAGIC: Final = b"STPT"
VERSION: Final = 2
READABLE_VERSIONS: Final = frozenset({1, 2})
HEADER: Final = struct.Struct("<4sB3sQ")
WINDOW: Final = struct.Struct("<BI")
MEDIA_TYPE: Final = "application/vnd.subtone.patch"
MALFORMED_PATCH: Final = "malformed_patch"
MODE_INDICES: Final = 0
MODE_BITMAP: Final = 1
MODE_GAPS: Final = 2
GAPS_DENSEST: Final = 8
"""Windows with more than one flip in this many samples skip the gap coding (the bitmap wins
there, and compressing would cost time for nothing)."""
GAPS_LEVEL: Final = 6
VARINT_BYTES: Final = 3
"""A gap below 2**21 takes at most three LEB128 bytes (a window has 2**18 samples)."""
GATHERED_FLIPS: Final = 1 << 16
"""The most flips of consecutive windows applied together (a few MB of arrays at most)."""
GROUP_BYTES: Final = 8 << 20
"""The most bytes of consecutive windows changed through one mapping."""

COPY_BUFFER_BYTES: Final = 8 << 20

IndexArray = npt.NDArray[np.int32]


def apply_window_flips(
    data: bytearray | npt.NDArray[np.uint8],
    *,
    k_pos: bytes,
    index: int,
    flips: npt.ArrayLike | FlipMap,
    bits_per_sample: int,
) -> None:
    """Apply window ``index``'s flips (indices, or a dense window's bitmap as an engine may
    answer it) to its PCM bytes in place (±1, keyed sign, full-scale samples inwards): what a
    client does while it copies its cover to the stego file."""
    where = flips.indices() if isinstance(flips, FlipMap) else np.asarray(flips, dtype=np.int32)
    apply_flips_pcm(data, layout.window_key(k_pos, index), where, bits_per_sample)


class PatchError(SubtoneError):
    code = MALFORMED_PATCH
    status = 422


@dataclass(frozen=True)
class PatchHeader:
    samples: int

    def pack(self) -> bytes:
        return HEADER.pack(MAGIC, VERSION, bytes(3), self.samples)


class PatchWriter:
    """Writes a patch window by window to ``dst`` (any object with ``write``)."""

    def __init__(self, dst: BinaryIO, samples: int) -> None:
        self._dst = dst
        self._samples = samples
        self._next = 0
        self.flips = 0
        dst.write(PatchHeader(samples).pack())

    @property
    def windows(self) -> int:
        return layout.window_count(self._samples)

    def window(
        self, index: int, flips: npt.NDArray[np.int32] | npt.NDArray[np.int64] | FlipMap
    ) -> None:
        """The flips of window ``index`` (windows come in order, each once): indices, or a
        dense window's bitmap, written as it is where the bitmap is the smallest mode."""
        if index != self._next:
            raise ValueError(f"patch windows come in order: expected {self._next}, got {index}")
        length = layout.window_length(self._samples, index)
        bitmap_bytes = (length + 7) // 8
        if isinstance(flips, FlipMap):
            if flips.bits.size != bitmap_bytes:
                raise ValueError(f"window {index}'s bitmap is not {bitmap_bytes} bytes")
            if flips.count * 4 > bitmap_bytes and flips.count * GAPS_DENSEST > length:
                # The bitmap: what the modes below would choose, without the detour.
                self._dst.write(WINDOW.pack(MODE_BITMAP, bitmap_bytes) + flips.bits.tobytes())
                self.flips += flips.count
                self._next += 1
                return
            flips = flips.indices()
        where = np.asarray(flips, dtype="<u4")
        if where.size * 4 <= bitmap_bytes:
            # Few flips: plain indices, unless their gaps compress to less.
            body, mode = where.tobytes(), MODE_INDICES
        else:
            bits = np.zeros(bitmap_bytes * 8, dtype=np.uint8)
            bits[where] = 1
            body, mode = np.packbits(bits, bitorder="little").tobytes(), MODE_BITMAP
        if where.size and where.size * GAPS_DENSEST <= length:
            gaps = zlib.compress(encode_gaps(where), GAPS_LEVEL)
            if len(gaps) < len(body):
                body, mode = gaps, MODE_GAPS
        n = where.size if mode == MODE_INDICES else len(body)
        self._dst.write(WINDOW.pack(mode, n) + body)
        self.flips += int(where.size)
        self._next += 1

    def close(self) -> None:
        """Check that every window was written (windows with no flips included)."""
        if self._next != self.windows:
            raise ValueError(f"the patch has {self._next} of {self.windows} windows")


SMALL_GAPS_BYTES = 256
"""Up to this many bytes of varints (a window of a short secret: a few flips) are decoded,
and the indices of up to a third as many flips encoded, one at a time: numpy's dozen calls
per window cost more than the bytes themselves (954 windows of a 500 MB cover: 50 ms)."""


def encode_gaps(where: npt.NDArray[np.uint32]) -> bytes:
    """Ascending indices (below 2**21) as the LEB128 varints of their gaps (mode 2's body
    before compression)."""
    if where.size <= SMALL_GAPS_BYTES // VARINT_BYTES:
        return _encode_few_gaps(where)
    gaps = np.diff(where.astype(np.int64), prepend=-1) - 1
    widths = 1 + (gaps >= 1 << 7) + (gaps >= 1 << 14)
    starts = np.cumsum(widths) - widths
    out = np.zeros(int(widths.sum()), dtype=np.uint8)
    for k in range(VARINT_BYTES):
        has = widths > k
        more = (widths[has] > k + 1).astype(np.uint8) << 7
        out[starts[has] + k] = ((gaps[has] >> (7 * k)) & 0x7F).astype(np.uint8) | more
    return out.tobytes()


def decode_gaps(raw: bytes) -> npt.NDArray[np.int64] | None:
    """The indices back from :func:`encode_gaps`'s bytes; None when they are not its output
    (a varint cut short or longer than three bytes)."""
    if len(raw) <= SMALL_GAPS_BYTES:
        return _decode_few_gaps(raw)
    data = np.frombuffer(raw, dtype=np.uint8)
    ends = np.flatnonzero(data < 0x80)
    if not ends.size or ends[-1] != data.size - 1:
        return None
    widths = np.diff(ends, prepend=-1)
    if int(widths.max()) > VARINT_BYTES:
        return None
    starts = ends - widths + 1
    within = np.arange(data.size) - np.repeat(starts, widths)
    values = (data & 0x7F).astype(np.int64) << (7 * within)
    gaps = np.add.reduceat(values, starts)
    where: npt.NDArray[np.int64] = np.cumsum(gaps + 1) - 1
    return where


def _encode_few_gaps(where: npt.NDArray[np.uint32]) -> bytes:
    """:func:`encode_gaps` of a few indices, one at a time (the same bytes)."""
    out = bytearray()
    before = -1
    for index in where.tolist():
        gap = index - before - 1
        before = index
        while gap >= 0x80:
            out.append(gap & 0x7F | 0x80)
            gap >>= 7
        out.append(gap)
    return bytes(out)


def _decode_few_gaps(raw: bytes) -> npt.NDArray[np.int64] | None:
    """:func:`decode_gaps` of a few bytes, one at a time (the same answers)."""
    if not raw:
        return None
    found: list[int] = []
    at, value, shift, width = -1, 0, 0, 0
    for byte in raw:
        value |= (byte & 0x7F) << shift
        width += 1
        if byte & 0x80:
            if width == VARINT_BYTES:
                return None
            shift += 7
            continue
        at += value + 1
        found.append(at)
        value, shift, width = 0, 0, 0
    if width:
        return None
    return np.array(found, dtype=np.int64)


def _inflate_gaps(body: bytes, length: int) -> npt.NDArray[np.int64] | None:
    """Mode 2's indices (not yet checked against the window), or None for a body that is not
    one (bad zlib, trailing bytes, or more than a window's worth of varints: a small body
    cannot inflate without bound)."""
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(body, VARINT_BYTES * length + 1)
    except zlib.error:
        return None
    if not inflater.eof or inflater.unused_data or len(raw) > VARINT_BYTES * length:
        return None
    return decode_gaps(raw)


def _read_exact(src: BinaryIO, size: int) -> bytes:
    data = src.read(size)
    if len(data) != size:
        raise PatchError("The patch ends early: download it again.")
    return data


def read_patch(src: BinaryIO, samples: int) -> Iterator[tuple[int, IndexArray]]:
    """``(window index, flips)`` for every window of a patch made for ``samples`` samples."""
    magic, version, _, patch_samples = HEADER.unpack(_read_exact(src, HEADER.size))
    if magic != MAGIC or version not in READABLE_VERSIONS:
        raise PatchError("The job's result is not a patch this version of Subtone reads.")
    if patch_samples != samples:
        raise PatchError(f"The patch is for {patch_samples:,} samples, not {samples:,}.")
    for index in range(layout.window_count(samples)):
        length = layout.window_length(samples, index)
        mode, n = WINDOW.unpack(_read_exact(src, WINDOW.size))
        if mode == MODE_INDICES and n <= length:
            where = np.frombuffer(_read_exact(src, 4 * n), dtype="<u4").astype(np.int64)
        elif mode == MODE_BITMAP and n == (length + 7) // 8:
            bits = np.unpackbits(np.frombuffer(_read_exact(src, n), np.uint8), bitorder="little")
            where = np.flatnonzero(bits[:length]).astype(np.int64)
        elif mode == MODE_GAPS and version >= 2 and 0 < n <= (length + 7) // 8:
            found = _inflate_gaps(_read_exact(src, n), length)
            if found is None:
                raise PatchError(f"Window {index} of the patch is malformed.")
            where = found
        else:
            raise PatchError(f"Window {index} of the patch is malformed.")
        # Every mode's indices are checked here, as int64: narrowed before the check, an index
        # of 2**31 or more would wrap negative and pass.
        ascending = not np.any(np.diff(where) <= 0)
        if where.size and (not ascending or int(where[0]) < 0 or int(where[-1]) >= length):
            raise PatchError(f"Window {index} of the patch flips samples outside it.")
        yield index, where.astype(np.int32)
    if src.read(1):
        raise PatchError("The patch has bytes after its last window.")


class _Samples:
    """Changes samples of an open copy of the cover in place, consecutive windows a group at
    a time (:meth:`_patch_group`): one mapping of the group's bytes, one numpy pass over its
    flips. Where the flips are dense the mapping's pages are made writable in one call first;
    where they are sparse each page is faulted in as its first flip touches it. Where the
    file cannot be mapped, a dense group's bytes are read, changed and written back, and a
    sparse group's flips sample by sample (``pread``, ``pwrite``)."""

    def __init__(self, fd: int, info: wav.WavInfo, k_pos: bytes) -> None:
        self._fd = fd
        self._info = info
        self._k_pos = k_pos
        self._group: list[tuple[int, IndexArray]] = []
        self._group_flips = 0
        self._group_windows = max(1, GROUP_BYTES // (WINDOW_SAMPLES * info.sample_bytes))

    def _offset(self, window: int, index: int = 0) -> int:
        return self._info.prefix_size + (window * WINDOW_SAMPLES + index) * self._info.sample_bytes

    def add(self, window: int, where: IndexArray) -> None:
        """Window ``window``'s flips, applied now or with the next :meth:`flush`."""
        if self._group and self._group[-1][0] != window - 1:
            self.flush()
        self._group.append((window, where))
        self._group_flips += int(where.size)
        if len(self._group) >= self._group_windows or self._group_flips >= GATHERED_FLIPS:
            self.flush()

    def flush(self) -> None:
        """Apply the held windows' flips."""
        group, self._group, self._group_flips = self._group, [], 0
        if group:
            self._patch_group(group)

    def _patch_group(self, group: list[tuple[int, IndexArray]]) -> None:
        """Consecutive windows' flips, changed where their bytes lie through one mapping of
        them (no copy in and out; a group of :data:`GROUP_BYTES` at most mapped at a time, so
        memory does not grow with the file)."""
        info = self._info
        first, last = group[0][0], group[-1][0]
        start = self._offset(first)
        size = self._offset(last, layout.window_length(info.samples, last)) - start
        where = np.concatenate([w for _, w in group]).astype(np.int64)
        at = np.concatenate([w + (i - first) * WINDOW_SAMPLES for i, w in group])
        keys = np.repeat(
            [sign_key(layout.window_key(self._k_pos, i)) for i, _ in group],
            [w.size for _, w in group],
        ).astype(np.uint64)
        dense = where.size * mmap.PAGESIZE >= size  # a flip a page or more
        base = start - start % mmap.ALLOCATIONGRANULARITY
        mapped = None
        if os.fstat(self._fd).st_size >= start + size:  # a mapping past the end would fault
            with contextlib.suppress(OSError, ValueError):
                mapped = mmap.mmap(
                    self._fd, size + start - base, access=mmap.ACCESS_WRITE, offset=base
                )
        if mapped is None:
            self._patch_unmapped(start, size, dense, keys, where, at)
            return
        try:
            if dense:
                _populate_for_writing(mapped)
            apply_flips_pcm_across(
                np.frombuffer(mapped, dtype=np.uint8, count=size, offset=start - base),
                keys, where, at, info.bits_per_sample,
            )  # fmt: skip
        finally:
            with contextlib.suppress(BufferError):  # a failed change's traceback holds a view
                mapped.close()

    def _patch_unmapped(
        self,
        start: int,
        size: int,
        dense: bool,
        keys: npt.NDArray[np.uint64],
        where: npt.NDArray[np.int64],
        at: npt.NDArray[np.int64],
    ) -> None:
        """:meth:`_patch_group` where the file cannot be mapped: a dense group's bytes read,
        changed and written back; a sparse group's samples one by one."""
        info, fd = self._info, self._fd
        if dense:
            data = bytearray(os.pread(fd, size, start))
            apply_flips_pcm_across(data, keys, where, at, info.bits_per_sample)
            os.pwrite(fd, data, start)
            return
        width = info.sample_bytes
        offsets = (start + at * width).tolist()
        raw = b"".join([os.pread(fd, width, offset) for offset in offsets])
        values = wav.decode_samples(raw, info.bits_per_sample)
        apply_flips_across(values, keys, where, info.bits_per_sample)
        moved = memoryview(wav.encode_samples(values, info.bits_per_sample))
        for i, offset in enumerate(offsets):
            os.pwrite(fd, moved[i * width : (i + 1) * width], offset)


MADV_POPULATE_WRITE: Final = 23
"""Linux 5.14's ``madvise`` advice that maps a range's pages writable in one call (Python 3.11's
``mmap`` does not name it)."""


def _populate_for_writing(mapped: mmap.mmap) -> None:
    """Fault a mapping's pages in, writable, in one call (Linux 5.14 and newer), instead of one
    fault per page as the flips first touch each (most of the time of a dense patch). Where
    the system does not know the advice, the pages fault in as they are touched."""
    if sys.platform != "linux" or not hasattr(mapped, "madvise"):
        return
    with contextlib.suppress(OSError):
        mapped.madvise(MADV_POPULATE_WRITE)


def apply_patch(target: BinaryIO, info: wav.WavInfo, patch: BinaryIO, k_pos: bytes) -> int:
    """Apply ``patch`` in place to ``target``, an open copy of the cover; the samples changed."""
    samples = _Samples(target.fileno(), info, k_pos)
    changed = 0
    for index, where in read_patch(patch, info.samples):
        if where.size:
            samples.add(index, where)
            changed += int(where.size)
    samples.flush()
    return changed


COPY_CHUNK_BYTES: Final = 64 << 20
"""What one ``copy_file_range`` call copies: a draft given up stops after the chunk in
progress."""


class _CopyStopped(Exception):
    """The draft was given up while its copy ran."""


def _copy(src: BinaryIO, dst: BinaryIO, size: int, stop: threading.Event | None = None) -> None:
    """Copy the whole of ``src`` into ``dst`` inside the kernel where it can (no user-space
    buffer, a reflink on file systems that have them), else through a buffer; a chunk at a
    time, checking ``stop`` (set: :class:`_CopyStopped`) between chunks."""

    def check() -> None:
        if stop is not None and stop.is_set():
            raise _CopyStopped()

    src.seek(0)
    done = 0
    try:
        while done < size:
            check()
            chunk = min(size - done, COPY_CHUNK_BYTES)
            count = os.copy_file_range(src.fileno(), dst.fileno(), chunk, done, done)
            if not count:
                break
            done += count
    except OSError:
        done = 0
    if done != size:
        src.seek(0)
        dst.seek(0)
        dst.truncate()
        while block := src.read(COPY_BUFFER_BYTES):
            check()
            dst.write(block)
        dst.flush()


class StegoDraft:
    """The stego file in the making: a copy of ``cover`` next to ``out`` under a temporary
    name, started at once on a thread of its own (so that a client copies its cover while the
    server computes the patch), patched by :meth:`apply` and renamed to ``out`` only when
    complete and on disk. Leaving the ``with`` block without :meth:`apply` removes it.

    The cover is checked (a WAV whose size matches its header) before the copy starts.

    Once copied, the draft is made durable (``fsync``) at once, so that little is left to
    write when the patch comes; with ``sync_later``, only once :meth:`start_sync` is called
    (or at :meth:`apply`): on ext4 an ``fsync`` makes the file operations of the whole file
    system wait for it, so a client that has the plane to send first holds it back until
    then."""

    def __init__(
        self,
        cover: str | os.PathLike[str],
        out: str | os.PathLike[str],
        *,
        mode: int | None = None,
        sync_later: bool = False,
    ) -> None:
        self._out = Path(out)
        self._cover = Path(cover)
        self._mode = mode
        with Path(cover).open("rb") as src:
            self.info, _ = wav.read_header(src)
            wav.check_file_size(self.info, os.fstat(src.fileno()).st_size)
        fd, tmp = tempfile.mkstemp(
            dir=self._out.parent, prefix=f".{self._out.name}.", suffix=".part"
        )
        self._dst = os.fdopen(fd, "r+b")
        self._tmp = Path(tmp)
        self._copied: Future[None] = Future()
        self._stop = threading.Event()
        self._may_sync = threading.Event()
        if not sync_later:
            self._may_sync.set()
        self._done = False
        threading.Thread(
            target=self._copy_from, args=(Path(cover),), name="subtone-copy", daemon=True
        ).start()

    def _copy_from(self, cover: Path) -> None:
        try:
            with cover.open("rb") as src:
                _copy(src, self._dst, os.fstat(src.fileno()).st_size, self._stop)
                self._dst.flush()
                self._may_sync.wait()
                if not self._stop.is_set():  # most of the writing, done before the patch comes
                    os.fsync(self._dst.fileno())
            self._copied.set_result(None)
        except BaseException as e:
            self._copied.set_exception(e)

    def start_sync(self) -> None:
        """Let the copy be made durable once it is done (see ``sync_later``)."""
        self._may_sync.set()

    def made_for(self, cover: str | os.PathLike[str], out: str | os.PathLike[str]) -> bool:
        """Whether this is the draft of ``cover`` to ``out`` (and still to be applied)."""
        return not self._done and (self._cover, self._out) == (Path(cover), Path(out))

    def apply(self, patch: BinaryIO, k_pos: bytes) -> int:
        """Wait for the copy, apply ``patch`` and put the file under ``out``; the samples
        changed. An error (the copy's included) leaves nothing under ``out``."""
        try:
            self._may_sync.set()
            self._copied.result()
            changed = apply_patch(self._dst, self.info, patch, k_pos)
            self._dst.flush()
            os.fsync(self._dst.fileno())
            self._dst.close()
            if self._mode is not None:
                self._tmp.chmod(self._mode)
            self._tmp.replace(self._out)
            self._done = True
            return changed
        finally:
            self.discard()

    def discard(self) -> None:
        """Unless applied: stop the copy (after the chunk in progress), then remove the
        draft."""
        if self._done:
            return
        self._stop.set()
        self._may_sync.set()
        with contextlib.suppress(BaseException):
            self._copied.result()
        self._dst.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> StegoDraft:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()


def apply_patch_file(
    cover: str | os.PathLike[str],
    patch: BinaryIO,
    out: str | os.PathLike[str],
    *,
    k_pos: bytes,
    mode: int | None = None,
) -> int:
    """Write ``out``: ``cover`` with ``patch`` applied (complete, or not at all)."""
    with StegoDraft(cover, out, mode=mode) as draft:
        return draft.apply(patch, k_pos)
