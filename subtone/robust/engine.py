"""Where robust marks are made and read: in this process, or on a Triton server.

A robust engine works on a cover's whole **working mix** (:func:`subtone.robust.core.
working_mix`, 16 kHz mono): marking spends one SNR budget over the whole cover and reading
synchronises on the whole file, so a call is one cover, not a window.
:class:`InProcessRobustEngine` calls :mod:`subtone.robust.core`;
:class:`server.integrations.triton.TritonEngine` sends the mix to the ``stego_robust_embed`` /
``stego_robust_extract`` models, which run the same functions (:mod:`subtone.robust.
triton_model`).
"""

from __future__ import annotations

from typing import Protocol

from subtone.robust.wire import Mix, Residual

__all__ = ["InProcessRobustEngine", "RobustEngine"]


class RobustEngine(Protocol):
    """Marks and reads working mixes; safe to call from several threads."""

    def robust_embed(self, mix: Mix, k_pos: bytes, payload: bytes) -> Residual:
        """What marking ``payload`` under ``k_pos`` adds to ``mix``. Raises
        :class:`~subtone.robust.core.CapacityExceeded` if it does not fit."""
        ...

    def robust_extract(self, mix: Mix, k_pos: bytes) -> bytes:
        """The payload marked under ``k_pos``. Raises :class:`~subtone.errors.NoPayload` or
        :class:`~subtone.errors.ChannelDamaged`."""
        ...


class InProcessRobustEngine:
    """Runs :mod:`subtone.robust.core` in the calling thread.

    The robust code (scipy's signal processing, some 60 MB) is imported on the first call:
    this module, the engines' interface, is imported by a worker that may never run a
    robust job."""

    def robust_embed(self, mix: Mix, k_pos: bytes, payload: bytes) -> Residual:
        from subtone.robust.embedding import embed_mix

        return embed_mix(mix, k_pos, payload)

    def robust_extract(self, mix: Mix, k_pos: bytes) -> bytes:
        from subtone.robust.extraction import extract_mix

        return extract_mix(mix, k_pos)

    def close(self) -> None:
        """Nothing to release."""
