"""A rough strength estimate for a passphrase, and the hint shown under the field (Qt-free).

The estimate is deliberately simple: the length times the bits of the character classes
used, less what repeats, runs (``abcd``, ``1234``), keyboard rows and well-known passwords
give away. It errs on the low side; it is a hint, not a guarantee.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Final

__all__ = ["MIN_ACCEPTED_BITS", "STRONG_WORDS", "Strength", "estimate_bits", "strength"]

MIN_ACCEPTED_BITS: Final = 28.0
"""Below this the passphrase is refused: guessing it would take minutes, not years."""
_LEVELS: Final = (
    (28.0, "Very weak"),
    (40.0, "Weak"),
    (60.0, "Fair"),
    (80.0, "Strong"),
    (math.inf, "Very strong"),
)
_COMMON: Final = frozenset(
    [
        "password",
        "passw0rd",
        "p@ssw0rd",
        "123456",
        "12345678",
        "123456789",
        "qwerty",
        "qwertyuiop",
        "azerty",
        "letmein",
        "welcome",
        "admin",
        "iloveyou",
        "monkey",
        "dragon",
        "secret",
        "sunshine",
        "princess",
        "football",
        "baseball",
        "trustno1",
        "subtone",
        "abc123",
        "111111",
        "000000",
        "changeme",
    ]
)
_KEYBOARD_ROWS: Final = ("qwertyuiop", "asdfghjkl", "zxcvbnm", "azertyuiop", "1234567890")
WORD_BITS: Final = 12.0
STRONG_BITS: Final = _LEVELS[2][0]
"""Where "Strong" starts."""
STRONG_WORDS: Final = math.ceil(STRONG_BITS / WORD_BITS)
"""Random words that rate "Strong": what the hint recommends, so hint and meter agree."""
STRONG_WORDS_TEXT: Final = {4: "Four", 5: "Five", 6: "Six", 7: "Seven"}.get(
    STRONG_WORDS, str(STRONG_WORDS)
)


@dataclass(frozen=True)
class Strength:
    bits: float
    level: int
    """0 (very weak) to 4 (very strong)."""
    label: str
    hint: str

    @property
    def acceptable(self) -> bool:
        return self.bits >= MIN_ACCEPTED_BITS


def _pool(text: str) -> int:
    pool = 0
    if re.search(r"[a-z]", text):
        pool += 26
    if re.search(r"[A-Z]", text):
        pool += 26
    if re.search(r"[0-9]", text):
        pool += 10
    if re.search(r"[ ]", text):
        pool += 1
    if re.search(r"[!-/:-@\[-`{-~]", text):
        pool += 33
    if any(ord(c) > 127 for c in text):
        pool += 100
    return max(pool, 1)


def _predictable(text: str) -> int:
    """How many characters follow from the one before (repeats, runs, keyboard rows)."""
    lowered = text.lower()
    count = 0
    for i in range(1, len(lowered)):
        previous, current = lowered[i - 1], lowered[i]
        step = ord(current) - ord(previous)
        keyboard = any(previous + current in row for row in _KEYBOARD_ROWS)
        if step in (-1, 0, 1) or keyboard:
            count += 1
    return count


def estimate_bits(passphrase: str) -> float:
    """About how many bits of guessing the passphrase resists."""
    if not passphrase:
        return 0.0
    if passphrase.lower().strip() in _COMMON:
        return 4.0
    per_char = math.log2(_pool(passphrase))
    effective = len(passphrase) - 0.75 * _predictable(passphrase)
    distinct = len(set(passphrase))
    effective = min(effective, distinct * 3.0)  # "abababab" is not eight free choices
    bits = max(0.0, effective) * per_char
    words = [w for w in re.split(r"[\s\-_.,]+", passphrase.strip()) if w]
    if len(words) >= 2 and all(w.isalpha() for w in words):
        # Only words: guessed word by word (each about one of 4,000 common ones), not letter
        # by letter, so a long phrase of few words is not overrated.
        bits = min(bits, WORD_BITS * len(words) + (2.0 if passphrase.lower() != passphrase else 0))
    return round(bits, 1)


def strength(passphrase: str) -> Strength:
    bits = estimate_bits(passphrase)
    level = next(i for i, (limit, _) in enumerate(_LEVELS) if bits < limit)
    label = _LEVELS[level][1]
    if not passphrase:
        hint = "Choose a passphrase: it is the only way to get the secret back."
    elif bits < MIN_ACCEPTED_BITS:
        hint = (
            f"Too easy to guess. {STRONG_WORDS_TEXT} or more random words make a strong passphrase."
        )
    elif bits < STRONG_BITS:
        hint = "Could be guessed with effort: add a word or two."
    else:
        hint = "Good. Keep it somewhere safe: without it the secret cannot be recovered."
    return Strength(bits=bits, level=level, label=label, hint=hint)
