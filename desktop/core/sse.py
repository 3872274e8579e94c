"""A small parser for ``text/event-stream`` (server-sent events), fed line by line.

It follows the WHATWG event-stream rules that matter to a client: ``field: value`` lines,
one optional space after the colon, ``data`` lines joined with ``\\n``, comments (``:``) and
unknown fields ignored, an event dispatched at a blank line, and an event with no data
dropped. Feed it ``httpx.Response.iter_lines()``; it holds no I/O of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

__all__ = ["DEFAULT_EVENT", "ServerSentEvent", "iter_events"]

DEFAULT_EVENT = "message"


@dataclass(frozen=True)
class ServerSentEvent:
    """One dispatched event."""

    event: str = DEFAULT_EVENT
    data: str = ""
    id: str | None = None
    retry_ms: int | None = None


def iter_events(lines: Iterable[str]) -> Iterator[ServerSentEvent]:
    """The events in ``lines`` (without their line endings); a trailing partial event is dropped."""
    event = ""
    data: list[str] = []
    last_id: str | None = None
    retry_ms: int | None = None
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield ServerSentEvent(
                    event=event or DEFAULT_EVENT,
                    data="\n".join(data),
                    id=last_id,
                    retry_ms=retry_ms,
                )
            event, data, retry_ms = "", [], None
            continue
        if line.startswith(":"):
            continue
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            event = value
        elif name == "data":
            data.append(value)
        elif name == "id" and "\x00" not in value:
            last_id = value
        elif name == "retry" and value.isdigit():
            retry_ms = int(value)
