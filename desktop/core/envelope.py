"""Client-side framing and encryption of a secret before it is hidden in a cover.

The server only ever sees the *sealed payload* (opaque bytes) and the *position key*
``k_pos``, which decides where bits go in the cover. The encryption key ``k_enc`` never
leaves the client. Both keys come from the passphrase:

* ``k_pos = HKDF-SHA256(scrypt(pw, salt=SHA256("subtone/v1/positions"), N=2**16, r=8, p=1),
  info="subtone/v1/k_pos")``. Extraction only has the stego file and the passphrase, so this
  salt is fixed and its cost parameters (:data:`POSITION_KDF`) are part of the format.
* ``k_enc = HKDF-SHA256(scrypt(pw, salt=random 16 bytes, N, r, p), info="subtone/v1/k_enc")``
  with ``N, r, p`` (default :data:`DEFAULT_KDF`) and the salt stored in clear in the payload.

Sealed payload layout (all integers big-endian)::

    version(1)=1 | kdf_log2_n(1) | kdf_r(1) | kdf_p(1) | salt(16) | nonce(12) | ciphertext+tag(16)

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

import math
import mimetypes
import os
import struct
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import soundfile as sf
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from numpy.typing import NDArray

from subtone.errors import SubtoneError

__all__ = [
    "DEFAULT_KDF",
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
    "prepare_audio_secret",
    "prepare_file_secret",
    "safe_name",
    "seal",
    "sealed_length",
]

MiB = 1024 * 1024

FORMAT_VERSION = 1
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
K_ENC_INFO = b"subtone/v1/k_enc"

#: Largest secret accepted: a 4 GiB 16-bit WAV holds at most ~256 MiB at one bit per sample.
MAX_SECRET_BYTES = 256 * MiB
#: File names are stored as at most this many UTF-8 bytes.
MAX_NAME_BYTES = 255
MAX_MEDIA_TYPE_BYTES = 255
#: Extensions longer than this are not kept when a long name is shortened.
MAX_SUFFIX_CHARS = 16
PAD_BLOCK_BYTES = 256
DEFAULT_NAME = "secret"
DEFAULT_MEDIA_TYPE = "application/octet-stream"

#: Bounds on KDF parameters read from a payload: a hostile stego file must not make the
#: client spend more than twice the default's memory (128 MiB) on the key.
MAX_KDF_LOG2_N = 20
MAX_KDF_R = 32
MAX_KDF_P = 4
MAX_KDF_MEMORY_BYTES = 256 * MiB

OPUS_MEDIA_TYPE = "audio/ogg; codecs=opus"
OPUS_EXTENSION = ".opus"
#: Sample rates an Opus stream can carry, ascending.
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
#: Channels kept in an Opus secret; more are mixed down to mono.
MAX_OPUS_CHANNELS = 2
#: libsndfile's Opus compression level (0..1): 0.9 is about 40 kbit/s per mono channel.
OPUS_COMPRESSION_LEVEL = 0.9
AUDIO_BLOCK_FRAMES = 65536
#: Windowed-sinc resampler: zero crossings on each side, and the cut-off as a share of Nyquist.
RESAMPLE_HALF_TAPS = 16
RESAMPLE_ROLLOFF = 0.95
#: Up to this many filter phases (output rate / gcd of the rates) are computed once.
RESAMPLE_MAX_PHASES = 4096

_WINDOWS_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"{p}{i}" for p in ("COM", "LPT") for i in range(10)]
)
_NAME_FORBIDDEN = frozenset('<>:"|?*')
_NAME_DROPPED_CATEGORIES = frozenset(["Cf", "Cs", "Zl", "Zp"])


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


#: Cost of ``k_enc`` for new payloads (stored in each payload, so it can change later).
DEFAULT_KDF = KdfParams(log2_n=17, r=8, p=1)
#: Cost of ``k_pos``; fixed by the format, since extraction has no payload to read it from.
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


def _derive(secret: bytes, salt: bytes, kdf: KdfParams, info: bytes) -> bytes:
    stretched = Scrypt(salt=salt, length=KEY_BYTES, n=kdf.n, r=kdf.r, p=kdf.p).derive(secret)
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(stretched)


def derive_position_key(passphrase: str, *, position_kdf: KdfParams = POSITION_KDF) -> bytes:
    """The 32-byte key that decides where bits go; depends on the passphrase alone.

    ``position_kdf`` exists so tests can run fast: a stego file made with anything but
    :data:`POSITION_KDF` cannot be found by a standard extraction.
    """
    salt = hashes.Hash(hashes.SHA256())
    salt.update(POSITION_SALT)
    return _derive(_passphrase_bytes(passphrase), salt.finalize(), position_kdf, K_POS_INFO)


# --- names and media types ----------------------------------------------------------------


def _truncate_utf8(text: str, limit: int) -> str:
    return text.encode("utf-8")[:limit].decode("utf-8", errors="ignore")


def safe_name(name: str) -> str:
    """A file name safe to create in any folder: no path, no control characters.

    Keeps only the last path component (``/`` and ``\\`` both separate), replaces control
    and Windows-forbidden characters with ``_``, drops invisible format characters (such as
    right-to-left overrides that disguise an extension), strips leading and trailing dots and
    spaces, shortens to :data:`MAX_NAME_BYTES` keeping the extension, prefixes Windows device
    names with ``_`` and falls back to :data:`DEFAULT_NAME`. Idempotent.
    """
    text = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    chars: list[str] = []
    for char in text:
        category = unicodedata.category(char)
        if category in _NAME_DROPPED_CATEGORIES:
            continue
        chars.append("_" if category == "Cc" or char in _NAME_FORBIDDEN else char)
    text = "".join(chars).strip(" .")
    if len(text.encode("utf-8")) > MAX_NAME_BYTES:
        stem, dot, suffix = text.rpartition(".")
        if not dot or not stem or len(suffix) > MAX_SUFFIX_CHARS:
            stem, suffix = text, ""
        else:
            suffix = "." + suffix
        text = _truncate_utf8(stem, MAX_NAME_BYTES - len(suffix.encode("utf-8"))) + suffix
        text = text.strip(" .")
    if not text:
        return DEFAULT_NAME
    if text.split(".", 1)[0].rstrip(" ").upper() in _WINDOWS_RESERVED:
        text = _truncate_utf8("_" + text, MAX_NAME_BYTES)
    return text


def _valid_media_type(media_type: str) -> bool:
    return (
        0 < len(media_type) <= MAX_MEDIA_TYPE_BYTES
        and media_type.isascii()
        and media_type.isprintable()
        and media_type == media_type.strip()
        and "/" in media_type
    )


def _guess_media_type(name: str) -> str:
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed if guessed and _valid_media_type(guessed) else DEFAULT_MEDIA_TYPE


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
    if not _valid_media_type(media_type):
        raise _corrupt("invalid media type")
    if data_len == 0:
        raise _corrupt("empty secret")
    return Secret(data=frame[type_end:end], name=safe_name(name), media_type=media_type)


def _plaintext_for(data: bytes, name: str, media_type: str) -> bytes:
    if not data:
        raise _error("empty_secret", "The secret is empty: there is nothing to hide.")
    if len(data) > MAX_SECRET_BYTES:
        raise _too_large("The secret", len(data))
    if not _valid_media_type(media_type):
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


def _encrypt(plaintext: bytes, passphrase: str, kdf: KdfParams) -> bytes:
    salt = os.urandom(SALT_BYTES)
    aad = _HEADER.pack(FORMAT_VERSION, kdf.log2_n, kdf.r, kdf.p) + salt
    k_enc = _derive(_passphrase_bytes(passphrase), salt, kdf, K_ENC_INFO)
    nonce = os.urandom(NONCE_BYTES)
    return aad + nonce + ChaCha20Poly1305(k_enc).encrypt(nonce, plaintext, aad)


def seal(
    secret: bytes,
    *,
    name: str,
    media_type: str,
    passphrase: str,
    kdf: KdfParams = DEFAULT_KDF,
    position_kdf: KdfParams = POSITION_KDF,
) -> Sealed:
    """Frame, pad and encrypt ``secret``; also derive the position key for the server.

    ``name`` is stored through :func:`safe_name`. ``kdf`` sets the cost of ``k_enc`` and is
    stored in the payload; ``position_kdf`` is for tests only (see
    :func:`derive_position_key`).
    """
    _passphrase_bytes(passphrase)  # fail fast, before any framing or key stretching
    plaintext = _plaintext_for(secret, name, media_type)
    payload = _encrypt(plaintext, passphrase, kdf)
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
    if version != FORMAT_VERSION:
        raise _corrupt(f"unknown format version {version}")
    if not _kdf_in_bounds(log2_n, r, p):
        raise _corrupt("impossible key-derivation parameters")
    aad = payload[:AAD_BYTES]
    k_enc = _derive(secret, aad[_HEADER.size :], KdfParams(log2_n, r, p), K_ENC_INFO)
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
    return PreparedSecret(_read_bytes(path), name, _guess_media_type(name))


def _opus_rate(rate: int) -> int:
    """The smallest Opus rate at or above ``rate``, else the highest."""
    return next((r for r in OPUS_RATES if r >= rate), OPUS_RATES[-1])


def _kernel(x: NDArray[np.float64], cutoff: float, half_width: int) -> NDArray[np.float64]:
    """Blackman-windowed sinc low-pass, ``x`` in input samples."""
    u = x / half_width
    window = 0.42 + 0.5 * np.cos(np.pi * u) + 0.08 * np.cos(2 * np.pi * u)
    window = np.where(np.abs(u) < 1.0, window, 0.0)
    result: NDArray[np.float64] = cutoff * np.sinc(cutoff * x) * window
    return result


def _normalised(weights: NDArray[np.float64]) -> NDArray[np.float32]:
    """Rows scaled to sum to one (unit gain at DC), as float32."""
    result: NDArray[np.float32] = (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)
    return result


def _resample(
    blocks: Iterable[NDArray[np.float32]], rate_in: int, rate_out: int, channels: int
) -> Iterator[NDArray[np.float32]]:
    """Stream ``blocks`` (frames x channels) from ``rate_in`` to ``rate_out`` Hz.

    A polyphase windowed-sinc resampler: output sample ``k`` sits at input time
    ``k * down / up``. Input is kept only as far back as the filter reaches.
    """
    gcd = math.gcd(rate_in, rate_out)
    up, down = rate_out // gcd, rate_in // gcd
    cutoff = min(1.0, up / down) * RESAMPLE_ROLLOFF
    half = math.ceil(RESAMPLE_HALF_TAPS / min(1.0, up / down))
    taps = np.arange(-half + 1, half + 1, dtype=np.float64)
    # Output k uses phase (k * down) % up; with few phases, weigh each one once.
    table = None
    if up <= RESAMPLE_MAX_PHASES:
        table = _normalised(_kernel(np.arange(up)[:, None] / up - taps, cutoff, half))
    buf = np.zeros((half, channels), dtype=np.float32)
    buf_start = -half  # absolute input index of buf[0]; zeros before the signal
    next_k = 0
    total_in = 0

    def emit(k_stop: int) -> Iterator[NDArray[np.float32]]:
        nonlocal next_k
        for k0 in range(next_k, k_stop, AUDIO_BLOCK_FRAMES):
            ks = np.arange(k0, min(k0 + AUDIO_BLOCK_FRAMES, k_stop), dtype=np.int64)
            base = (ks * down) // up - buf_start
            phase = (ks * down) % up
            if table is not None:
                weights = table[phase]
            else:
                weights = _normalised(_kernel(phase[:, None] / up - taps, cutoff, half))
            acc = np.zeros((len(ks), channels), dtype=np.float32)
            for column, tap in enumerate(range(-half + 1, half + 1)):
                acc += buf[base + tap] * weights[:, column, None]
            yield acc
        next_k = max(next_k, k_stop)

    for block in blocks:
        total_in += len(block)
        buf = np.concatenate([buf, block])
        last_usable = buf_start + len(buf) - 1 - half  # highest base with all taps present
        yield from emit(-(-(last_usable + 1) * up // down))
        keep_from = (next_k * down) // up - half + 1
        if keep_from > buf_start:
            buf = buf[keep_from - buf_start :]
            buf_start = keep_from
    buf = np.concatenate([buf, np.zeros((half + 1, channels), dtype=np.float32)])
    yield from emit(-(-total_in * up // down))


def _read_blocks(sound: Any, channels: int) -> Iterator[NDArray[np.float32]]:
    """Float32 blocks of at most :data:`MAX_OPUS_CHANNELS` channels from an open file."""
    while True:
        block: NDArray[np.float32] = sound.read(AUDIO_BLOCK_FRAMES, dtype="float32", always_2d=True)
        if not len(block):
            return
        if channels > MAX_OPUS_CHANNELS:
            block = block.mean(axis=1, keepdims=True, dtype=np.float32)
        yield block


def _encode_opus(path: Path, target: Path) -> None:
    with sf.SoundFile(str(path)) as source:
        rate_in = int(source.samplerate)
        channels_in = int(source.channels)
        channels = channels_in if channels_in <= MAX_OPUS_CHANNELS else 1
        rate_out = _opus_rate(rate_in)
        blocks: Iterable[NDArray[np.float32]] = _read_blocks(source, channels_in)
        if rate_out != rate_in:
            blocks = _resample(blocks, rate_in, rate_out, channels)
        with sf.SoundFile(
            str(target),
            mode="w",
            samplerate=rate_out,
            channels=channels,
            format="OGG",
            subtype="OPUS",
            compression_level=OPUS_COMPRESSION_LEVEL,
        ) as sink:
            for block in blocks:
                sink.write(np.clip(block, -1.0, 1.0))


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
            _encode_opus(path, target)
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
