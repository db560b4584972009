"""OpenInference's own realtime patch next to realtime-spans: what it patches, the second
set of spans it makes, and how ``adapters._peers`` finds it and lets a user keep one.

OpenInference 2.6.0's ``OpenAIAgentsInstrumentor().instrument()`` wraps
``RealtimeSession._put_event``, ``send_audio`` and ``close`` with ``wrapt`` wrappers
that turn the raw server events the OpenAI WebSocket model forwards into OpenTelemetry
spans of their own (``conversation.turn``, ``assistant``, one TOOL span per call). The
scripted call here emits those raw events, as the real model does.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest
from agents.realtime.session import RealtimeSession
from agents.tracing import set_trace_processors
from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor
from opentelemetry.sdk.trace import ReadableSpan

from realtime_spans.adapters import SpanRecorder, _peers, traced
from realtime_spans.adapters._peers import (
    CompetingInstrumentationWarning,
    competing_realtime_instrumentation,
    unwrap_competing_instrumentation,
    warn_once_if_competing,
)

from .conftest import OtelPipeline
from .otel_trees import attribute
from .scenario import WORKFLOW, run_call

PATCHED = ("_put_event", "send_audio", "close")
ORIGINALS = {name: vars(RealtimeSession)[name] for name in PATCHED}
REALTIME_MODULE = "openinference.instrumentation.openai_agents._realtime"

#: Span names only OpenInference's realtime patch makes (realtime-spans makes none of them).
OPENINFERENCE_REALTIME = {"conversation.turn", "assistant"}


@pytest.fixture
def instrumentor(otel: OtelPipeline, recorder: SpanRecorder) -> Iterator[OpenAIAgentsInstrumentor]:
    set_trace_processors([recorder])
    instrumentor = OpenAIAgentsInstrumentor()
    instrumentor.instrument(tracer_provider=otel.provider, exclusive_processor=False)
    try:
        yield instrumentor
    finally:
        instrumentor.uninstrument()
    assert {name: vars(RealtimeSession)[name] for name in PATCHED} == ORIGINALS


@pytest.fixture
def fresh_warning_state() -> Iterator[None]:
    _peers._once.warned = False
    yield
    _peers._once.warned = False


def _names(spans: tuple[ReadableSpan, ...]) -> set[str]:
    return {span.name for span in spans}


def test_the_instrumentor_wraps_exactly_three_session_methods(
    instrumentor: OpenAIAgentsInstrumentor,
) -> None:
    found = competing_realtime_instrumentation()
    assert sorted(patch.member for patch in found) == sorted(
        f"RealtimeSession.{name}" for name in PATCHED
    )
    assert {patch.module for patch in found} == {REALTIME_MODULE}
    assert all("OpenInference" in patch.peer for patch in found)
    for name in PATCHED:
        assert vars(RealtimeSession)[name].__wrapped__ is ORIGINALS[name]


def test_nothing_is_found_once_the_instrumentor_is_undone(otel: OtelPipeline) -> None:
    instrumentor = OpenAIAgentsInstrumentor()
    instrumentor.instrument(tracer_provider=otel.provider, exclusive_processor=False)
    assert len(competing_realtime_instrumentation()) == 3
    instrumentor.uninstrument()
    assert competing_realtime_instrumentation() == ()


async def test_both_together_make_two_competing_sets_of_spans(
    instrumentor: OpenAIAgentsInstrumentor, otel: OtelPipeline
) -> None:
    """Why the warning exists: one call, realtime-spans' ``turn`` spans and OpenInference's
    ``conversation.turn``/``assistant`` spans for the same responses, and two TOOL spans
    for the one ``get_weather`` call."""
    await run_call(lambda session: traced(session, workflow_name=WORKFLOW), raw_server_events=True)
    spans = otel.exporter.get_finished_spans()
    names = _names(spans)
    assert names >= OPENINFERENCE_REALTIME
    assert {"turn", "generation", "Greeter", "Specialist", "handoff to Specialist"} <= names
    assistants = [span for span in spans if span.name == "assistant"]
    assert len(assistants) == 4  # one per model response, as realtime-spans' four turns
    weather_tools = [
        span
        for span in spans
        if attribute(span, "openinference.span.kind") == "TOOL" and span.name == "get_weather"
    ]
    assert len(weather_tools) == 2


def test_the_warning_names_the_peer_and_fires_once(
    instrumentor: OpenAIAgentsInstrumentor, fresh_warning_state: None
) -> None:
    def library_entry_point() -> tuple[_peers.PeerPatch, ...]:  # as traced() would call it
        return warn_once_if_competing()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = library_entry_point()
        second = library_entry_point()
    assert len(first) == len(second) == 3
    (warning,) = caught
    assert warning.category is CompetingInstrumentationWarning
    text = str(warning.message)
    assert "OpenAIAgentsInstrumentor" in text
    assert all(f"RealtimeSession.{name}" in text for name in PATCHED)
    assert warning.filename == __file__  # points at the user's call of the entry point


async def test_traced_and_instrument_warn_once_at_the_users_call(
    instrumentor: OpenAIAgentsInstrumentor, fresh_warning_state: None
) -> None:
    from agents.realtime import RealtimeAgent
    from agents.realtime.testing import ScriptedRealtimeModel

    from realtime_spans.adapters import instrument, traced, uninstrument

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        session = RealtimeSession(ScriptedRealtimeModel(), RealtimeAgent(name="a"), None)
        traced(session)
        instrument()
        uninstrument()
    (warning,) = caught
    assert warning.category is CompetingInstrumentationWarning
    assert warning.filename == __file__


def test_no_warning_without_a_peer(otel: OtelPipeline, fresh_warning_state: None) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert warn_once_if_competing() == ()
    assert caught == []


async def test_choosing_realtime_spans_keeps_openinference_for_the_rest(
    instrumentor: OpenAIAgentsInstrumentor, otel: OtelPipeline
) -> None:
    """The user's choice "realtime-spans for realtime": unwrap OpenInference's realtime
    patch; its processor stays and exports realtime-spans' tree, without the second set."""
    undone = unwrap_competing_instrumentation()
    assert sorted(patch.member.rpartition(".")[2] for patch in undone) == sorted(PATCHED)
    assert {name: vars(RealtimeSession)[name] for name in PATCHED} == ORIGINALS
    assert competing_realtime_instrumentation() == ()
    assert unwrap_competing_instrumentation() == ()

    await run_call(lambda session: traced(session, workflow_name=WORKFLOW), raw_server_events=True)
    names = _names(otel.exporter.get_finished_spans())
    assert not names & OPENINFERENCE_REALTIME
    assert {WORKFLOW, "Greeter", "Specialist", "turn", "get_weather"} <= names
    # the instrumentor's own uninstrument() still works afterwards (checked by the fixture)


async def test_choosing_openinference_means_not_tracing_with_realtime_spans(
    instrumentor: OpenAIAgentsInstrumentor, otel: OtelPipeline, recorder: SpanRecorder
) -> None:
    """The other choice: leave the session untraced by realtime-spans; OpenInference's
    realtime spans are then the only ones."""
    await run_call(None, raw_server_events=True)
    names = _names(otel.exporter.get_finished_spans())
    assert names >= OPENINFERENCE_REALTIME
    assert not names & {WORKFLOW, "Greeter", "Specialist", "turn"}
    assert recorder.started == []
