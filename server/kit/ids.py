"""Server-generated identifiers: a short type prefix and 128 bits of randomness."""

from __future__ import annotations

import secrets
import string

__all__ = ["new_id"]

_ALPHABET = string.ascii_letters + string.digits
_ID_CHARS = 22  # 62**22 > 2**130


def new_id(prefix: str) -> str:
    """A fresh id such as ``job_4fZ...``; never derived from anything a client sent."""
    return f"{prefix}_" + "".join(secrets.choice(_ALPHABET) for _ in range(_ID_CHARS))
