"""The project's own error type, and the stable codes both modes share.

Every error a person can cause (bad input, a wrong passphrase, a cover too small) is a
:class:`SubtoneError` with a stable ``code`` (snake_case, never renamed once released), a
message a person understands, and the HTTP status the API answers it with. Adapters turn
vendor errors into these with ``raise ... from e``.

Three outcomes of hiding and finding a message have codes of their own, the same in the LSB
and the robust mode, with the words a person is told (:data:`MESSAGES`):

* ``capacity_exceeded`` (:class:`CapacityExceeded`): the secret does not fit the cover;
* ``no_payload`` (:class:`NoPayload`): nothing under this passphrase: the passphrase is
  wrong, or the file was never marked;
* ``channel_damaged`` (:class:`ChannelDamaged`, robust mode): a message under this passphrase
  is there, but the channel it went through (a re-encoding, a cut) damaged it beyond what the
  error correction repairs.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "CAPACITY_EXCEEDED",
    "CHANNEL_DAMAGED",
    "MESSAGES",
    "NO_PAYLOAD",
    "CapacityExceeded",
    "ChannelDamaged",
    "NoPayload",
    "SubtoneError",
]

CAPACITY_EXCEEDED: Final = "capacity_exceeded"
NO_PAYLOAD: Final = "no_payload"
CHANNEL_DAMAGED: Final = "channel_damaged"

MESSAGES: Final = {
    CAPACITY_EXCEEDED: "The secret does not fit in this cover.",
    NO_PAYLOAD: (
        "No hidden message was found: the passphrase is wrong, or this file holds no "
        "Subtone message."
    ),
    CHANNEL_DAMAGED: (
        "A hidden message is there, but the file was changed too much since it was hidden "
        "(re-encoded at too low a quality, or cut inside the message) for it to be recovered."
    ),
}
"""What a person is told for each shared code (a message may add detail after it)."""


class SubtoneError(Exception):
    """An expected failure with a stable code and a human message."""

    code: str = "error"
    status: int = 400

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status

    def __str__(self) -> str:
        return f"[{self.code}] {self.message}"

    def to_dict(self) -> dict[str, dict[str, str]]:
        """The JSON error body the API returns: ``{"error": {"code", "message"}}``."""
        return {"error": {"code": self.code, "message": self.message}}


class CapacityExceeded(SubtoneError):
    """The secret does not fit in the cover (in the mode asked for)."""

    code = CAPACITY_EXCEEDED
    status = 422


class NoPayload(SubtoneError):
    """No message under this key: a wrong passphrase, or a file that was never marked."""

    code = NO_PAYLOAD
    status = 422

    def __init__(
        self,
        message: str = MESSAGES[NO_PAYLOAD],
        *,
        code: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, code=code, status=status)


class ChannelDamaged(SubtoneError):
    """A message under this key is there, but the channel damaged it beyond correction."""

    code = CHANNEL_DAMAGED
    status = 422

    def __init__(
        self,
        message: str = MESSAGES[CHANNEL_DAMAGED],
        *,
        code: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, code=code, status=status)
