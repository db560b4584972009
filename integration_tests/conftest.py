"""Fixtures: no network at all, clean SDK tracing state around each test, and an
OpenTelemetry SDK pipeline into an in-memory exporter."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from agents.tracing import (
    get_current_span,
    get_current_trace,
    get_trace_provider,
    set_trace_processors,
    set_trace_provider,
    set_tracing_disabled,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from realtime_spans.adapters import SpanRecorder, uninstrument


@attrs.define
class NetworkGuard:
    """Every outgoing connection attempted during a test (all are refused, except to the
    local servers a test starts itself and declares with :meth:`allow`)."""

    attempts: list[Any] = attrs.field(factory=list)
    allowed: set[tuple[str, int]] = attrs.field(factory=set)

    def allow(self, host: str, port: int) -> None:
        self.allowed.add((host, port))


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[NetworkGuard]:
    """Refuse, and record, every IP connection: the integrations must work offline.

    Unix sockets are allowed (the event loop's self-pipe), and so is a local server a test
    started and declared (``no_network.allow(host, port)``); nothing else, loopback
    included.
    """
    guard = NetworkGuard()
    original_connect = socket.socket.connect
    original_connect_ex = socket.socket.connect_ex

    def refuse(sock: socket.socket, address: Any) -> None:
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            return
        if (address[0], address[1]) in guard.allowed:
            return
        guard.attempts.append(address)
        raise ConnectionRefusedError(f"integration tests are offline: connect to {address}")

    def connect(sock: socket.socket, address: Any) -> None:
        refuse(sock, address)
        original_connect(sock, address)

    def connect_ex(sock: socket.socket, address: Any) -> int:
        refuse(sock, address)
        return original_connect_ex(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    yield guard
    assert guard.attempts == [], f"network was attempted: {guard.attempts}"


@pytest.fixture(autouse=True)
def clean_sdk_tracing() -> Iterator[None]:
    """Each test starts with no processor and the SDK's own trace provider, and gets them
    back afterwards (Logfire replaces the provider; OpenInference replaces processors)."""
    provider = get_trace_provider()
    set_trace_processors([])
    set_tracing_disabled(False)
    assert get_current_span() is None and get_current_trace() is None
    yield
    uninstrument()
    set_trace_provider(provider)
    set_trace_processors([])
    assert get_current_span() is None, "an SDK span was left current"
    assert get_current_trace() is None, "an SDK trace was left current"


@pytest.fixture
def recorder() -> SpanRecorder:
    """A recording processor: what the SDK itself saw, to compare exports against."""
    return SpanRecorder()


@attrs.frozen
class OtelPipeline:
    provider: TracerProvider
    exporter: InMemorySpanExporter


@pytest.fixture
def otel() -> Iterator[OtelPipeline]:
    """An OpenTelemetry SDK tracer provider exporting into memory (not the global one)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield OtelPipeline(provider, exporter)
    provider.shutdown()
