"""JSON log lines, one schema in every server process, with the trace id of the work at hand.

Every line is one JSON object::

    {"time": "2025-01-01T12:00:00.123Z", "level": "info", "process": "worker", "pid": 4242,
     "trace_id": "4bf9…", "job_id": "job_…", "tenant_id": "tn_…",
     "event": "job job_… started, attempt 1", "logger": "server.jobs.runner",
     "thread": "Thread-3", "fields": {…}, "exception": "Traceback …"}

``trace_id``, ``job_id`` and ``tenant_id`` come from the :class:`LogContext` bound to the
running code (:func:`bound`, a context variable: each request, each job run has its own);
``fields`` holds what a call passed in ``extra=``. Never a token, a passphrase or a key:
the context holds ids only, and callers log ids, codes and sizes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Final, TextIO

__all__ = [
    "JsonFormatter",
    "LogContext",
    "bind",
    "bound",
    "configure_logging",
    "current",
]

QUIET_LOGGERS: Final = ("pika",)
"""Libraries that log every connection step at INFO."""
_RESERVED: Final = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)
"""A log record's own attributes; anything else on a record came from ``extra=``."""


@dataclass(frozen=True)
class LogContext:
    """What every log line of the work at hand carries."""

    trace_id: str | None = None
    job_id: str | None = None
    tenant_id: str | None = None


@dataclass
class _Slot:
    """A mutable holder, so code running in a copy of the context (a FastAPI dependency in
    the thread pool) can add to what the request's other code logs."""

    context: LogContext


_current: ContextVar[_Slot | None] = ContextVar("subtone_log_context", default=None)


def current() -> LogContext:
    """The context bound here (empty when none is)."""
    slot = _current.get()
    return slot.context if slot is not None else LogContext()


@contextlib.contextmanager
def bound(**fields: str | None) -> Iterator[LogContext]:
    """Bind the current context with ``fields`` replaced, until the block ends."""
    context = replace(current(), **fields)
    token = _current.set(_Slot(context))
    try:
        yield context
    finally:
        _current.reset(token)


def bind(**fields: str | None) -> None:
    """Add ``fields`` to the context bound by the enclosing :func:`bound` (no-op without one)."""
    slot = _current.get()
    if slot is not None:
        slot.context = replace(slot.context, **fields)


class _AlreadyClosed(logging.Filter):
    """Drops pika's ERROR "BlockingConnection.close(...) called on closed connection": the
    broker closes every connection at shutdown, some of which the stopping worker closed
    already. Nothing is wrong, and an operator must not be told otherwise on every stop."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "called on closed connection" not in record.getMessage()


class JsonFormatter(logging.Formatter):
    """One JSON object per line, in the schema of this module's docstring."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        context = current()
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "process": self.process,
            "pid": record.process or os.getpid(),
            "trace_id": context.trace_id,
            "job_id": context.job_id,
            "tenant_id": context.tenant_id,
            "event": record.getMessage(),
            "logger": record.name,
            "thread": record.threadName,
        }
        fields = {k: v for k, v in record.__dict__.items() if k not in _RESERVED}
        if fields:
            line["fields"] = fields
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return json.dumps(line, default=str, ensure_ascii=False)


def configure_logging(process: str, level: str, *, stream: TextIO | None = None) -> None:
    """Send every logger's lines (the root's handler, the libraries' included: uvicorn,
    dramatiq) to ``stream`` (stderr) as JSON lines of ``process``, at ``level``."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter(process))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    pika_closing = logging.getLogger("pika.adapters.blocking_connection")
    if not any(isinstance(f, _AlreadyClosed) for f in pika_closing.filters):
        pika_closing.addFilter(_AlreadyClosed())
