"""The sealed payload hides everything about the secret but a padded size: its name, media
type, bytes and exact length are inside the AEAD, and any change to any byte is refused."""

from __future__ import annotations

import pytest

from desktop.core import envelope
from desktop.core.envelope import KdfParams, open_sealed, seal

FAST = KdfParams(log2_n=4, r=8, p=1)
PASSPHRASE = "a passphrase nobody else knows"
NAME = "quarterly-layoffs-draft.pdf"
MEDIA_TYPE = "application/pdf"
SECRET = b"%PDF-1.7 the board decided to close the Leeds office" * 20


def _sealed(data: bytes = SECRET, name: str = NAME, media_type: str = MEDIA_TYPE) -> bytes:
    return seal(
        data, name=name, media_type=media_type, passphrase=PASSPHRASE,
        position_kdf=FAST,
    ).payload  # fmt: skip


def test_name_media_type_and_bytes_are_not_in_the_clear() -> None:
    payload = _sealed()
    for clear in (NAME.encode(), b"quarterly", MEDIA_TYPE.encode(), SECRET[:16], b"Leeds"):
        assert clear not in payload
    assert open_sealed(payload, PASSPHRASE).name == NAME


REGIONS = {
    "version": 0,
    "kdf": 1,
    "salt": 5,
    "nonce": envelope.AAD_BYTES + 3,
    "ciphertext (frame header)": envelope.PREFIX_BYTES + 1,
    "ciphertext (name)": envelope.PREFIX_BYTES + 8,
    "ciphertext (padding)": -envelope.TAG_BYTES - 1,
    "tag": -1,
}


@pytest.mark.parametrize("where", sorted(REGIONS))
def test_a_change_to_any_region_is_refused(where: str) -> None:
    payload = bytearray(_sealed())
    payload[REGIONS[where]] ^= 0x01
    with pytest.raises(envelope.EnvelopeError) as e:
        open_sealed(bytes(payload), PASSPHRASE)
    assert e.value.code in ("wrong_passphrase", "corrupt_payload")


def test_a_truncated_or_extended_payload_is_refused() -> None:
    payload = _sealed()
    for changed in (payload[:-1], payload + b"\x00", payload[: envelope.PREFIX_BYTES + 16]):
        with pytest.raises(envelope.EnvelopeError):
            open_sealed(changed, PASSPHRASE)


def test_the_exact_size_and_name_length_are_padded_away() -> None:
    sizes = {len(_sealed(SECRET[:n], name="n" * (1 + n % 50))) for n in range(500, 600)}
    assert len(sizes) == 1
