"""Client-side framing and encryption of a secret before it is hidden in a cover.

The server only ever sees the *sealed payload* (opaque bytes) and the *position key*
``k_pos``, which decides where bits go in the cover. The encryption key ``k_enc`` never
leaves the client. Both keys come from the passphrase:

* ``S = scrypt(pw, salt=SHA256("subtone/v1/positions"), N=2**16, r=8, p=1)``: the one
  expensive step. Extraction only has the stego file and the passphrase, so this salt is fixed
  and its cost parameters (:data:`POSITION_KDF`) are part of the format.
* ``k_pos = HKDF-SHA256(S, info="subtone/v1/k_pos")``.
* ``k_enc = HKDF-SHA256(S, salt=random 16 bytes, info="subtone/v2/k_enc")``, the salt stored
  in clear in the payload (format version 2).

Why one scrypt and not two: anyone who can attack ``k_enc`` (the server, or whoever holds the
stego file) can test a passphrase guess against ``k_pos`` instead (it opens the header of
window 0), at the cost of the position scrypt alone. A second, costlier scrypt for ``k_enc``
(format version 1: ``scrypt(pw, salt, N=2**17)``) therefore added no resistance to guessing;
it cost every encode and decode about a second and 128 MiB. ``k_enc`` and ``k_pos`` are
independent outputs of HKDF, so the server's ``k_pos`` tells it nothing about ``k_enc``.
Version 1 payloads are still opened, with their own scrypt.

Sealed payload layout (all integers big-endian)::

    version(1)=2 | kdf_log2_n(1) | kdf_r(1) | kdf_p(1) | salt(16) | nonce(12) | ciphertext+tag(16)

``kdf_*`` are the cost parameters of ``S`` (version 1: of ``k_enc``'s own scrypt).

The first 20 bytes (version..salt) are the AEAD associated data, so any change to them fails
the tag. The ChaCha20-Poly1305 plaintext is a frame::

    frame_version(1)=1 | name_len(1) | media_type_len(1) | data_len(4)
    | name (UTF-8) | media_type (ASCII) | data | zero padding

Padding: the frame is rounded up to a multiple of :data:`PAD_BLOCK_BYTES` (256), then to the
Padmé length of Nikitin et al. ("Reducing metadata leakage from encrypted files", PETS 2019),
which keeps only the top ``O(log log L)`` bits of the length: the overhead is at most ~12 %
(about 3 % at 1 MiB) and the exact size of the secret is hidden from the server.
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
import threading
import unicodedata
from collections import OrderedDict
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import soundfile as sf
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from desktop.core.opus import OPUS_EXTENSION, OPUS_MEDIA_TYPE, encode_opus
from desktop.core.opus import opus_rate as _opus_rate  # noqa: F401  (tests reach it here)
from desktop.core.opus import resample as _resample  # noqa: F401  (tests reach it here)
from desktop.core.secret_names import (
    guess_media_type,
    safe_name,
    valid_media_type,
)
from subtone.errors import SubtoneError

__all__ = [
    "MAX_SECRET_BYTES",
    "OPUS_MEDIA_TYPE",
    "POSITION_KDF",
    "EnvelopeError",
    "KdfParams",
    "PreparedSecret",
    "Sealed",
    "Secret",
    "derive_position_key",
    "open_sealed",
    "prefetch_position_key",
    "prepare_audio_secret",
    "prepare_file_secret",
    "safe_name",
    "seal",
    "sealed_length",
]

MiB = 1024 * 1024

FORMAT_VERSION = 2
LEGACY_FORMAT_VERSION = 1
"""``k_enc`` from a scrypt of its own, with a random salt (still opened, never written)."""
FRAME_VERSION = 1
KEY_BYTES = 32
SALT_BYTES = 16
NONCE_BYTES = 12
TAG_BYTES = 16
_HEADER = struct.Struct(">BBBB")
AAD_BYTES = _HEADER.size + SALT_BYTES  # version..salt, authenticated but not encrypted
PREFIX_BYTES = AAD_BYTES + NONCE_BYTES
_FRAME_HEADER = struct.Struct(">BBBI")

POSITION_SALT = b"subtone/v1/positions"
K_POS_INFO = b"subtone/v1/k_pos"
K_ENC_INFO = b"subtone/v2/k_enc"
LEGACY_K_ENC_INFO = b"subtone/v1/k_enc"

#: Largest secret accepted: a 4 GiB 16-bit WAV holds at most ~256 MiB at one bit per sample.
MAX_SECRET_BYTES = 256 * MiB
PAD_BLOCK_BYTES = 256

#: Bounds on KDF parameters read from a payload: a hostile stego file must not make the
#: client spend more than 256 MiB on the key (version 1 payloads were written with 128 MiB).
MAX_KDF_LOG2_N = 20
MAX_KDF_R = 32
MAX_KDF_P = 4
MAX_KDF_MEMORY_BYTES = 256 * MiB


class EnvelopeError(SubtoneError):
    """A secret that cannot be sealed, or a payload that cannot be opened."""


def _error(code: str, message: str, status: int = 400) -> EnvelopeError:
    return EnvelopeError(message, code=code, status=status)


def _wrong_passphrase() -> EnvelopeError:
    return _error(
        "wrong_passphrase",
        "The passphrase is wrong, or this file holds no Subtone message.",
    )


def _too_large(what: str, size: int) -> EnvelopeError:
    return _error(
        "secret_too_large",
        f"{what} is {size} bytes; at most {MAX_SECRET_BYTES} bytes can be hidden.",
        status=413,
    )


def _corrupt(detail: str) -> EnvelopeError:
    return _error(
        "corrupt_payload",
        "No Subtone message could be read: the passphrase may be wrong, or the file is "
        f"damaged or was made by a newer Subtone ({detail}).",
    )


@dataclass(frozen=True)
class KdfParams:
    """scrypt cost parameters: ``N = 2**log2_n``, block size ``r``, parallelism ``p``."""

    log2_n: int
    r: int
    p: int

    def __post_init__(self) -> None:
        if not _kdf_in_bounds(self.log2_n, self.r, self.p):
            raise ValueError(f"scrypt parameters out of bounds: {self}")

    @property
    def n(self) -> int:
        """The scrypt cost ``N``."""
        return 1 << self.log2_n


def _kdf_in_bounds(log2_n: int, r: int, p: int) -> bool:
    return (
        1 <= log2_n <= MAX_KDF_LOG2_N
        and 1 <= r <= MAX_KDF_R
        and 1 <= p <= MAX_KDF_P
        and 128 * r * (1 << log2_n) <= MAX_KDF_MEMORY_BYTES
    )


#: Cost of the passphrase's scrypt (``S``, which gives ``k_pos`` and ``k_enc``); fixed by the
#: format, since extraction has no payload to read it from before it has ``k_pos``.
POSITION_KDF = KdfParams(log2_n=16, r=8, p=1)


@dataclass(frozen=True)
class Sealed:
    """A sealed payload for the server to embed, with the key that places it."""

    payload: bytes = field(repr=False)
    k_pos: bytes = field(repr=False)

    def __repr__(self) -> str:
        return f"Sealed(<{len(self.payload)} bytes>, k_pos=<hidden>)"


@dataclass(frozen=True)
class Secret:
    """An opened secret: its bytes, a safe file name and its media type."""

    data: bytes = field(repr=False)
    name: str
    media_type: str


class PreparedSecret(NamedTuple):
    """A file read and ready to seal: ``data, name, media_type = prepare_file_secret(p)``."""

    data: bytes
    name: str
    media_type: str


# --- keys -------------------------------------------------------------------------------


def _passphrase_bytes(passphrase: str) -> bytes:
    normalised = unicodedata.normalize("NFC", passphrase)
    if not normalised:
        raise _error("empty_passphrase", "Enter a passphrase.")
    return normalised.encode("utf-8", errors="surrogatepass")


def _stretch(secret: bytes, salt: bytes, kdf: KdfParams) -> bytes:
    return Scrypt(salt=salt, length=KEY_BYTES, n=kdf.n, r=kdf.r, p=kdf.p).derive(secret)


def _expand(stretched: bytes, info: bytes, salt: bytes | None = None) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=info).derive(stretched)


_STRETCHES: OrderedDict[tuple[bytes, KdfParams], Future[bytes]] = OrderedDict()
_STRETCHES_KEPT = 4
_STRETCHES_LOCK = threading.Lock()


def _position_stretch(secret: bytes, kdf: KdfParams) -> bytes:
    """``S`` for a passphrase, computed once per process: kept for the last few passphrases
    (32 bytes each, in the memory of the process that holds the passphrase anyway), so that a
    decode reuses ``k_pos``'s scrypt for ``k_enc``, and a caller that asks while
    :func:`prefetch_position_key` computes it waits for that result instead of starting over."""
    key = (secret, kdf)
    with _STRETCHES_LOCK:
        pending = _STRETCHES.get(key)
        mine = pending is None
        if pending is None:
            pending = _STRETCHES[key] = Future()
            while len(_STRETCHES) > _STRETCHES_KEPT:
                _STRETCHES.popitem(last=False)
        _STRETCHES.move_to_end(key)
    if mine:
        salt = hashes.Hash(hashes.SHA256())
        salt.update(POSITION_SALT)
        try:
            pending.set_result(_stretch(secret, salt.finalize(), kdf))
        except BaseException as e:
            with _STRETCHES_LOCK:
                _STRETCHES.pop(key, None)
            pending.set_exception(e)
            raise
    return pending.result()


def _forget_stretches() -> None:
    """Drop the kept stretches (tests)."""
    with _STRETCHES_LOCK:
        _STRETCHES.clear()


def prefetch_position_key(passphrase: str, *, position_kdf: KdfParams = POSITION_KDF) -> None:
    """Start the passphrase's scrypt on a background thread (it releases the GIL), so that it
    runs while the caller reads the cover or imports what it needs; :func:`seal`,
    :func:`derive_position_key` and :func:`open_sealed` then take its result. An empty
    passphrase is left for those to refuse."""
    try:
        secret = _passphrase_bytes(passphrase)
    except EnvelopeError:
        return

    def stretch() -> None:
        with contextlib.suppress(Exception):  # the caller meets the error when it asks
            _position_stretch(secret, position_kdf)

    threading.Thread(target=stretch, name="subtone-kdf", daemon=True).start()


def derive_position_key(passphrase: str, *, position_kdf: KdfParams = POSITION_KDF) -> bytes:
    """The 32-byte key that decides where bits go; depends on the passphrase alone.

    ``position_kdf`` exists so tests can run fast: a stego file made with anything but
    :data:`POSITION_KDF` cannot be found by a standard extraction.
    """
    return _expand(_position_stretch(_passphrase_bytes(passphrase), position_kdf), K_POS_INFO)


# --- framing --------------------------------------------------------------------------------


def _padded_length(length: int) -> int:
    """Round up to :data:`PAD_BLOCK_BYTES`, then to the Padmé length."""
    length = -(-length // PAD_BLOCK_BYTES) * PAD_BLOCK_BYTES
    exponent = length.bit_length() - 1
    mantissa_bits = exponent - exponent.bit_length()
    mask = (1 << max(mantissa_bits, 0)) - 1
    return (length + mask) & ~mask


def _frame(data: bytes, name: str, media_type: str) -> bytes:
    """The padded plaintext for ``data``; ``name`` and ``media_type`` are taken as they are."""
    name_bytes = name.encode("utf-8")
    type_bytes = media_type.encode("ascii")
    body = (
        _FRAME_HEADER.pack(FRAME_VERSION, len(name_bytes), len(type_bytes), len(data))
        + name_bytes
        + type_bytes
        + data
    )
    return body + bytes(_padded_length(len(body)) - len(body))


def _unframe(frame: bytes) -> Secret:
    if len(frame) < _FRAME_HEADER.size:
        raise _corrupt("frame too short")
    version, name_len, type_len, data_len = _FRAME_HEADER.unpack_from(frame)
    if version != FRAME_VERSION:
        raise _corrupt(f"unknown frame version {version}")
    start = _FRAME_HEADER.size
    end = start + name_len + type_len + data_len
    if end > len(frame):
        raise _corrupt("frame lengths exceed the payload")
    if any(frame[end:]):
        raise _corrupt("padding is not zero")
    name_end = start + name_len
    type_end = name_end + type_len
    try:
        name = frame[start:name_end].decode("utf-8")
        media_type = frame[name_end:type_end].decode("ascii")
    except UnicodeDecodeError as e:
        raise _corrupt("undecodable name or media type") from e
    if not valid_media_type(media_type):
        raise _corrupt("invalid media type")
    if data_len == 0:
        raise _corrupt("empty secret")
    return Secret(data=frame[type_end:end], name=safe_name(name), media_type=media_type)


def _plaintext_for(data: bytes, name: str, media_type: str) -> bytes:
    if not data:
        raise _error("empty_secret", "The secret is empty: there is nothing to hide.")
    if len(data) > MAX_SECRET_BYTES:
        raise _too_large("The secret", len(data))
    if not valid_media_type(media_type):
        raise _error("invalid_media_type", f"Not a valid media type: {media_type!r}.")
    return _frame(data, safe_name(name), media_type)


def sealed_length(secret_bytes: int, *, name: str, media_type: str) -> int:
    """The payload size :func:`seal` gives for a secret of this size, name and media type."""
    body = (
        _FRAME_HEADER.size
        + len(safe_name(name).encode("utf-8"))
        + len(media_type.encode("ascii"))
        + secret_bytes
    )
    return PREFIX_BYTES + _padded_length(body) + TAG_BYTES


# --- sealing ----------------------------------------------------------------------------------


def _k_enc(secret: bytes, version: int, kdf: KdfParams, salt: bytes) -> bytes:
    if version == LEGACY_FORMAT_VERSION:
        return _expand(_stretch(secret, salt, kdf), LEGACY_K_ENC_INFO)
    return _expand(_position_stretch(secret, kdf), K_ENC_INFO, salt=salt)


def _encrypt(plaintext: bytes, passphrase: str, kdf: KdfParams) -> bytes:
    salt = os.urandom(SALT_BYTES)
    aad = _HEADER.pack(FORMAT_VERSION, kdf.log2_n, kdf.r, kdf.p) + salt
    k_enc = _k_enc(_passphrase_bytes(passphrase), FORMAT_VERSION, kdf, salt)
    nonce = os.urandom(NONCE_BYTES)
    return aad + nonce + ChaCha20Poly1305(k_enc).encrypt(nonce, plaintext, aad)


def seal(
    secret: bytes,
    *,
    name: str,
    media_type: str,
    passphrase: str,
    position_kdf: KdfParams = POSITION_KDF,
) -> Sealed:
    """Frame, pad and encrypt ``secret``; also derive the position key for the server.

    ``name`` is stored through :func:`safe_name`. One scrypt (``position_kdf``, for tests
    only: see :func:`derive_position_key`) gives both keys; its parameters are stored in the
    payload.
    """
    _passphrase_bytes(passphrase)  # fail fast, before any framing or key stretching
    plaintext = _plaintext_for(secret, name, media_type)
    payload = _encrypt(plaintext, passphrase, position_kdf)
    return Sealed(payload=payload, k_pos=derive_position_key(passphrase, position_kdf=position_kdf))


def open_sealed(payload: bytes, passphrase: str) -> Secret:
    """Decrypt and unframe a payload; never returns unauthenticated bytes.

    Raises ``wrong_passphrase`` when the tag fails and ``corrupt_payload`` when the payload
    is too short, of an unknown version, has impossible KDF parameters, or holds a malformed
    frame.
    """
    secret = _passphrase_bytes(passphrase)
    if len(payload) < PREFIX_BYTES + TAG_BYTES:
        raise _corrupt("too short")
    version, log2_n, r, p = _HEADER.unpack_from(payload)
    if version not in (FORMAT_VERSION, LEGACY_FORMAT_VERSION):
        raise _corrupt(f"unknown format version {version}")
    if not _kdf_in_bounds(log2_n, r, p):
        raise _corrupt("impossible key-derivation parameters")
    aad = payload[:AAD_BYTES]
    k_enc = _k_enc(secret, version, KdfParams(log2_n, r, p), aad[_HEADER.size :])
    nonce = payload[AAD_BYTES:PREFIX_BYTES]
    try:
        frame = ChaCha20Poly1305(k_enc).decrypt(nonce, payload[PREFIX_BYTES:], aad)
    except InvalidTag as e:
        raise _wrong_passphrase() from e
    return _unframe(frame)


# --- preparing files --------------------------------------------------------------------------


def _checked_size(path: Path, limit: int | None = MAX_SECRET_BYTES) -> int:
    """The file's size; it must be a non-empty regular file of at most ``limit`` bytes."""
    try:
        size = path.stat().st_size
    except OSError as e:
        raise _error("unreadable_file", f"Cannot read {path.name}: {e.strerror}.") from e
    if not path.is_file():
        raise _error("unreadable_file", f"{path.name} is not a regular file.")
    if size == 0:
        raise _error("empty_secret", f"{path.name} is empty: there is nothing to hide.")
    if limit is not None and size > limit:
        raise _too_large(path.name, size)
    return size


