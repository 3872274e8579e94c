"""Server-generated ids (server.kit.ids)."""

from __future__ import annotations

import collections
import string

from server.kit.ids import new_id

ALPHABET = set(string.ascii_letters + string.digits)


def test_an_id_is_the_prefix_and_22_characters_of_the_alphabet() -> None:
    ids = {new_id("job") for _ in range(2000)}
    assert len(ids) == 2000
    for made in ids:
        prefix, _, body = made.partition("_")
        assert prefix == "job" and len(body) == 22 and set(body) <= ALPHABET


def test_every_character_is_about_as_likely() -> None:
    counts = collections.Counter("".join(new_id("x")[2:] for _ in range(5000)))
    expected = 5000 * 22 / len(ALPHABET)  # about 1,774 each
    assert set(counts) == ALPHABET
    assert all(0.85 * expected < n < 1.15 * expected for n in counts.values()), counts
