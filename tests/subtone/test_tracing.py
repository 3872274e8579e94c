"""W3C Trace Context's ``traceparent`` (subtone.tracing): what is adopted, what is refused."""

from __future__ import annotations

import re

import pytest

from subtone.tracing import TraceParent, is_trace_id, new_span_id, new_trace_id, parse_traceparent

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
VALID = f"00-{TRACE}-{SPAN}-01"
"""The example of the W3C recommendation."""


def test_a_valid_traceparent_is_adopted():
    assert parse_traceparent(VALID) == TraceParent(TRACE, SPAN, "01")


def test_the_flags_are_kept():
    assert parse_traceparent(f"00-{TRACE}-{SPAN}-00") == TraceParent(TRACE, SPAN, "00")


def test_surrounding_whitespace_is_ignored():
    assert parse_traceparent(f"  {VALID} ") == TraceParent(TRACE, SPAN, "01")


def test_a_later_version_may_add_fields():
    assert parse_traceparent(f"01-{TRACE}-{SPAN}-01-what-comes-next") == TraceParent(
        TRACE, SPAN, "01"
    )


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="missing"),
        pytest.param("", id="empty"),
        pytest.param(f"ff-{TRACE}-{SPAN}-01", id="version-ff"),
        pytest.param(f"00-{'0' * 32}-{SPAN}-01", id="all-zero-trace-id"),
        pytest.param(f"00-{TRACE}-{'0' * 16}-01", id="all-zero-parent-id"),
        pytest.param(f"00-{TRACE[:-1]}-{SPAN}-01", id="short-trace-id"),
        pytest.param(f"00-{TRACE}0-{SPAN}-01", id="long-trace-id"),
        pytest.param(f"00-{TRACE}-{SPAN[:-1]}-01", id="short-parent-id"),
        pytest.param(f"00-{TRACE}-{SPAN}0-01", id="long-parent-id"),
        pytest.param(f"0-{TRACE}-{SPAN}-01", id="short-version"),
        pytest.param(f"00-{TRACE}-{SPAN}-1", id="short-flags"),
        pytest.param(f"00-{TRACE.upper()}-{SPAN}-01", id="uppercase-trace-id"),
        pytest.param(f"00-{TRACE}-{SPAN.upper()}-01", id="uppercase-parent-id"),
        pytest.param(f"0A-{TRACE}-{SPAN}-01", id="uppercase-version"),
        pytest.param(f"00-{TRACE}-{SPAN}-0A", id="uppercase-flags"),
        pytest.param(f"00-{TRACE}-{SPAN}-01-extra", id="version-00-with-more-fields"),
        pytest.param(f"00_{TRACE}_{SPAN}_01", id="wrong-separators"),
        pytest.param(f"00-{'g' * 32}-{SPAN}-01", id="not-hex"),
        pytest.param("garbage", id="garbage"),
    ],
)
def test_an_invalid_traceparent_is_refused(value: str | None):
    assert parse_traceparent(value) is None


def test_a_new_span_carries_its_trace_in_a_valid_header():
    parent = TraceParent.new(TRACE)
    assert parent.trace_id == TRACE and parent.span_id != SPAN
    assert parse_traceparent(parent.header()) == parent
    assert re.fullmatch(rf"00-{TRACE}-[0-9a-f]{{16}}-01", parent.header())


def test_new_ids_are_valid_and_distinct():
    traces = {new_trace_id() for _ in range(100)}
    spans = {new_span_id() for _ in range(100)}
    assert len(traces) == len(spans) == 100
    assert all(is_trace_id(t) for t in traces)
    assert all(re.fullmatch(r"[0-9a-f]{16}", s) and s != "0" * 16 for s in spans)
    assert TraceParent.new().trace_id not in traces


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        (TRACE, True),
        (TRACE.upper(), False),
        ("0" * 32, False),
        (TRACE[:-1], False),
        (TRACE + "0", False),
        (None, False),
        (42, False),
    ],
)
def test_is_trace_id(value: object, valid: bool):
    assert is_trace_id(value) is valid