def _read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise _error("unreadable_file", f"Cannot read {path.name}: {e.strerror}.") from e
    if not data:
        raise _error("empty_secret", f"{path.name} is empty: there is nothing to hide.")
    return data


def prepare_file_secret(path: str | os.PathLike[str]) -> PreparedSecret:
    """Read any file as it is, with a safe name and a media type guessed from its name."""
    path = Path(path)
    _checked_size(path)
    name = safe_name(path.name)
    return PreparedSecret(_read_bytes(path), name, guess_media_type(name))


def prepare_audio_secret(path: str | os.PathLike[str]) -> PreparedSecret:
    """Compress an audio file to Opus in Ogg; other files are kept as they are.

    Anything soundfile reads (WAV, FLAC, Ogg, MP3...) is resampled to an Opus rate (the
    nearest at or above its own, else 48 kHz), more than two channels are mixed to mono, and
    it is encoded at :data:`OPUS_COMPRESSION_LEVEL`. Ogg Opus input, and audio whose Opus
    encoding is not smaller than the file, is kept byte for byte. Files soundfile cannot
    read go through :func:`prepare_file_secret`.
    """
    path = Path(path)
    size = _checked_size(path, limit=None)  # the limit applies to the Opus, checked below
    try:
        info = sf.info(str(path))
    except sf.SoundFileError:
        return prepare_file_secret(path)
    stem_name = safe_name(path.stem + OPUS_EXTENSION)
    if info.format == "OGG" and info.subtype == "OPUS":
        return PreparedSecret(_read_bytes(path), stem_name, OPUS_MEDIA_TYPE)
    if info.frames == 0:
        raise _error("empty_secret", f"{path.name} holds no sound: there is nothing to hide.")
    with tempfile.TemporaryDirectory(prefix="subtone-opus-") as scratch:
        target = Path(scratch) / "secret.opus"
        try:
            encode_opus(path, target)
        except sf.SoundFileError as e:
            raise _error(
                "unreadable_audio", f"{path.name} could not be converted to Opus: {e}."
            ) from e
        encoded = target.read_bytes()
    if len(encoded) >= size:
        return prepare_file_secret(path)
    if len(encoded) > MAX_SECRET_BYTES:
        raise _too_large(stem_name, len(encoded))
    return PreparedSecret(encoded, stem_name, OPUS_MEDIA_TYPE)
