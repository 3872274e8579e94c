"""The project's own error type.

Every error a person can cause (bad input, a wrong passphrase, a cover too small) is a
:class:`SubtoneError` with a stable ``code`` (snake_case, never renamed once released), a
message a person understands, and the HTTP status the API answers it with. Adapters turn
vendor errors into these with ``raise ... from e``.
"""

from __future__ import annotations

__all__ = ["SubtoneError"]


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
