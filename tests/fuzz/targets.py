"""Fuzz targets for the parsers that read hostile bytes, shared by the tests and ``bench/fuzz.py``.

Each target takes arbitrary bytes and must either return or raise the project's own
:class:`~subtone.errors.SubtoneError`; any other exception is a bug (a crasher). Targets
also check the promises their parser makes on success (the WAV split reassembles the file
byte for byte; an opened secret has a safe name), so a wrong answer is a crasher too.

* ``wav``: the WAV parser as the worker drives it (header, size check, every window, the rest),
  once from a plain stream and once from a stream that answers every read short, as a network
  stream may.
* ``frame``: the secret's frame parser (the AEAD plaintext: name, media type, data, padding).
* ``sealed``: :func:`~desktop.core.envelope.open_sealed` on hostile payloads. The first byte
  picks the mode: even, the rest *is* the payload (its scrypt cost clamped so a run stays
  fast, unless out of bounds, which must be refused before any work); odd, the rest is a frame
  sealed under a known passphrase, so arbitrary *authenticated* frames reach the parser.
* ``range``: the local store's ``Range`` header parser, on a hostile header and object size.
* ``patch``: an embed's patch as the client reads it (every window, every coding, deflated gaps
  included), for the sample count its own header claims; the flips it yields must lie inside
  their window, in ascending order.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from typing import BinaryIO, cast

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from desktop.core import envelope, secret_names
from server.localstore.app import parse_range
from subtone.errors import SubtoneError
from subtone.stego import layout, patch, wav

__all__ = [
    "FAST_KDF",
    "OK",
    "PASSPHRASE",
    "TARGETS",
    "Target",
    "frame",
    "patch_file",
    "range_header",
    "sealed",
    "wav_file",
]

Target = Callable[[bytes], str]
"""Returns ``"ok"`` or the code of the project's error the input was refused with."""
OK = "ok"

PASSPHRASE = "fuzz passphrase"
FAST_KDF = envelope.KdfParams(log2_n=1, r=1, p=1)
"""The cheapest scrypt the format allows: lets the fuzzer reach the frame parser quickly."""
CHEAP_KDF_MEMORY_BYTES = 1 << 20
"""Payloads asking for more scrypt memory than this (but within the format's bounds) are
clamped to :data:`FAST_KDF` by the ``sealed`` target, so each run stays fast."""
WINDOW_SAMPLES = 4096
"""Small windows, so short inputs still cross window boundaries."""
SHORT_READ_BYTES = 7


class ShortReads(io.RawIOBase):
    """A non-seekable stream that answers every read with at most a few bytes."""

    def __init__(self, data: bytes, most: int = SHORT_READ_BYTES) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._most = most

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self._most, len(self._data) - self._pos)
        buffer[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        return n


def _parse_wav(data: bytes, stream: BinaryIO) -> str:
    try:
        info, prefix = wav.read_header(stream, total_size=len(data))
        wav.check_file_size(info, len(data))
        layout.capacity(info.samples)
        samples = b"".join(
            wav.encode_samples(w, info.bits_per_sample)
            for w in wav.read_windows(stream, info, WINDOW_SAMPLES)
        )
    except SubtoneError as e:
        return e.code
    rest = io.BytesIO()
    wav.copy_rest(stream, rest)
    if len(prefix) != info.prefix_size or len(samples) != info.data_size:
        raise AssertionError(f"prefix {len(prefix)} / samples {len(samples)} disagree with {info}")
    if prefix + samples + rest.getvalue() != data:
        raise AssertionError("prefix + samples + rest does not reassemble the file")
    if info.frames * info.block_align != info.data_size or info.channels < 1:
        raise AssertionError(f"inconsistent WavInfo {info}")
    return OK


def wav_file(data: bytes) -> str:
    outcome = _parse_wav(data, io.BytesIO(data))
    short = _parse_wav(data, cast(BinaryIO, ShortReads(data)))
    if short != outcome:
        raise AssertionError(f"{outcome} from a plain stream but {short} from short reads")
    return outcome


def _check_secret(secret: envelope.Secret) -> None:
    name = secret.name
    if (
        not name
        or name != envelope.safe_name(name)
        or len(name.encode()) > secret_names.MAX_NAME_BYTES
    ):
        raise AssertionError(f"unsafe name {name!r}")
    if any(c in name for c in "/\\\x00") or name in (".", ".."):
        raise AssertionError(f"unsafe name {name!r}")
    if not secret.data or not secret.media_type.isascii() or "/" not in secret.media_type:
        raise AssertionError(f"bad secret {secret!r}")


def frame(data: bytes) -> str:
    try:
        secret = envelope._unframe(data)
    except SubtoneError as e:
        return e.code
    _check_secret(secret)
    return OK


def _seal_frame(plaintext: bytes) -> bytes:
    """``plaintext`` encrypted as a payload under :data:`PASSPHRASE` and :data:`FAST_KDF`."""
    salt = bytes(envelope.SALT_BYTES)
    kdf = FAST_KDF
    aad = struct.pack(">BBBB", envelope.FORMAT_VERSION, kdf.log2_n, kdf.r, kdf.p) + salt
    k_enc = envelope._k_enc(PASSPHRASE.encode(), envelope.FORMAT_VERSION, kdf, salt)
    nonce = bytes(envelope.NONCE_BYTES)
    return aad + nonce + ChaCha20Poly1305(k_enc).encrypt(nonce, plaintext, aad)


def _clamp_kdf(payload: bytes) -> bytes:
    if len(payload) < 4:
        return payload
    log2_n, r, p = payload[1], payload[2], payload[3]
    in_bounds = envelope._kdf_in_bounds(log2_n, r, p)
    if in_bounds and 128 * r * p * (1 << log2_n) > CHEAP_KDF_MEMORY_BYTES:
        return payload[:1] + bytes([FAST_KDF.log2_n, FAST_KDF.r, FAST_KDF.p]) + payload[4:]
    return payload


def sealed(data: bytes) -> str:
    if not data:
        return OK
    mode, rest = data[0], data[1:]
    payload = _seal_frame(rest) if mode & 1 else _clamp_kdf(rest)
    try:
        secret = envelope.open_sealed(payload, PASSPHRASE)
    except SubtoneError as e:
        return e.code
    _check_secret(secret)
    return OK


def range_header(data: bytes) -> str:
    size = int.from_bytes(data[:4], "little") if len(data) >= 4 else len(data)
    header = data[4:].decode("latin-1")
    try:
        found = parse_range(header, size)
    except SubtoneError as e:
        return e.code
    if found is not None:
        start, end = found
        if not 0 <= start <= end < size:
            raise AssertionError(f"range {found} outside an object of {size} bytes")
    return OK


def patch_file(data: bytes) -> str:
    samples = int.from_bytes(data[8:16], "little") if len(data) >= 16 else len(data)
    try:
        for index, where in patch.read_patch(io.BytesIO(data), samples):
            length = layout.window_length(samples, index)
            inside = not where.size or (where[0] >= 0 and where[-1] < length)
            if not inside or (where[1:] <= where[:-1]).any():
                raise AssertionError(f"window {index}'s flips are not inside it, in order")
    except SubtoneError as e:
        return e.code
    return OK


TARGETS: dict[str, Target] = {
    "wav": wav_file,
    "frame": frame,
    "sealed": sealed,
    "range": range_header,
    "patch": patch_file,
}
