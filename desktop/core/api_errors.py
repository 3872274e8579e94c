"""What the Subtone API's answers mean to its client: the errors a call raises
(:class:`ApiError`, :class:`ServerUnreachable`), which of them are worth another try, the
server's ``Retry-After``, and a body checked against the model this client expects."""

from __future__ import annotations

from typing import Final, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from subtone.errors import SubtoneError
from subtone.protocol import ErrorBody
from subtone.tracing import REQUEST_ID_HEADER

__all__ = [
    "MAX_RETRY_AFTER_SECONDS",
    "RETRYABLE_STATUSES",
    "ApiError",
    "ServerUnreachable",
    "parse",
    "retry_after",
    "transient",
    "unreachable",
    "validate",
]

RETRYABLE_STATUSES: Final = frozenset({408, 429, 502, 503, 504})
MAX_RETRY_AFTER_SECONDS: Final = 30.0
_ERROR_BODY_PREVIEW: Final = 200

_FALLBACK_CODES: Final = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    413: "too_large",
    422: "invalid_request",
    429: "rate_limited",
}

M = TypeVar("M", bound=BaseModel)


class ApiError(SubtoneError):
    """The server (or storage) answered with an error: its code, message and HTTP status."""

    def __init__(
        self,
        message: str,
        *,
        code: str,
        status: int,
        retry_after: float | None = None,
        trace_id: str | None = None,
    ) -> None:
        super().__init__(message, code=code, status=status)
        self.retry_after = retry_after
        """Seconds the server asked to wait before trying again (``Retry-After``), if any."""
        self.trace_id = trace_id
        """The trace id the server answered (``X-Request-Id``): the operators find the
        request, and its job, in their logs by it."""

    @classmethod
    def from_response(cls, response: httpx.Response) -> ApiError:
        """The error a response carries; a body that is not Subtone's JSON gets a generic one."""
        status = response.status_code
        wait = retry_after(response)
        trace_id = response.headers.get(REQUEST_ID_HEADER)
        try:
            body = ErrorBody.model_validate_json(response.content)
        except ValidationError:
            code = _FALLBACK_CODES.get(status, "server_error" if status >= 500 else "http_error")
            text = response.text.strip().replace("\n", " ")[:_ERROR_BODY_PREVIEW]
            detail = f": {text}" if text else "."
            return cls(
                f"The server answered {status} {response.reason_phrase}{detail}",
                code=code,
                status=status,
                retry_after=wait,
                trace_id=trace_id,
            )
        return cls(
            body.error.message,
            code=body.error.code,
            status=status,
            retry_after=wait,
            trace_id=trace_id,
        )


class ServerUnreachable(SubtoneError):
    """No answer: the server is down, the address is wrong, or the network failed."""

    code = "server_unreachable"
    status = 503


def transient(error: BaseException) -> bool:
    """Worth another try: no answer, or a status that says "later"."""
    if isinstance(error, ApiError):
        return error.status in RETRYABLE_STATUSES
    return isinstance(error, ServerUnreachable)


def unreachable(where: str, error: httpx.TransportError) -> ServerUnreachable:
    if isinstance(error, httpx.TimeoutException):
        reason = "it did not answer in time"
    elif isinstance(error, httpx.ConnectError):
        reason = "the connection failed"
    else:
        reason = "the connection broke"
    return ServerUnreachable(f"Cannot reach {where}: {reason} ({error or type(error).__name__}).")


def validate(model: type[M], content: bytes | str, what: str, status: int) -> M:
    try:
        return model.model_validate_json(content)
    except ValidationError as e:
        raise ApiError(
            f"The server's answer to {what} is not what this client expects; "
            "is the server a matching Subtone version?",
            code="bad_response",
            status=status,
        ) from e


def parse(model: type[M], response: httpx.Response) -> M:
    request = response.request
    what = f"{request.method} {request.url.path}"
    return validate(model, response.content, what, response.status_code)


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    try:
        seconds = float(value)
    except ValueError:
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)
