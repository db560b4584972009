"""Fixtures: a real recording ``TracingProcessor`` as the only processor, clean tracing
state around each test, a check that no test left tracing errors in the logs, and the
local Realtime server for the WebSocket tests."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest
from agents.tracing import (
    get_current_span,
    get_current_trace,
    get_trace_provider,
    set_trace_processors,
    set_tracing_disabled,
)

from realtime_spans.adapters import SpanRecorder, uninstrument

from .realtime_server import RealtimeServer, running_server, sdk_errors
from .support import bad_log_records


@pytest.fixture
def recorder() -> Iterator[SpanRecorder]:
    """The only tracing processor during the test: nothing leaves the machine."""
    recording = SpanRecorder()
    set_trace_processors([recording])
    set_tracing_disabled(False)
    try:
        yield recording
    finally:
        set_trace_processors([])
        set_tracing_disabled(False)


@pytest.fixture(autouse=True)
def _clean_tracing(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Each test starts and ends with no current span or trace, no instrumentation, and
    no tracing errors logged (a test expecting such lines clears ``caplog`` itself)."""
    caplog.set_level(logging.DEBUG, logger="openai.agents")
    caplog.set_level(logging.DEBUG, logger="realtime_spans")
    set_trace_processors([])
    assert get_current_span() is None and get_current_trace() is None
    yield
    uninstrument()
    set_tracing_disabled(False)
    get_trace_provider()
    assert get_current_span() is None, "a span was left current"
    assert get_current_trace() is None, "a trace was left current"
    assert bad_log_records(caplog.records) == []


@pytest.fixture
async def realtime_server(caplog: pytest.LogCaptureFixture) -> AsyncIterator[RealtimeServer]:
    """A local Realtime server for one test, on 127.0.0.1 and an ephemeral port.

    The test sets ``realtime_server.script`` before connecting. Afterwards the server is
    stopped within bounded time, whatever happened; errors inside the server and tasks
    left running fail the test, and so does any error the SDK logged (a server event it
    could not parse, for instance).
    """
    async with running_server() as server:
        yield server
    assert sdk_errors(caplog.records) == []
