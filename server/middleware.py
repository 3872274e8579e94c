"""Pure ASGI middleware: the trace id and access log, the request body limit and the
last-resort 500.

All are plain ASGI (not ``BaseHTTPMiddleware``) so streamed responses (the job event stream)
pass through untouched.
"""

from __future__ import annotations

import logging
import time

from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import error_response
from server.kit import logs
from subtone.tracing import (
    REQUEST_ID_HEADER,
    TRACEPARENT_HEADER,
    TraceParent,
    is_trace_id,
    parse_traceparent,
)

__all__ = [
    "TRACE_ID_STATE",
    "BodySizeLimitMiddleware",
    "BodyTooLarge",
    "InternalErrorMiddleware",
    "TraceMiddleware",
]

log = logging.getLogger(__name__)

TRACE_ID_STATE = "trace_id"
"""The request's trace id, in ``request.state``."""
ACCESS_LOGGER = "server.access"
MS_PER_SECOND = 1000
INTERNAL_ERROR_MESSAGE = "Something went wrong on our side; it has been logged. Try again later."
_RESPONSE_START = "http.response.start"


class BodyTooLarge(HTTPException):
    """Raised while the body streams in; FastAPI lets HTTP exceptions through to the handlers."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, detail=f"The request body is larger than {limit} bytes.")


class BodySizeLimitMiddleware:
    """413 ``body_too_large`` for a body over ``max_body_bytes``.

    A declared ``Content-Length`` over the limit is refused before the app runs; a body that
    streams in (chunked) is counted as it is read.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _declared_length(scope) > self.max_body_bytes:
            await self._refuse(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge(self.max_body_bytes)
            return message

        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == _RESPONSE_START
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = BodyTooLarge(self.max_body_bytes)
        response = error_response(413, "body_too_large", str(error.detail))
        await response(scope, receive, send)


def _declared_length(scope: Scope) -> int:
    value = Headers(scope=scope).get("content-length", "")
    return int(value) if value.isdigit() else 0


class InternalErrorMiddleware:
    """An unexpected exception becomes 500 ``internal_error``: logged with its trace, never sent."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == _RESPONSE_START
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            response = error_response(500, "internal_error", INTERNAL_ERROR_MESSAGE)
            await response(scope, receive, send)


def request_trace(scope: Scope) -> TraceParent:
    """The caller's trace (``traceparent``, else an ``X-Request-Id`` that is a trace id), as a
    new span of ours; a new trace when the caller sent neither."""
    headers = Headers(scope=scope)
    parent = parse_traceparent(headers.get(TRACEPARENT_HEADER))
    if parent is not None:
        return TraceParent.new(parent.trace_id)
    request_id = headers.get(REQUEST_ID_HEADER, "").strip().lower()
    return TraceParent.new(request_id if is_trace_id(request_id) else None)


class TraceMiddleware:
    """Binds the request's trace id to its log lines, answers it (``traceparent`` and
    ``X-Request-Id``), and logs one access line per request (method, path without the query,
    status, duration): the only access log, so no query string (a signed URL's) is logged."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        trace = request_trace(scope)
        scope.setdefault("state", {})[TRACE_ID_STATE] = trace.trace_id
        status = 500
        start = time.perf_counter()

        async def tracing_send(message: Message) -> None:
            nonlocal status
            if message["type"] == _RESPONSE_START:
                status = int(message["status"])
                headers = MutableHeaders(scope=message)
                headers[TRACEPARENT_HEADER] = trace.header()
                headers[REQUEST_ID_HEADER] = trace.trace_id
            await send(message)

        with logs.bound(trace_id=trace.trace_id, job_id=None, tenant_id=None):
            try:
                await self.app(scope, receive, tracing_send)
            finally:
                self.log.info(
                    "%s %s %d",
                    scope.get("method", ""),
                    scope.get("path", ""),
                    status,
                    extra={
                        "status": status,
                        "duration_ms": round((time.perf_counter() - start) * MS_PER_SECOND, 2),
                    },
                )
