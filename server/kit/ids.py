"""Server-generated identifiers: a short type prefix and 128 bits of randomness."""

from __future__ import annotations

import secrets
import string

__all__ = ["new_id"]

_ALPHABET = string.ascii_letters + string.digits
_ID_CHARS = 22  # 62**22 > 2**130
_UNBIASED = 256 - 256 % len(_ALPHABET)
"""Random bytes below this map evenly onto the alphabet (``b % 62``); the rest are dropped."""


def new_id(prefix: str) -> str:
    """A fresh id such as ``job_4fZ...``; never derived from anything a client sent.

    Its characters come from one read of the system's randomness (uniform over the alphabet),
    not one read per character: ids are made on the API's hot path."""
    chars: list[str] = []
    while len(chars) < _ID_CHARS:
        chars += [_ALPHABET[b % len(_ALPHABET)] for b in secrets.token_bytes(32) if b < _UNBIASED]
    return f"{prefix}_" + "".join(chars[:_ID_CHARS])
