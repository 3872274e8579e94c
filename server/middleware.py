"""Pure ASGI middleware: the request body limit and the last-resort 500.

Both are plain ASGI (not ``BaseHTTPMiddleware``) so streamed responses (the job event stream)
pass through untouched.
"""

from __future__ import annotations

import logging

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import error_response

__all__ = ["BodySizeLimitMiddleware", "BodyTooLarge", "InternalErrorMiddleware"]

log = logging.getLogger(__name__)

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
