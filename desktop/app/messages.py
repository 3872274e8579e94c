"""Errors in plain language: the server's (or the core's) code and message, made clear."""

from __future__ import annotations

from typing import Final

__all__ = ["describe_error", "title_for"]

_PLAIN: Final = {
    "wrong_passphrase": (
        "Wrong passphrase",
        "The passphrase is wrong, or this file holds no hidden message. "
        "Check the passphrase (it is case-sensitive) and try again.",
    ),
    "no_payload": (
        "Wrong passphrase, or nothing hidden",
        "No hidden message was found with this passphrase. Either the passphrase is wrong, or "
        "this file is not one Subtone wrote a message into.",
    ),
    "corrupt_payload": (
        "The message is damaged",
        "Something was found but it cannot be opened: the passphrase may be wrong, or the file "
        "was changed after the message was hidden.",
    ),
    "capacity_exceeded": ("The secret does not fit", ""),
    "channel_damaged": (
        "The message was damaged on the way",
        "A hidden message is there, but the file was changed too much since it was hidden "
        "(re-encoded at too low a quality, or cut inside the message). Ask for a copy at a "
        "higher quality.",
    ),
    "cover_too_long": ("The cover is too long for this server", ""),
    "unsuitable_cover": ("This cover cannot carry the secret so that it survives", ""),
    "not_audio": ("Not an audio file", ""),
    "mode_unavailable": ("The server cannot do this", "Ask its operator to update it."),
    "server_unreachable": (
        "The server cannot be reached",
        "Your work is kept and will be sent when the server is back.",
    ),
    "unauthorized": (
        "The server refused the token",
        "Check the API token in Settings.",
    ),
    "forbidden": ("Not allowed", "This token may not do that."),
    "not_wav": ("Not a WAV file", "The cover must be an uncompressed PCM WAV file."),
    "unsupported_format": (
        "Unsupported WAV format",
        "Use a 16- or 24-bit PCM WAV file as the cover.",
    ),
    "no_input_device": ("", ""),  # the message says it all
    "no_output_device": ("", ""),
    "rate_limited": ("The server is busy", "Try again in a moment."),
    "internal_error": ("Something went wrong", ""),
    "protocol_mismatch": ("The server speaks another protocol version", ""),
}


def title_for(code: str) -> str:
    """A short headline for an error code."""
    return _PLAIN.get(code, ("Error", ""))[0] or "Error"


def describe_error(code: str, message: str) -> str:
    """One paragraph for a person: the plain reading of ``code``, then the detail given."""
    title, advice = _PLAIN.get(code, ("", ""))
    message = message.strip()
    if code in ("wrong_passphrase", "no_payload", "corrupt_payload"):
        return f"{title}. {advice}"
    parts = [f"{title}." if title else ""]
    if message:
        parts.append(message if message.endswith((".", "!", "?")) else f"{message}.")
    if advice:
        parts.append(advice)
    text = " ".join(p for p in parts if p)
    return f"{text} [{code}]" if code and code not in _PLAIN else text
