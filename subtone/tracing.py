"""One trace id per operation, carried as W3C Trace Context (``traceparent``).

The client makes a trace id for an operation (an encode, a decode, a CLI command) and sends it
on every call as ``traceparent: 00-<trace id>-<span id>-01`` with a fresh span id per request;
the API takes it (or makes one when a request has none), answers it in
:data:`REQUEST_ID_HEADER`, stores it on the job and puts it in the job's message; the worker
logs it with every line of the run and hands it to Triton as a request parameter. Because the
header is W3C's, an OpenTelemetry collector where an operator runs one joins the same trace.

Imports nothing but the standard library: both sides and the Triton models use it.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Final

__all__ = [
    "JOB_ID_PARAMETER",
    "REQUEST_ID_HEADER",
    "TRACEPARENT_HEADER",
    "TRACE_ID_PARAMETER",
    "TraceParent",
    "is_trace_id",
    "new_span_id",
    "new_trace_id",
    "parse_traceparent",
]

TRACEPARENT_HEADER: Final = "traceparent"
"""W3C Trace Context's header (https://www.w3.org/TR/trace-context/)."""
REQUEST_ID_HEADER: Final = "X-Request-Id"
"""The API answers every request with its trace id in this header."""
TRACE_ID_PARAMETER: Final = "subtone_trace_id"
"""The name of the Triton request parameter that carries the trace id."""
JOB_ID_PARAMETER: Final = "subtone_job_id"
"""The name of the Triton request parameter that carries the job id."""

VERSION: Final = "00"
SAMPLED: Final = "01"
TRACE_ID_HEX: Final = 32
SPAN_ID_HEX: Final = 16
_INVALID_TRACE: Final = "0" * TRACE_ID_HEX
_INVALID_SPAN: Final = "0" * SPAN_ID_HEX
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


def new_trace_id() -> str:
    """A random trace id: 32 lowercase hex digits, never all zeros."""
    while (trace := secrets.token_hex(TRACE_ID_HEX // 2)) == _INVALID_TRACE:  # pragma: no cover
        pass
    return trace


def new_span_id() -> str:
    """A random span (parent) id: 16 lowercase hex digits, never all zeros."""
    while (span := secrets.token_hex(SPAN_ID_HEX // 2)) == _INVALID_SPAN:  # pragma: no cover
        pass
    return span


def is_trace_id(value: object) -> bool:
    """Whether ``value`` is a valid trace id (32 lowercase hex digits, not all zeros)."""
    return isinstance(value, str) and bool(_TRACE_ID.match(value)) and value != _INVALID_TRACE


@dataclass(frozen=True)
class TraceParent:
    trace_id: str
    span_id: str
    flags: str = SAMPLED

    @classmethod
    def new(cls, trace_id: str | None = None) -> TraceParent:
        """A new span of ``trace_id`` (of a new trace when ``None``)."""
        return cls(trace_id or new_trace_id(), new_span_id())

    def header(self) -> str:
        return f"{VERSION}-{self.trace_id}-{self.span_id}-{self.flags}"


def parse_traceparent(value: str | None) -> TraceParent | None:
    """The ``traceparent`` header's fields, or ``None`` when it is missing or invalid (the
    W3C rules: lowercase hex only, version ``ff`` and all-zero ids are invalid; a later
    version may add fields)."""
    if not value:
        return None
    match = _TRACEPARENT.match(value.strip())
    if match is None:
        return None
    version, trace_id, span_id, flags, rest = match.groups()
    if version == "ff" or (version == VERSION and rest):
        return None
    if trace_id == _INVALID_TRACE or span_id == _INVALID_SPAN:
        return None
    return TraceParent(trace_id, span_id, flags)
