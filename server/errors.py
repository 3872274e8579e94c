"""Every error the API answers is ``{"error": {"code", "message"}}`` with the right status.

:func:`install_error_handlers` maps the project's :class:`SubtoneError` (its own status and
code), request validation (422 ``invalid_request``, or 400 ``malformed_json`` when the body is
not JSON), the framework's own HTTP errors (unknown route, wrong method, body too large) and
Redis out of reach (503 ``status_store_unavailable``, which a client retries).
Anything unexpected is answered by :class:`server.middleware.InternalErrorMiddleware`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.routing import compile_path

from subtone.errors import SubtoneError
from subtone.protocol import ErrorBody

__all__ = [
    "BODY_ERRORS",
    "COMMON_ERRORS",
    "ErrorWithHeaders",
    "error_response",
    "error_responses",
    "install_error_handlers",
]

log = logging.getLogger(__name__)

MAX_REPORTED_ERRORS = 5
"""A validation message names at most this many problems."""
COMMON_ERRORS = (401, 422, 429, 500, 503)
"""What every ``/v1`` route may answer besides its own errors (token, validation, rate limit,
a bug, Redis out of reach)."""
BODY_ERRORS = (400, 413)
"""What a route that reads a JSON body may answer too: not JSON (``malformed_json``), or over
``MAX_REQUEST_BODY_BYTES`` (``body_too_large``)."""
_HTTP_CODES: Mapping[int, str] = {
    400: "malformed_json",  # FastAPI's "There was an error parsing the body" (not UTF-8...)
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
}
_HTTP_METHODS = frozenset({"GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE"})
_JSON_INVALID = "json_invalid"
_BODY = "body"


class ErrorWithHeaders(SubtoneError):
    """A :class:`SubtoneError` whose response carries headers (``WWW-Authenticate``, …)."""

    def __init__(
        self,
        message: str,
        *,
        headers: Mapping[str, str],
        code: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message, code=code, status=status)
        self.headers = dict(headers)


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    body = {"error": {"code": code, "message": message}}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


_DESCRIPTIONS: Mapping[int, str] = {
    401: "The token is missing, invalid or revoked (`unauthorized`).",
    429: (
        "Too many requests: this token's requests this minute, failed authentications from "
        "this address this minute (`rate_limited`), or, for an event stream, this token's open "
        "streams (`too_many_streams`). Wait `Retry-After` seconds."
    ),
}
_HEADERS: Mapping[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "description": "`Bearer`.",
            "required": True,
            "schema": {"type": "string"},
        }
    },
    429: {
        "Retry-After": {
            "description": "Seconds to wait before trying again.",
            "required": True,
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` documenting each status as an :class:`ErrorBody` (with the
    headers it always carries)."""
    responses: dict[int | str, dict[str, Any]] = {}
    for status in sorted(set(statuses)):
        response: dict[str, Any] = {
            "model": ErrorBody,
            "description": _DESCRIPTIONS.get(status, HTTPStatus(status).phrase),
        }
        if status in _HEADERS:
            response["headers"] = _HEADERS[status]
        responses[status] = response
    return responses


async def _subtone_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SubtoneError)
    headers = exc.headers if isinstance(exc, ErrorWithHeaders) else None
    return error_response(exc.status, exc.code, exc.message, headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    malformed = next((e for e in errors if e.get("type") == _JSON_INVALID), None)
    if malformed is not None:
        return error_response(400, "malformed_json", _malformed_message(malformed))
    return error_response(422, "invalid_request", validation_message(errors))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    if exc.status_code == HTTPStatus.NOT_FOUND:
        message = f"There is no {request.url.path} here."
    elif exc.status_code == HTTPStatus.METHOD_NOT_ALLOWED:
        message = f"{request.url.path} does not accept {request.method}."
        allow = ", ".join(_allowed_methods(request, exc))
        return error_response(exc.status_code, code, message, {"Allow": allow})
    else:
        message = str(exc.detail)
    return error_response(exc.status_code, code, message, exc.headers)


def _allowed_methods(request: Request, exc: HTTPException) -> list[str]:
    """Every method the API documents on this path, with Starlette's own (routes left out of
    the schema). Starlette's 405 names only the first route that matched the path, so
    ``GET /v1/uploads/{id}`` hid ``DELETE`` on the same path."""
    methods = {m.strip() for m in (exc.headers or {}).get("Allow", "").split(",") if m.strip()}
    for template, item in request.app.openapi().get("paths", {}).items():
        regex, _, _ = compile_path(template)
        if regex.match(request.url.path):
            methods |= {method.upper() for method in item if method.upper() in _HTTP_METHODS}
    if "GET" in methods:
        methods.add("HEAD")
    return sorted(methods)


async def _redis_unreachable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("Redis is not reachable (%s %s): %s", request.method, request.url.path, exc)
    message = "The status store is not reachable right now; try again shortly."
    return error_response(503, "status_store_unavailable", message)


def _malformed_message(error: Mapping[str, Any]) -> str:
    reason = (error.get("ctx") or {}).get("error", "JSON decode error")
    location = error.get("loc", ())
    position = location[-1] if len(location) > 1 else None
    where = f" at character {position}" if isinstance(position, int) else ""
    return f"The request body is not valid JSON: {reason}{where}."


def validation_message(errors: Sequence[Mapping[str, Any]]) -> str:
    """``"parts.0.etag: Field required; size: Input should be greater than or equal to 1"``."""
    shown = [f"{_location(e.get('loc', ()))}: {e.get('msg', 'invalid')}" for e in errors]
    message = "; ".join(shown[:MAX_REPORTED_ERRORS])
    if len(shown) > MAX_REPORTED_ERRORS:
        message += f" (and {len(shown) - MAX_REPORTED_ERRORS} more)"
    return message or "The request is not valid."


def _location(location: Sequence[object]) -> str:
    """``("body", "parts", 0)`` → ``parts.0``; ``("header", "idempotency-key")`` keeps its kind."""
    if not location:
        return _BODY
    source, *path = location
    dotted = ".".join(str(part) for part in path)
    if source == _BODY:
        return dotted or _BODY
    return f"{source} {dotted}".strip()


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(SubtoneError, _subtone_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    for unreachable in (redis.ConnectionError, redis.TimeoutError):
        app.add_exception_handler(unreachable, _redis_unreachable)
