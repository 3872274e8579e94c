"""Names and media types a secret may carry: safe to create as a file anywhere, and printable
ASCII media types (guessed from the name when none is given).
"""

from __future__ import annotations

import mimetypes
import unicodedata

__all__ = [
    "DEFAULT_MEDIA_TYPE",
    "DEFAULT_NAME",
    "MAX_MEDIA_TYPE_BYTES",
    "MAX_NAME_BYTES",
    "guess_media_type",
    "safe_name",
    "valid_media_type",
]

#: File names are stored as at most this many UTF-8 bytes.
MAX_NAME_BYTES = 255
MAX_MEDIA_TYPE_BYTES = 255
#: Extensions longer than this are not kept when a long name is shortened.
MAX_SUFFIX_CHARS = 16
DEFAULT_NAME = "secret"
DEFAULT_MEDIA_TYPE = "application/octet-stream"

_WINDOWS_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"{p}{i}" for p in ("COM", "LPT") for i in range(10)]
)
_NAME_FORBIDDEN = frozenset('<>:"|?*')
_NAME_DROPPED_CATEGORIES = frozenset(["Cf", "Cs", "Zl", "Zp"])


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


def valid_media_type(media_type: str) -> bool:
    return (
        0 < len(media_type) <= MAX_MEDIA_TYPE_BYTES
        and media_type.isascii()
        and media_type.isprintable()
        and media_type == media_type.strip()
        and "/" in media_type
    )


def guess_media_type(name: str) -> str:
    guessed, _ = mimetypes.guess_type(name, strict=False)
    return guessed if guessed and valid_media_type(guessed) else DEFAULT_MEDIA_TYPE
