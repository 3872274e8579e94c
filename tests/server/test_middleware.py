"""The API's trace id (server.middleware.TraceMiddleware): the caller's ``traceparent`` is
adopted when valid, an ``X-Request-Id`` that is a trace id is the fallback, anything else
gets a new trace; the id is bound to the request's log lines and answered."""

from __future__ import annotations

import asyncio
import io
import json
import logging

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from server.kit import logs
from server.middleware import ACCESS_LOGGER, TRACE_ID_STATE, TraceMiddleware
from subtone.tracing import REQUEST_ID_HEADER, TRACEPARENT_HEADER, is_trace_id, parse_traceparent

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
OTHER_TRACE = "0af7651916cd43dd8448eb211c80319c"
SPAN = "00f067aa0ba902b7"


async def where_am_i(request: Request) -> JSONResponse:
    """What the handler sees: the trace in the request's state and in its log context."""
    return JSONResponse(
        {"state": getattr(request.state, TRACE_ID_STATE), "logs": logs.current().trace_id}
    )


class Client:
    """Requests to a one-route app behind :class:`TraceMiddleware`, in process."""

    def __init__(self) -> None:
        self.app = Starlette(
            routes=[Route("/here", where_am_i)], middleware=[Middleware(TraceMiddleware)]
        )

    def get(self, url: str, headers: dict[str, str] | None = None) -> httpx.Response:
        async def get() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                return await client.get(url, headers=headers)

        return asyncio.run(get())


@pytest.fixture
def client() -> Client:
    return Client()


def trace_of(client: Client, headers: dict[str, str]) -> str:
    """The trace id the API gave the request, checked to be the same everywhere it shows."""
    response = client.get("/here", headers=headers)
    assert response.status_code == 200
    seen = response.json()
    answered = parse_traceparent(response.headers[TRACEPARENT_HEADER])
    assert answered is not None
    assert seen["state"] == seen["logs"] == answered.trace_id
    assert response.headers[REQUEST_ID_HEADER] == answered.trace_id
    assert is_trace_id(answered.trace_id)
    return answered.trace_id


def test_a_valid_traceparent_is_adopted_and_answered_as_a_new_span(client: Client):
    response = client.get("/here", headers={TRACEPARENT_HEADER: f"00-{TRACE}-{SPAN}-01"})

    assert response.json() == {"state": TRACE, "logs": TRACE}
    assert response.headers[REQUEST_ID_HEADER] == TRACE
    answered = parse_traceparent(response.headers[TRACEPARENT_HEADER])
    assert answered is not None
    assert answered.trace_id == TRACE and answered.span_id != SPAN  # our span, in its trace


@pytest.mark.parametrize(
    "traceparent",
    [
        pytest.param(f"ff-{TRACE}-{SPAN}-01", id="version-ff"),
        pytest.param(f"00-{'0' * 32}-{SPAN}-01", id="all-zero-trace-id"),
        pytest.param(f"00-{TRACE}-{'0' * 16}-01", id="all-zero-parent-id"),
        pytest.param(f"00-{TRACE[:-2]}-{SPAN}-01", id="short-trace-id"),
        pytest.param(f"00-{TRACE}-{SPAN}00-01", id="long-parent-id"),
        pytest.param(f"00-{TRACE.upper()}-{SPAN}-01", id="uppercase"),
        pytest.param("not a traceparent", id="garbage"),
    ],
)
def test_an_invalid_traceparent_gets_a_new_trace(client: Client, traceparent: str):
    trace = trace_of(client, {TRACEPARENT_HEADER: traceparent})

    assert trace not in (TRACE, TRACE.lower())


def test_no_header_gets_a_new_trace_per_request(client: Client):
    assert trace_of(client, {}) != trace_of(client, {})


def test_a_request_id_that_is_a_trace_id_is_the_fallback(client: Client):
    assert trace_of(client, {REQUEST_ID_HEADER: TRACE}) == TRACE


def test_the_request_id_fallback_ignores_case_and_whitespace(client: Client):
    assert trace_of(client, {REQUEST_ID_HEADER: f" {TRACE.upper()} "}) == TRACE


@pytest.mark.parametrize(
    "request_id", ["0" * 32, TRACE[:-1], "req-1234", "g" * 32], ids=str.__str__
)
def test_a_request_id_that_is_no_trace_id_gets_a_new_trace(client: Client, request_id: str):
    assert trace_of(client, {REQUEST_ID_HEADER: request_id}) not in (TRACE, request_id)


def test_a_valid_traceparent_wins_over_the_request_id(client: Client):
    headers = {TRACEPARENT_HEADER: f"00-{TRACE}-{SPAN}-01", REQUEST_ID_HEADER: OTHER_TRACE}
    assert trace_of(client, headers) == TRACE


def test_an_invalid_traceparent_falls_back_to_the_request_id(client: Client):
    headers = {TRACEPARENT_HEADER: f"ff-{TRACE}-{SPAN}-01", REQUEST_ID_HEADER: OTHER_TRACE}
    assert trace_of(client, headers) == OTHER_TRACE


def test_the_access_line_carries_the_trace_without_the_query(client: Client):
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter("api"))
    access = logging.getLogger(ACCESS_LOGGER)
    saved = access.level
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        client.get("/here?signature=s3cr3t", headers={TRACEPARENT_HEADER: f"00-{TRACE}-{SPAN}-01"})
    finally:
        access.removeHandler(handler)
        access.setLevel(saved)

    (line,) = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert (line["trace_id"], line["event"]) == (TRACE, "GET /here 200")
    assert line["fields"]["status"] == 200
    assert "s3cr3t" not in stream.getvalue()
