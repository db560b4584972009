"""What OpenInference's processor leaves out (a turn's latencies, the session's summary, a
caller's transcript) reaches its OpenTelemetry spans as ``metadata`` and ``output.value``,
where Phoenix shows them (adapters/_otel.py); nothing lands on spans that are not
OpenInference's own."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from agents.realtime import RealtimeAgent, RealtimeRunner
from agents.realtime.items import InputAudio, UserMessageItem
from agents.realtime.model_events import (
    RealtimeModelAudioEvent,
    RealtimeModelAudioInterruptedEvent,
    RealtimeModelEndOfStreamEvent,
    RealtimeModelInputAudioTranscriptionCompletedEvent,
    RealtimeModelItemUpdatedEvent,
    RealtimeModelTranscriptDeltaEvent,
    RealtimeModelTurnEndedEvent,
    RealtimeModelTurnStartedEvent,
)
from agents.realtime.model_inputs import RealtimeModelSendAudio, RealtimeModelSendUserInput
from agents.realtime.testing import RealtimeStep, ScriptedRealtimeModel
from agents.tracing import set_trace_processors
from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor
from opentelemetry.sdk.trace import ReadableSpan

from realtime_spans.adapters import SpanRecorder, traced

from .conftest import OtelPipeline

KIND = "openinference.span.kind"


@pytest.fixture
def openinference(otel: OtelPipeline, recorder: SpanRecorder) -> Iterator[OtelPipeline]:
    set_trace_processors([recorder])
    instrumentor = OpenAIAgentsInstrumentor()
    instrumentor.instrument(tracer_provider=otel.provider, exclusive_processor=False)
    try:
        yield otel
    finally:
        instrumentor.uninstrument()


CALLER_AUDIO = b"\x01\x02" * 24 * 300  # 300 ms of PCM16 24 kHz
AGENT_AUDIO = b"\x00\x00" * 24 * 2000  # 2 s


async def _spoken_turn_cut_by_the_caller(*, include_audio: bool = False) -> None:
    agent = RealtimeAgent(name="Greeter", instructions="greet")
    steps = [
        RealtimeStep(expect=RealtimeModelSendAudio),  # the caller's audio, then their text
        RealtimeStep(
            expect=RealtimeModelSendUserInput,
            emit=[
                RealtimeModelItemUpdatedEvent(
                    item=UserMessageItem(item_id="u1", content=[InputAudio(transcript=None)])
                ),
                RealtimeModelTurnStartedEvent(response_id="r1"),
                RealtimeModelInputAudioTranscriptionCompletedEvent(
                    item_id="u1", transcript="is it raining in Oslo"
                ),
                RealtimeModelAudioEvent(
                    data=AGENT_AUDIO, response_id="r1", item_id="a1", content_index=0
                ),
                RealtimeModelTranscriptDeltaEvent(item_id="a1", delta="Yes.", response_id="r1"),
                RealtimeModelTurnEndedEvent(response_id="r1"),
            ],
        ),
    ]
    model = ScriptedRealtimeModel(steps)
    config: Any = {
        "model_settings": {
            "model_name": "gpt-realtime",
            "input_audio_transcription": {"model": "gpt-4o-transcribe"},
        }
    }
    session = traced(
        await RealtimeRunner(agent, model=model, config=config).run(),
        include_sensitive_data=True,
        include_audio=include_audio,
    )
    async with session:
        await session.send_audio(CALLER_AUDIO)
        await session.send_message("hello")
        await model.emit(
            RealtimeModelAudioInterruptedEvent(item_id="a1", content_index=0),
            RealtimeModelEndOfStreamEvent(),
        )
        async for _ in session:
            pass


def _one(spans: list[ReadableSpan], name: str) -> ReadableSpan:
    (span,) = [
        span for span in spans if span.name == name and (span.attributes or {}).get(KIND) != "AGENT"
    ]  # OpenInference's own realtime patch names its session span the same, as an AGENT
    return span


def _metadata(span: ReadableSpan) -> dict[str, Any]:
    assert span.attributes is not None
    return json.loads(str(span.attributes["metadata"]))  # type: ignore[no-any-return]


async def test_latencies_summary_and_transcripts_reach_openinference_spans(
    openinference: OtelPipeline,
) -> None:
    await _spoken_turn_cut_by_the_caller()
    spans = list(openinference.exporter.get_finished_spans())

    turn = _metadata(_one(spans, "turn"))
    assert turn["interrupted"] is True and turn["turn"] == 1
    assert turn["audio_generated_ms"] == 2000.0
    assert 0 <= turn["audio_heard_ms"] < 2000.0
    assert "time_to_first_audio_ms" in turn
    session = _metadata(_one(spans, "Realtime session"))
    assert session["turns"] == 1 and session["interruptions"] == 1
    transcription = _one(spans, "transcription")
    assert transcription.attributes is not None
    assert transcription.attributes["output.value"] == "is it raining in Oslo"
    assert transcription.attributes["llm.model_name"] == "gpt-4o-transcribe"
    generation = _one(spans, "generation")  # OpenInference's own mapping, untouched
    assert generation.attributes is not None
    assert generation.attributes[KIND] == "LLM"
    assert "metadata" not in generation.attributes
    assert generation.attributes["llm.input_messages.1.message.content"] == (
        "is it raining in Oslo"
    )
    assert generation.attributes["llm.output_messages.0.message.content"] == "Yes."


async def test_spans_of_other_processors_are_left_alone(
    otel: OtelPipeline, recorder: SpanRecorder
) -> None:
    # No OpenInference processor: the caller's own OpenTelemetry span is current where the
    # session is entered, and it must not receive the session's data.
    set_trace_processors([recorder])
    tracer = otel.provider.get_tracer("app")
    with tracer.start_as_current_span("caller") as caller:
        await _spoken_turn_cut_by_the_caller()
    assert caller.attributes is not None and "metadata" not in caller.attributes
    assert not any(key.endswith(".audio.url") for key in caller.attributes)
    (only,) = otel.exporter.get_finished_spans()
    assert only.name == "caller" and "metadata" not in (only.attributes or {})


def _wav_of(uri: object) -> bytes:
    assert isinstance(uri, str) and uri.startswith("data:audio/wav;base64,")
    wav = base64.b64decode(uri.split(",", 1)[1])
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"
    assert int.from_bytes(wav[24:28], "little") == 24000  # PCM16 24 kHz
    return wav[44:]


async def test_recorded_audio_reaches_openinference_spans_as_wav_data_uris(
    openinference: OtelPipeline,
) -> None:
    await _spoken_turn_cut_by_the_caller(include_audio=True)
    spans = list(openinference.exporter.get_finished_spans())

    speech = _one(spans, "speech")
    assert speech.attributes is not None
    assert _wav_of(speech.attributes["output.audio.url"]) == AGENT_AUDIO
    assert speech.attributes["output.audio.mime_type"] == "audio/wav"
    assert speech.attributes["output.audio.transcript"] == "Yes."
    details = _metadata(speech)
    assert details["output_format"] == "pcm" and details["truncated"] is False
    assert 0 <= details["audio_heard_ms"] < 2000.0  # where a player should stop

    transcription = _one(spans, "transcription")
    assert transcription.attributes is not None
    assert _wav_of(transcription.attributes["input.audio.url"]) == CALLER_AUDIO
    assert transcription.attributes["input.audio.transcript"] == "is it raining in Oslo"


async def test_no_audio_attribute_without_include_audio(openinference: OtelPipeline) -> None:
    await _spoken_turn_cut_by_the_caller()
    for span in openinference.exporter.get_finished_spans():
        assert not any(".audio." in key for key in span.attributes or {}), span.name
