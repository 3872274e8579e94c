"""The robust mode's extraction (format r2, see :mod:`subtone.robust.core`): the header and
the payload read back from the data cells the synchronisation found."""

from __future__ import annotations

import hmac

import numpy as np
import numpy.typing as npt

from subtone import errors
from subtone.robust._fec import coded_length, conv_decode
from subtone.robust.core import (
    ChannelDamaged,
    Mix,
    NoPayload,
    _mix_samples,
    _open_header,
    _payload_tag,
    _permutation,
    working_mix,
)
from subtone.robust.layout import (
    HEADER_CELLS,
    HEADER_COPIES,
    RS_N,
    RS_PARITY,
    _coded_bytes_for,
)
from subtone.robust.sync import _synchronise

__all__ = ["extract", "extract_mix"]

PRESENT_Z = 6.0  # pilot z-score above which a mark under this key is taken as present
# ... or the z-score of the pilots after the columns the search looked at: no maximum was taken
# over those, so a wrong key leaves them N(0, 1) and a lower bar is as safe (p = 3e-5).
PRESENT_Z_UNSEARCHED = 4.0


def _deinterleave(
    k_pos: bytes, label: bytes, soft: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    return np.asarray(soft[_permutation(k_pos, label, len(soft))], dtype=np.float64)


def _bytes(bits: npt.NDArray[np.int64]) -> bytes:
    return np.packbits(bits.astype(np.uint8)).tobytes()


def _outer_decode(coded: bytes, length: int) -> bytes | None:
    if RS_PARITY == 0:
        return coded[:length]
    from reedsolo import ReedSolomonError, RSCodec  # only with the outer code on

    rs = RSCodec(RS_PARITY)
    out = bytearray()
    for i in range(0, len(coded), RS_N):
        try:
            msg, _, _ = rs.decode(bytearray(coded[i : i + RS_N]))
        except ReedSolomonError:
            return None
        out += msg
    return bytes(out)


def extract(samples: npt.ArrayLike, rate: int, k_pos: bytes) -> bytes:
    """The payload marked under ``k_pos``. Raises :class:`NoPayload` when there is none under
    this key, :class:`ChannelDamaged` when there is one the channel destroyed."""
    a = np.asarray(samples)
    if a.ndim not in (1, 2) or a.shape[0] == 0:
        raise NoPayload(f"{errors.MESSAGES[errors.NO_PAYLOAD]} (the file has no samples)")
    return extract_mix(working_mix(a, rate), k_pos)


def _say(code: str, detail: str) -> str:
    """The shared message of ``code`` (:data:`subtone.errors.MESSAGES`), with a detail."""
    return f"{errors.MESSAGES[code][:-1]} ({detail})."


def extract_mix(mix: Mix, k_pos: bytes) -> bytes:
    """:func:`extract` on the working mix (:func:`working_mix`) of the file."""
    m16 = _mix_samples(mix)
    sync, data = _synchronise(m16, k_pos)
    present = sync.z >= PRESENT_Z or sync.z_unsearched >= PRESENT_Z_UNSEARCHED
    if len(data) < HEADER_CELLS:
        if present:
            raise ChannelDamaged(_say(errors.CHANNEL_DAMAGED, "the file is cut too short"))
        raise NoPayload(_say(errors.NO_PAYLOAD, "the file is too short to hold one"))
    hsoft = _deinterleave(k_pos, b"perm-header", data[:HEADER_CELLS])
    hsoft = hsoft.reshape(HEADER_COPIES, -1).sum(axis=0)
    sealed = _bytes(conv_decode(hsoft))
    opened = _open_header(k_pos, sealed)
    if opened is None:
        if present:
            raise ChannelDamaged(
                _say(
                    errors.CHANNEL_DAMAGED,
                    f"its marks are there, pilot z = {sync.z:.1f}, its header is not",
                )
            )
        raise NoPayload(_say(errors.NO_PAYLOAD, f"pilot z = {sync.z:.1f}"))
    length, payload_tag = opened
    coded = _coded_bytes_for(length)
    n = coded_length(coded * 8)
    body = data[HEADER_CELLS : HEADER_CELLS + n]
    if len(body) < n:
        raise ChannelDamaged(_say(errors.CHANNEL_DAMAGED, "the message's end is cut off"))
    word = _bytes(conv_decode(_deinterleave(k_pos, b"perm-payload", body)))
    out = _outer_decode(word, length)
    if out is None or not hmac.compare_digest(_payload_tag(k_pos, out), payload_tag):
        raise ChannelDamaged(
            _say(errors.CHANNEL_DAMAGED, "more errors than the error correction repairs")
        )
    return out
