"""Logfire: ``logfire.instrument_openai_agents()`` (which wraps the SDK's trace provider)
with realtime-spans, configured to send nothing anywhere: spans go to an in-memory
exporter, no token is needed and no connection is attempted (the ``no_network`` fixture
refuses and records every one)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import logfire
import pytest
from agents.tracing import set_trace_processors
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from realtime_spans.adapters import SpanRecorder, traced

from .conftest import NetworkGuard
from .otel_trees import attribute, nesting_problems, trace_id, tree
from .scenario import (
    ANSWER_AUDIO_MS,
    ANSWER_SAID,
    CALLER_SAID,
    CITY,
    CUT_IN_SAID,
    MODEL,
    SESSION_TOKENS,
    TRANSCRIPTION_MODEL,
    TURN_TOKENS,
    WEATHER,
    WORKFLOW,
    run_call,
)


@pytest.fixture(scope="module")
def logfire_exporter(tmp_path_factory: pytest.TempPathFactory) -> InMemorySpanExporter:
    """Logfire configured once for the module: local only, into memory."""
    exporter = InMemorySpanExporter()
    with pytest.MonkeyPatch.context() as env:
        for name in ("LOGFIRE_TOKEN", "LOGFIRE_SEND_TO_LOGFIRE", "LOGFIRE_CONSOLE"):
            env.delenv(name, raising=False)
        logfire.configure(
            send_to_logfire=False,
            console=False,
            metrics=False,
            inspect_arguments=False,
            data_dir=tmp_path_factory.mktemp("logfire"),
            additional_span_processors=[SimpleSpanProcessor(exporter)],
        )
    return exporter


@pytest.fixture
def exported(
    logfire_exporter: InMemorySpanExporter, recorder: SpanRecorder
) -> Iterator[InMemorySpanExporter]:
    """Logfire's OpenAI Agents integration on, next to a recording processor; the SDK's
    own provider comes back after the test (``clean_sdk_tracing``)."""
    set_trace_processors([recorder])
    logfire.instrument_openai_agents()
    logfire_exporter.clear()
    yield logfire_exporter
    logfire_exporter.clear()


def _message(span: ReadableSpan) -> str:
    return str(attribute(span, "logfire.msg"))


def _json(span: ReadableSpan, key: str) -> Any:
    value = attribute(span, key)
    return json.loads(value) if isinstance(value, str) else value


def _one(spans: list[ReadableSpan], message: str) -> ReadableSpan:
    (span,) = [span for span in spans if _message(span) == message]
    return span


EXPECTED_TREE = [
    f"OpenAI Agents trace: {WORKFLOW}",
    f"  Task: {WORKFLOW}",
    "    Agent run: 'Greeter'",
    "      Function: get_weather",
    "      Handoff: Greeter → Specialist",
    "      Turn 1 for agent Greeter",
    f"        Chat completion with {MODEL!r}",
    "      Turn 2 for agent Greeter",
    f"        Chat completion with {MODEL!r}",
    "    Agent run: 'Specialist'",
    f"      Speech → Text with {TRANSCRIPTION_MODEL!r}: {CALLER_SAID}",
    f"      Speech → Text with {TRANSCRIPTION_MODEL!r}: {CUT_IN_SAID}",
    "      Turn 3 for agent Specialist",
    f"        Chat completion with {MODEL!r}",
    "      Turn 4 for agent Specialist",
    f"        Chat completion with {MODEL!r}",
]


async def test_the_call_arrives_as_one_logfire_trace_with_the_session_tree(
    exported: InMemorySpanExporter, recorder: SpanRecorder, no_network: NetworkGuard
) -> None:
    await run_call(lambda session: traced(session, workflow_name=WORKFLOW))
    spans = list(exported.get_finished_spans())

    assert len({trace_id(span) for span in spans}) == 1
    assert tree(spans, _message) == EXPECTED_TREE
    assert nesting_problems(spans) == []
    assert recorder.open_spans == []
    assert no_network.attempts == []

    (sdk_trace,) = recorder.traces
    root = _one(spans, f"OpenAI Agents trace: {WORKFLOW}")
    assert attribute(root, "agent_trace_id") == sdk_trace.trace_id

    greeter = _one(spans, "Agent run: 'Greeter'")
    assert attribute(greeter, "name") == "Greeter"
    assert _json(greeter, "tools") == ["get_weather"]
    assert _json(greeter, "handoffs") == ["Specialist"]
    assert _json(_one(spans, "Agent run: 'Specialist'"), "tools") == []

    tool = _one(spans, "Function: get_weather")
    assert CITY in attribute(tool, "input")
    assert attribute(tool, "output") == WEATHER

    handoff = _one(spans, "Handoff: Greeter → Specialist")
    assert (attribute(handoff, "from_agent"), attribute(handoff, "to_agent")) == (
        "Greeter",
        "Specialist",
    )

    turns = [
        _one(spans, f"Turn {n} for agent {agent}")
        for n, agent in ((1, "Greeter"), (2, "Greeter"), (3, "Specialist"), (4, "Specialist"))
    ]
    assert [attribute(turn, "turn") for turn in turns] == [1, 2, 3, 4]
    assert [_json(turn, "usage")["total_tokens"] for turn in turns] == list(TURN_TOKENS)
    session = _one(spans, f"Task: {WORKFLOW}")
    assert _json(session, "usage")["total_tokens"] == SESSION_TOKENS


def _by_start(spans: list[ReadableSpan], template: str) -> list[ReadableSpan]:
    chosen = [span for span in spans if attribute(span, "logfire.msg_template") == template]
    return sorted(chosen, key=lambda span: span.start_time or 0)


async def test_generations_are_llm_chat_spans_and_transcriptions_speech_to_text(
    exported: InMemorySpanExporter,
) -> None:
    """Logfire's own templates: a generation is "Chat completion with 'model'" tagged LLM,
    its messages as ``input``/``output`` and together as ``request_data``, its model as
    ``gen_ai.request.model``, tokens as ``gen_ai.usage.*``; a transcription is "Speech ->
    Text with 'model'" with the transcript in the message and ``output``; the turn's and
    the session's ``data`` keys (latencies, summary) become attributes of their own."""
    await run_call(lambda session: traced(session, workflow_name=WORKFLOW), vad_events=True)
    spans = list(exported.get_finished_spans())

    generations = _by_start(spans, "Chat completion with {gen_ai.request.model!r}")
    assert len(generations) == 4
    fourth = generations[-1]
    assert attribute(fourth, "logfire.tags") == ("LLM",)
    assert attribute(fourth, "gen_ai.request.model") == MODEL
    assert attribute(fourth, "gen_ai.system") == "openai"
    assert attribute(fourth, "gen_ai.usage.input_tokens") == 50
    assert attribute(fourth, "gen_ai.usage.output_tokens") == 12
    assert _json(fourth, "input") == [{"role": "user", "content": CALLER_SAID}]
    answer = [{"role": "assistant", "content": ANSWER_SAID}]
    assert _json(fourth, "output") == answer
    assert _json(fourth, "request_data") == {
        "messages": [{"role": "user", "content": CALLER_SAID}, *answer],
        "model": MODEL,
    }
    assert _json(fourth, "model_config")["voice"] == "marin"
    assert "gen_ai.operation.name" not in (fourth.attributes or {})  # Logfire sets none

    first, cut_in = _by_start(spans, "Speech → Text with {gen_ai.request.model!r}")
    assert attribute(first, "gen_ai.request.model") == TRANSCRIPTION_MODEL
    assert attribute(first, "output") == CALLER_SAID
    assert attribute(cut_in, "output") == CUT_IN_SAID
    assert _json(first, "input") == {"format": "pcm"}  # Logfire drops the audio data

    (turn,) = _by_start(spans, "Turn {turn} for agent Specialist")[1:]
    assert attribute(turn, "interrupted") is True
    assert attribute(turn, "audio_generated_ms") == float(ANSWER_AUDIO_MS)
    assert 0 <= attribute(turn, "audio_heard_ms") < ANSWER_AUDIO_MS
    for key in ("voice_to_voice_ms", "transcription_delay_ms", "time_to_first_audio_ms"):
        assert attribute(turn, key) >= 0, key
    assert attribute(turn, "silence_duration_ms") == 500
    session = _one(spans, f"Task: {WORKFLOW}")
    assert (attribute(session, "turns"), attribute(session, "interruptions")) == (4, 1)
    assert attribute(session, "voice_to_voice_max_ms") >= 0


