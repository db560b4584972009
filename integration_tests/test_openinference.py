"""OpenInference: realtime-spans' spans through OpenInference's OpenAI Agents tracing
processor into the OpenTelemetry SDK, as a Phoenix, Arize or Langfuse user runs it.

The processor is registered the public way, ``OpenAIAgentsInstrumentor().instrument()``
(its class, ``OpenInferenceTracingProcessor``, lives in a private module). The scripted
call emits no raw server events, so OpenInference's own realtime patch (see
``test_peers.py``) produces nothing here: every span checked comes from realtime-spans.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from agents import function_tool
from agents.tracing import Span, set_trace_processors
from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan

from realtime_spans.adapters import SpanRecorder, instrument, traced

from .conftest import OtelPipeline
from .otel_trees import attribute, nesting_problems, parent_id, span_id, trace_id, tree
from .scenario import (
    ANSWER_SAID,
    CALLER_SAID,
    CITY,
    CUT_IN_SAID,
    GREETER_SAID,
    MODEL,
    OPENINFERENCE_TREE,
    SETTINGS,
    SPECIALIST_SAID,
    TYPED,
    WEATHER,
    WORKFLOW,
    run_call,
)

KIND = "openinference.span.kind"

# OpenInference's realtime patch is present on purpose here (see the module docstring).
pytestmark = pytest.mark.filterwarnings(
    "ignore::realtime_spans.adapters.CompetingInstrumentationWarning"
)


@pytest.fixture
def openinference(otel: OtelPipeline, recorder: SpanRecorder) -> Iterator[OtelPipeline]:
    """OpenInference instrumented next to a recording processor (``exclusive_processor``
    ``=False``: the default would replace every registered processor)."""
    set_trace_processors([recorder])
    instrumentor = OpenAIAgentsInstrumentor()
    instrumentor.instrument(tracer_provider=otel.provider, exclusive_processor=False)
    try:
        yield otel
    finally:
        instrumentor.uninstrument()


def _label(span: ReadableSpan) -> str:
    return f"{span.name} [{attribute(span, KIND)}]"


def _named(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    (span,) = [span for span in spans if span.name == name and attribute(span, KIND) != "CHAIN"]
    return span


@pytest.mark.parametrize("how", ["traced", "instrument"])
async def test_the_call_arrives_as_one_otel_trace_with_the_session_tree(
    openinference: OtelPipeline, recorder: SpanRecorder, how: str
) -> None:
    if how == "traced":
        await run_call(lambda session: traced(session, workflow_name=WORKFLOW))
    else:
        instrument(workflow_name=WORKFLOW)
        await run_call(None)

    spans = list(openinference.exporter.get_finished_spans())
    assert len({trace_id(span) for span in spans}) == 1
    assert tree(spans, _label) == OPENINFERENCE_TREE
    assert nesting_problems(spans) == []
    assert all(span.status.is_ok for span in spans)
    assert recorder.open_spans == []
    assert len(spans) == len(recorder.spans) + 1  # every SDK span, plus the trace's root

    greeter, specialist = _named(spans, "Greeter"), _named(spans, "Specialist")
    assert attribute(greeter, "agent.name") == "Greeter"
    assert attribute(specialist, "agent.name") == "Specialist"
    assert attribute(specialist, "graph.node.parent_id") == "Greeter"  # the handoff's edge

    tool = _named(spans, "get_weather")
    assert attribute(tool, "tool.name") == "get_weather"
    assert CITY in attribute(tool, "input.value")
    assert attribute(tool, "output.value") == WEATHER

    handoff = _named(spans, "handoff to Specialist")
    assert attribute(handoff, "input.value") == "Greeter"  # from
    assert attribute(handoff, "output.value") == "Specialist"  # to

    turns = [span for span in spans if span.name == "turn"]
    assert sorted(parent_id(turn) for turn in turns) == sorted(
        [span_id(greeter), span_id(greeter), span_id(specialist), span_id(specialist)]
    )
    generations = [span for span in spans if span.name == "generation"]
    assert sorted(parent_id(generation) for generation in generations) == sorted(
        span_id(turn) for turn in turns
    )


def _start_ns(span: Span[Any]) -> int:
    assert span.started_at is not None
    return int(datetime.fromisoformat(span.started_at).timestamp() * 1_000_000_000)


def _otel_name(span: Span[Any]) -> str:
    data = span.span_data
    if data.type == "handoff":
        return f"handoff to {data.to_agent}"
    name = getattr(data, "name", None)
    return name if isinstance(name, str) else data.type


async def test_every_parent_link_is_the_one_the_sdk_saw(
    openinference: OtelPipeline, recorder: SpanRecorder
) -> None:
    """Each SDK span maps to the OTel span of the same name and start time, and its OTel
    parent is the OTel span of its SDK parent (the trace's root for top-level spans)."""
    await run_call(lambda session: traced(session, workflow_name=WORKFLOW))
    spans = list(openinference.exporter.get_finished_spans())
    (root,) = [span for span in spans if span.parent is None]

    def otel_span_of(sdk_span: Span[Any]) -> ReadableSpan:
        start = _start_ns(sdk_span)
        matches = [
            span
            for span in spans
            if span.name == _otel_name(sdk_span)
            and span.start_time is not None
            and abs(span.start_time - start) <= 2_000
        ]
        assert len(matches) == 1, f"{_otel_name(sdk_span)}: {len(matches)} matches"
        return matches[0]

    sdk_spans = recorder.started
    assert {span.span_data.type for span in sdk_spans} == {
        "task",
        "agent",
        "turn",
        "function",
        "handoff",
        "generation",
        "transcription",
    }
    by_sdk_id = {span.span_id: otel_span_of(span) for span in sdk_spans}
    assert len({span_id(span) for span in by_sdk_id.values()}) == len(sdk_spans)
    for sdk_span in sdk_spans:
        expected = by_sdk_id[sdk_span.parent_id] if sdk_span.parent_id else root
        assert parent_id(by_sdk_id[sdk_span.span_id]) == span_id(expected), sdk_span.span_data


async def test_the_session_joins_the_callers_otel_span(
    openinference: OtelPipeline, recorder: SpanRecorder
) -> None:
    """A session entered inside the application's own OpenTelemetry span (a request
    handler, say) lands in that span's trace, under it."""
    tracer = openinference.provider.get_tracer("app")
    with tracer.start_as_current_span("handle call") as request:
        await run_call(lambda session: traced(session, workflow_name=WORKFLOW))
    spans = list(openinference.exporter.get_finished_spans())
    assert {trace_id(span) for span in spans} == {request.get_span_context().trace_id}
    (root,) = [span for span in spans if span.name == WORKFLOW and attribute(span, KIND) == "AGENT"]
    assert parent_id(root) == request.get_span_context().span_id
    assert nesting_problems(spans) == []


# OpenInference's processor attaches an OTel context in on_span_start and detaches it in
# on_span_end. Realtime spans start and end in different tasks and not in LIFO order, so
# realtime-spans runs each span's start and finish in a context of the span's own; these
# two tests are the regression tests for the leak that happened before it did.


async def test_the_callers_otel_context_is_as_before_after_the_session(
    openinference: OtelPipeline,
) -> None:
    before = otel_context.get_current()
    await run_call(lambda session: traced(session, workflow_name=WORKFLOW))
    assert otel_context.get_current() == before


async def test_no_otel_context_errors_are_logged(
    openinference: OtelPipeline, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="opentelemetry.context")
    await run_call(lambda session: traced(session, workflow_name=WORKFLOW))
    assert [r.getMessage() for r in caplog.records if r.name == "opentelemetry.context"] == []


async def test_otel_spans_made_inside_a_tool_nest_under_its_function_span(
    openinference: OtelPipeline,
) -> None:
    """A tool's own OpenTelemetry spans (an instrumented HTTP call, say) land under the
    tool's span, as they do in a ``Runner`` run."""
    tracer = openinference.provider.get_tracer("tool code")

    @function_tool
    def get_weather(city: str) -> str:
        """Weather in a city, fetched under an OTel span."""
        with tracer.start_as_current_span("fetch forecast"):
            return f"sunny in {city}"

    await run_call(
        lambda session: traced(session, workflow_name=WORKFLOW), weather_tool=get_weather
    )
    spans = list(openinference.exporter.get_finished_spans())
    fetch = _named(spans, "fetch forecast")
    assert parent_id(fetch) == span_id(_named(spans, "get_weather"))
    assert nesting_problems(spans) == []


def _attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def _by_turn(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
    """The spans named ``name`` in the order of their turns (start time)."""
    return sorted((span for span in spans if span.name == name), key=lambda s: s.start_time or 0)


async def test_each_generation_is_an_llm_span_with_the_messages_model_and_tokens(
    openinference: OtelPipeline,
) -> None:
    """OpenInference maps our ``generation`` spans (chat-completions shaped messages) to
    LLM spans: ``llm.input_messages``/``llm.output_messages`` with roles, contents, tool
    call ids and calls, ``llm.model_name``, the settings as ``llm.invocation_parameters``
    and the prompt and completion token counts. Exactly these attributes, nothing more."""
    await run_call(lambda session: traced(session, workflow_name=WORKFLOW))
    spans = list(openinference.exporter.get_finished_spans())
    first, second, third, fourth = _by_turn(spans, "generation")
    common = {
        KIND: "LLM",
        "llm.system": "openai",
        "llm.model_name": MODEL,
        "input.mime_type": "application/json",
        "output.mime_type": "application/json",
    }
    parameters = {key: value for key, value in SETTINGS.items() if key != "model_name"}
    assert json.loads(first.attributes["llm.invocation_parameters"]) == parameters  # type: ignore[index]
    del parameters

    def own(span: ReadableSpan) -> dict[str, Any]:
        """The attributes beyond the common ones, which are checked to be there."""
        attributes = _attributes(span)
        assert {key: attributes.pop(key) for key in common} == common
        assert (
            attributes.pop("llm.invocation_parameters")
            == first.attributes[  # type: ignore[index]
                "llm.invocation_parameters"
            ]
        )
        assert json.loads(attributes.pop("input.value")) is not None
        assert json.loads(attributes.pop("output.value")) is not None
        return attributes

    assert own(first) == {
        "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.content": TYPED,
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.tool_calls.0.tool_call.id": "call_weather",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "get_weather",
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": (
            f'{{"city": "{CITY}"}}'
        ),
        "llm.token_count.prompt": 10,
        "llm.token_count.completion": 5,
    }
    assert own(second) == {
        "llm.input_messages.0.message.role": "tool",
        "llm.input_messages.0.message.content": WEATHER,
        "llm.input_messages.0.message.tool_call_id": "call_weather",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": GREETER_SAID,
        "llm.output_messages.0.message.tool_calls.0.tool_call.id": "call_handoff",
        # OpenInference drops arguments that are exactly "{}"
        "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": (
            "transfer_to_specialist"
        ),
        "llm.token_count.prompt": 20,
        "llm.token_count.completion": 5,
    }
    assert own(third)["llm.output_messages.0.message.content"] == SPECIALIST_SAID
    # the caller's spoken words (the transcript of their audio item) and the spoken answer
    assert own(fourth) == {
        "llm.input_messages.0.message.role": "user",
        "llm.input_messages.0.message.content": CALLER_SAID,
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": ANSWER_SAID,
        "llm.token_count.prompt": 50,
        "llm.token_count.completion": 12,
    }
    # no total, no token details, no finish reason: OpenInference reads only
    # usage["input_tokens"] and usage["output_tokens"] of a generation
    assert not any(key.startswith("llm.token_count.total") for key in _attributes(fourth))


async def test_what_openinference_drops_reaches_its_spans_as_metadata(
    openinference: OtelPipeline,
) -> None:
    """OpenInference has no case for ``transcription`` spans nor for the data of the
    ``turn`` and session (task) spans: it makes bare CHAIN spans of them. The library puts
    what it drops onto those spans (see ``adapters/_otel.py``): the transcript as
    ``output.value`` and the transcription model, a turn's latencies and flags and the
    session's summary as ``metadata``."""
    await run_call(lambda session: traced(session, workflow_name=WORKFLOW))
    spans = list(openinference.exporter.get_finished_spans())
    transcriptions = _by_turn(spans, "transcription")
    turns = _by_turn(spans, "turn")
    (session,) = [span for span in spans if span.name == WORKFLOW and span.parent is not None]
    assert len(transcriptions) == 2 and len(turns) == 4
    for span in [*transcriptions, *turns, session]:
        assert _attributes(span)[KIND] == "CHAIN", span.name
    heard = sorted(str(_attributes(span)["output.value"]) for span in transcriptions)
    assert heard == sorted([CALLER_SAID, CUT_IN_SAID])
    for span in transcriptions:
        assert _attributes(span)["llm.model_name"] == "gpt-4o-transcribe"
    measured = [json.loads(str(_attributes(span)["metadata"])) for span in turns]
    assert [m["turn"] for m in measured] == [1, 2, 3, 4]
    assert sum(bool(m["interrupted"]) for m in measured) == 1
    cut = next(m for m in measured if m["interrupted"])
    assert 0 <= cut["audio_heard_ms"] < cut["audio_generated_ms"]
    summary = json.loads(str(_attributes(session)["metadata"]))
    assert summary["turns"] == 4 and summary["interruptions"] == 1
    # the cut-in words are on their transcription span only: on no generation, no turn
    elsewhere = [span for span in spans if span not in transcriptions]
    assert CUT_IN_SAID not in json.dumps([_attributes(span) for span in elsewhere])
