"""Forward error correction for the robust mode: a rate-1/4 convolutional code (constraint
length 7, generators 117/127/155/171 octal, free distance 20) with a soft-decision Viterbi
decoder.
Soft values are per coded bit, positive for 0. Pure numpy."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["TAIL", "coded_length", "conv_decode", "conv_encode"]

K = 7
TAIL = K - 1
_GENERATORS = (0o117, 0o127, 0o155, 0o171)
RATE_INV = len(_GENERATORS)  # coded bits per message bit
_TAPS = [np.array([(g >> (K - 1 - j)) & 1 for j in range(K)], dtype=np.int64) for g in _GENERATORS]

# Viterbi tables. A state holds the last six inputs, newest in bit 5; the 7-bit register of a
# transition is (input << 6) | state, and the next state is register >> 1. The predecessors of
# state s are ((s << 1) | x) & 63 for x in {0, 1}, with register (s << 1) | x.
_NEXT = np.arange(64)
_REG = np.stack([(_NEXT << 1) | 0, (_NEXT << 1) | 1])  # (2, 64)
_PRED = _REG & 63
_SIGNS = np.array(
    [[1 - 2 * (bin(r & g).count("1") & 1) for g in _GENERATORS] for r in range(128)],
    dtype=np.float64,
)  # (128, RATE_INV): +1 where the output bit is 0


def coded_length(message_bits: int) -> int:
    """Coded bits for a message of ``message_bits`` (with the zero tail)."""
    return RATE_INV * (message_bits + TAIL)


def conv_encode(bits: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Coded bits, one group per step (g0, g1, g2, g3, g0, ...), the encoder ending in state 0."""
    u = np.concatenate([np.asarray(bits, dtype=np.int64), np.zeros(TAIL, dtype=np.int64)])
    outs = [np.convolve(u, taps)[: len(u)] % 2 for taps in _TAPS]
    return np.asarray(np.stack(outs, axis=1).ravel(), dtype=np.int64)


def conv_decode(soft: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Maximum-likelihood message bits from soft coded bits (positive = 0; 0 = erased)."""
    s = np.asarray(soft, dtype=np.float64).reshape(-1, RATE_INV)
    steps = s.shape[0]
    branch = s @ _SIGNS.T  # (steps, 128): correlation of each register's outputs
    metric = np.full(64, -np.inf)
    metric[0] = 0.0
    choice = np.zeros((steps, 64), dtype=np.uint8)
    r0, r1, p0, p1 = _REG[0], _REG[1], _PRED[0], _PRED[1]
    for t in range(steps):
        b = branch[t]
        c0 = metric[p0] + b[r0]
        c1 = metric[p1] + b[r1]
        pick = c1 > c0
        choice[t] = pick
        metric = np.where(pick, c1, c0)
    state = 0
    out = np.zeros(steps, dtype=np.int64)
    for t in range(steps - 1, -1, -1):
        out[t] = state >> 5
        state = ((state << 1) | int(choice[t, state])) & 63
    return out[: steps - TAIL]