async def test_scrubbing_hides_a_transcript_in_attributes_but_not_in_the_message(
    exported: InMemorySpanExporter,
) -> None:
    """Logfire's default scrubbing (words like "password") applies to our transcripts in
    the generation's messages and the transcription's ``output``; but Logfire writes the
    transcript into the transcription span's message itself, after scrubbing, so there
    it stays whole. ``redact=`` (realtime-spans' own) is the way to keep it out."""
    said = "my password is hunter2"
    await run_call(lambda session: traced(session, workflow_name=WORKFLOW), caller_said=said)
    spans = list(exported.get_finished_spans())
    scrubbed = "[Scrubbed due to 'password']"
    generation = _by_start(spans, "Chat completion with {gen_ai.request.model!r}")[-1]
    assert _json(generation, "input") == [{"role": "user", "content": scrubbed}]
    transcription = _by_start(spans, "Speech → Text with {gen_ai.request.model!r}")[0]
    assert attribute(transcription, "output") == scrubbed
    assert _message(transcription).endswith(f": {said}")  # Logfire's message: not scrubbed

    exported.clear()
    await run_call(
        lambda session: traced(
            session, workflow_name=WORKFLOW, redact=lambda text: text.replace("hunter2", "***")
        ),
        caller_said=said,
    )
    spans = list(exported.get_finished_spans())
    assert "hunter2" not in json.dumps([dict(span.attributes or {}) for span in spans])


async def test_logfire_leaves_the_callers_otel_context_alone(
    exported: InMemorySpanExporter,
) -> None:
    before = otel_context.get_current()
    await run_call(lambda session: traced(session, workflow_name=WORKFLOW))
    assert otel_context.get_current() == before
    assert len(exported.get_finished_spans()) == len(EXPECTED_TREE)


def test_logfire_wrote_no_credentials_or_project_files(
    logfire_exporter: InMemorySpanExporter,
) -> None:
    """``send_to_logfire=False`` needs no token and creates no ``.logfire`` directory."""
    assert not (Path.cwd() / ".logfire").exists()
