"""The conversation in the trace (issue 11), on real sessions over the SDK's scripted model:
generation spans with the messages the model received and what it answered, the caller's
transcripts on their own items' spans, latencies on the turn, redaction."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from agents.realtime import RealtimeAgent, RealtimeRunner
from agents.realtime.items import InputAudio, UserMessageItem
from agents.realtime.model_events import (
    RealtimeModelAudioEvent,
    RealtimeModelAudioInterruptedEvent,
    RealtimeModelEvent,
    RealtimeModelInputAudioTranscriptionCompletedEvent,
    RealtimeModelItemUpdatedEvent,
    RealtimeModelOutputTextDeltaEvent,
    RealtimeModelRawServerEvent,
    RealtimeModelTranscriptDeltaEvent,
    RealtimeModelTurnEndedEvent,
    RealtimeModelTurnStartedEvent,
)
from agents.realtime.model_inputs import (
    RealtimeModelSendSessionUpdate,
    RealtimeModelSendToolOutput,
    RealtimeModelSendUserInput,
)
from agents.realtime.testing import RealtimeStep, ScriptedRealtimeModel
from agents.tracing import Span

from realtime_spans.adapters import SpanRecorder, traced

from .support import END, call, event_signature, make_agents, of_kind, only, tree_problems, usage

SETTINGS = {
    "model_name": "gpt-realtime",
    "voice": "marin",
    "modalities": ["audio"],
    "output_audio_format": "pcm16",
    "input_audio_transcription": {"model": "gpt-4o-transcribe"},
    "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
    "instructions": "never in model_config",
}


def caller_item(item_id: str) -> RealtimeModelItemUpdatedEvent:
    """The caller's audio became a conversation item (as the server reports it)."""
    return RealtimeModelItemUpdatedEvent(
        item=UserMessageItem(item_id=item_id, content=[InputAudio(transcript=None)])
    )


def transcribed(item_id: str, text: str) -> RealtimeModelInputAudioTranscriptionCompletedEvent:
    return RealtimeModelInputAudioTranscriptionCompletedEvent(item_id=item_id, transcript=text)


def said(response_id: str, *parts: str, item_id: str = "a1") -> list[RealtimeModelEvent]:
    return [
        RealtimeModelTranscriptDeltaEvent(item_id=item_id, delta=part, response_id=response_id)
        for part in parts
    ]


def pcm(response_id: str, ms: int, item_id: str = "a1") -> RealtimeModelAudioEvent:
    """``ms`` milliseconds of PCM16 audio at 24 kHz in one delta."""
    return RealtimeModelAudioEvent(
        data=b"\x00\x00" * 24 * ms, response_id=response_id, item_id=item_id, content_index=0
    )


def started(response_id: str) -> RealtimeModelTurnStartedEvent:
    return RealtimeModelTurnStartedEvent(response_id=response_id)


def ended(response_id: str) -> RealtimeModelTurnEndedEvent:
    return RealtimeModelTurnEndedEvent(response_id=response_id)


async def run(
    agent: RealtimeAgent,
    steps: Sequence[RealtimeStep],
    *,
    after: Sequence[RealtimeModelEvent] = (),
    trace: Callable[[Any], Any] | None = traced,
    message: str = "hello",
    settings: dict[str, Any] | None = None,
) -> list[Any]:
    """Run a scripted session: send ``message``, then emit ``after`` from the model."""
    model = ScriptedRealtimeModel(list(steps))
    config = {"model_settings": dict(SETTINGS if settings is None else settings)}
    session = await RealtimeRunner(agent, model=model, config=config).run()  # type: ignore[arg-type]
    if trace is not None:
        session = trace(session)
    seen: list[Any] = []
    async with session:
        await session.send_message(message)
        if after:
            await model.emit(*after, END)
        async for event in session:
            seen.append(event)
    model.assert_complete()
    return seen


def exported(span: Span[Any]) -> dict[str, Any]:
    return span.span_data.export()  # type: ignore[no-any-return]


async def test_each_turn_has_a_generation_with_what_the_model_received_and_answered(
    recorder: SpanRecorder,
) -> None:
    greeter, _ = make_agents()
    steps = [
        RealtimeStep(
            expect=RealtimeModelSendUserInput,
            emit=[
                started("r1"),
                *said("r1", "Let me ", "check."),
                call("get_weather", "c1", '{"city": "Oslo"}'),
                usage(10, 5),
                ended("r1"),
            ],
        ),
        RealtimeStep(
            expect=RealtimeModelSendToolOutput,
            emit=[
                caller_item("u1"),
                started("r2"),
                RealtimeModelOutputTextDeltaEvent(item_id="a2", delta="Sunny.", response_id="r2"),
                transcribed("u1", "and tomorrow?"),
                usage(30, 7),
                ended("r2"),
                END,
            ],
        ),
    ]
    await run(greeter, steps, trace=lambda s: traced(s, include_sensitive_data=True))

    assert tree_problems(recorder) == []
    first, second = of_kind(recorder, "generation")
    turns = of_kind(recorder, "turn")
    assert [g.parent_id for g in (first, second)] == [t.span_id for t in turns]
    data = first.span_data
    assert data.model == "gpt-realtime"
    assert data.model_config["voice"] == "marin"
    assert data.model_config["turn_detection"] == SETTINGS["turn_detection"]
    assert "instructions" not in data.model_config and "tools" not in data.model_config
    assert data.input == [{"role": "user", "content": "hello"}]
    assert data.output == [
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "id": "c1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'},
                }
            ],
        }
    ]
    assert data.usage["input_tokens"] == 10 and data.usage["output_tokens"] == 5
    # the second response received the tool's output, then the caller's words: the
    # transcript came after the response started and still landed on its item
    assert second.span_data.input == [
        {"role": "tool", "tool_call_id": "c1", "content": "sunny in Oslo"},
        {"role": "user", "content": "and tomorrow?"},
    ]
    assert second.span_data.output == [{"role": "assistant", "content": "Sunny."}]
    assert second.span_data.usage["input_tokens"] == 30
    transcription = only(of_kind(recorder, "transcription"))
    assert transcription.span_data.output == "and tomorrow?"
    assert transcription.span_data.model == "gpt-4o-transcribe"
    assert transcription.parent_id == only(of_kind(recorder, "agent")).span_id
    # a text-only response has a time to first text, no time to first audio
    measured = exported(turns[1])["data"]
    assert "time_to_first_text_ms" in measured and "time_to_first_audio_ms" not in measured
    assert measured["time_to_first_text_ms"] >= 0


async def test_a_transcript_after_its_turn_lands_on_its_own_span_and_no_other_turn(
    recorder: SpanRecorder,
) -> None:
    greeter = RealtimeAgent(name="Greeter", instructions="greet")
    steps = [
        RealtimeStep(
            expect=RealtimeModelSendUserInput,
            emit=[started("r1"), *said("r1", "Hi!"), ended("r1")],
        )
    ]
    after = [
        caller_item("u1"),
        started("r2"),
        *said("r2", "Sure."),
        ended("r2"),
        caller_item("u2"),
        started("r3"),
        transcribed("u2", "second words"),
        *said("r3", "Okay."),
        ended("r3"),
        transcribed("u1", "first words"),  # after its turn (r2) ended, and after r3
    ]
    await run(greeter, steps, after=after, trace=lambda s: traced(s, include_sensitive_data=True))

    assert tree_problems(recorder) == []
    generations = of_kind(recorder, "generation")
    assert [g.span_data.input for g in generations] == [
        [{"role": "user", "content": "hello"}],
        [{"role": "user", "content": None}],  # u1: not transcribed while r2 generated
        [{"role": "user", "content": "second words"}],
    ]
    transcripts = sorted(t.span_data.output for t in of_kind(recorder, "transcription"))
    assert transcripts == ["first words", "second words"]
    others = [s for s in recorder.spans if s.span_data.type != "transcription"]
    everything = json.dumps([exported(s) for s in others])
    assert "first words" not in everything  # on no turn, no generation: only its own span


async def test_an_interrupted_response_says_how_much_the_caller_heard(
    recorder: SpanRecorder,
) -> None:
    greeter = RealtimeAgent(name="Greeter", instructions="greet")
    steps = [
        RealtimeStep(
            expect=RealtimeModelSendUserInput,
            emit=[started("r1"), pcm("r1", 2000), *said("r1", "A long answer"), ended("r1")],
        )
    ]
    # the response was generated at once and plays for two seconds: the caller cuts it
    after = [RealtimeModelAudioInterruptedEvent(item_id="a1", content_index=0)]
    await run(greeter, steps, after=after)

    assert tree_problems(recorder) == []
    turn = only(of_kind(recorder, "turn"))
    data = exported(turn)["data"]
    assert data["interrupted"] is True and data["cut_off"] is False
    assert data["audio_generated_ms"] == 2000.0
    assert 0 <= data["audio_heard_ms"] < 2000.0
    generation = only(of_kind(recorder, "generation"))
    assert generation.ended_at is not None and turn.ended_at is not None
    assert generation.ended_at <= turn.ended_at  # the turn waited for the barge-in
    session = exported(only(of_kind(recorder, "task")))["data"]
    assert session["turns"] == 1 and session["interruptions"] == 1


async def test_a_turn_ends_when_its_audio_has_played_out(recorder: SpanRecorder) -> None:
    greeter = RealtimeAgent(name="Greeter", instructions="greet")
    steps = [
        RealtimeStep(
            expect=RealtimeModelSendUserInput,
            emit=[started("r1"), pcm("r1", 50), ended("r1")],
        )
    ]
    model = ScriptedRealtimeModel(steps)
    session = traced(await RealtimeRunner(greeter, model=model).run())
    async with session:
        await session.send_message("hello")
        async for event in session:
            if event.type == "raw_model_event" and event.data.type == "turn_ended":
                break
        turn_spans = [s for s in recorder.started if s.span_data.type == "turn"]
        assert len(turn_spans) == 1 and turn_spans[0].ended_at is None  # still playing
        assert only(of_kind(recorder, "generation")).ended_at is not None
        for _ in range(200):  # 50 ms of audio and the grace period
            await asyncio.sleep(0.01)
            if turn_spans[0].ended_at is not None:
                break
        assert turn_spans[0].ended_at is not None  # played out while the session is open
        assert exported(turn_spans[0])["data"]["interrupted"] is False
    assert tree_problems(recorder) == []


async def test_with_sensitive_data_withheld_no_word_of_the_conversation_is_exported(
    recorder: SpanRecorder,
) -> None:
    greeter, _ = make_agents()
    words = ("secret-hello", "secret-transcript", "secret-answer", "Oslo")
    steps = [
        RealtimeStep(
            expect=RealtimeModelSendUserInput,
            emit=[
                caller_item("u1"),
                started("r1"),
                transcribed("u1", words[1]),
                *said("r1", words[2]),
                call("get_weather", "c1", '{"city": "Oslo"}'),
                ended("r1"),
            ],
        ),
        RealtimeStep(
            expect=RealtimeModelSendToolOutput,
            emit=[started("r2"), *said("r2", "more secret-answer"), ended("r2"), END],
        ),
    ]
    await run(
        greeter,
        steps,
        message=words[0],
        trace=lambda s: traced(s, include_sensitive_data=False),
    )
    dumped = json.dumps([exported(s) for s in recorder.spans])
    dumped += json.dumps([t.export() for t in recorder.traces])
    for word in words:
        assert word not in dumped
    first = of_kind(recorder, "generation")[0].span_data
    assert first.input == [{"role": "user", "content": None}, {"role": "user", "content": None}]
    assert first.output[0]["content"] is None
    function = first.output[0]["tool_calls"][0]["function"]
    assert function == {"name": "get_weather", "arguments": None}
    assert "time_to_first_text_ms" in exported(of_kind(recorder, "turn")[0])["data"]


async def test_redact_applies_to_every_text_and_a_failing_redactor_withholds_only(
    recorder: SpanRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    greeter = RealtimeAgent(name="Greeter", instructions="greet")
    steps = [
        RealtimeStep(
            expect=RealtimeModelSendUserInput,
            emit=[
                caller_item("u1"),
                started("r1"),
                transcribed("u1", "card 4111 please"),
                *said("r1", "I see card 4111"),
                ended("r1"),
                END,
            ],
        )
    ]
    seen_plain = await run(greeter, steps, trace=None, message="my card 4111")
    plain = event_signature(seen_plain)

    def mask(text: str) -> str:
        return text.replace("4111", "####")

    seen = await run(
        greeter,
        steps,
        message="my card 4111",
        trace=lambda s: traced(s, include_sensitive_data=True, redact=mask),
    )
    assert event_signature(seen) == plain
    generation = only(of_kind(recorder, "generation")).span_data
    assert generation.input == [
        {"role": "user", "content": "my card ####"},
        {"role": "user", "content": "card #### please"},
    ]
    assert generation.output == [{"role": "assistant", "content": "I see card ####"}]
    assert only(of_kind(recorder, "transcription")).span_data.output == "card #### please"

    def broken(text: str) -> str:
        raise RuntimeError(text)

    recorder.clear()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="realtime_spans"):
        seen = await run(
            greeter,
            steps,
            message="my card 4111",
            trace=lambda s: traced(s, include_sensitive_data=True, redact=broken),
        )
    assert event_signature(seen) == plain
    dumped = json.dumps([exported(s) for s in recorder.spans])
    assert "4111" not in dumped
    warnings = [r for r in caplog.records if r.name == "realtime_spans"]
    assert len(warnings) == 1 and "redact" in warnings[0].getMessage()
    assert "4111" not in warnings[0].getMessage()
    caplog.clear()
    assert tree_problems(recorder) == []


@pytest.mark.parametrize("bad", [lambda text: None, lambda text: b"bytes"])
async def test_a_redactor_returning_no_string_withholds_the_text(
    recorder: SpanRecorder, caplog: pytest.LogCaptureFixture, bad: Callable[[str], Any]
) -> None:
    greeter = RealtimeAgent(name="Greeter", instructions="greet")
    steps = [
        RealtimeStep(
            expect=RealtimeModelSendUserInput,
            emit=[started("r1"), *said("r1", "words"), ended("r1"), END],
        )
    ]
    await run(greeter, steps, trace=lambda s: traced(s, include_sensitive_data=True, redact=bad))
    generation = only(of_kind(recorder, "generation")).span_data
    assert generation.input == [{"role": "user", "content": None}]
    assert generation.output == [{"role": "assistant", "content": None}]
    caplog.clear()


def test_redact_must_be_callable() -> None:
    with pytest.raises(TypeError, match="redact must be a callable"):
        traced(object(), redact="mask")  # type: ignore[arg-type]


def server(kind: str, item_id: str, **fields: Any) -> RealtimeModelRawServerEvent:
    """A raw server message the SDK passes through (VAD, commits), as the transport does."""
    return RealtimeModelRawServerEvent(data={"type": kind, "item_id": item_id, **fields})


def utterance(item_id: str) -> list[RealtimeModelEvent]:
    """The caller speaks one utterance under server VAD: it starts, stops, is committed."""
    return [
        server("input_audio_buffer.speech_started", item_id, audio_start_ms=0),
        server("input_audio_buffer.speech_stopped", item_id, audio_end_ms=900),
        server("input_audio_buffer.committed", item_id),
        caller_item(item_id),
    ]


async def test_two_utterances_before_one_response_are_both_its_input_in_order(
    recorder: SpanRecorder,
) -> None:
    greeter = RealtimeAgent(name="Greeter", instructions="greet")
    steps = [
        RealtimeStep(
            expect=RealtimeModelSendUserInput,
            emit=[started("r1"), *said("r1", "Hi!"), ended("r1")],
        )
    ]
    after = [
        *utterance("u1"),
        *utterance("u2"),
        transcribed("u2", "second part"),  # the later utterance is transcribed first
        started("r2"),
        transcribed("u1", "first part"),
        pcm("r2", 40),
        *said("r2", "Both heard."),
        ended("r2"),
    ]
    await run(greeter, steps, after=after, trace=lambda s: traced(s, include_sensitive_data=True))

    assert tree_problems(recorder) == []
    second = of_kind(recorder, "generation")[1]
    assert second.span_data.input == [
        {"role": "user", "content": "first part"},
        {"role": "user", "content": "second part"},
    ]
    assert second.span_data.output == [{"role": "assistant", "content": "Both heard."}]
    spans = {t.span_data.output: t for t in of_kind(recorder, "transcription")}
    assert set(spans) == {"first part", "second part"}
    measured = exported(of_kind(recorder, "turn")[1])["data"]
    # the caller stopped speaking (u2) before the response started: both clocks ran
    assert measured["voice_to_voice_ms"] >= measured["time_to_first_audio_ms"] >= 0
    assert measured["transcription_delay_ms"] >= 0
    assert measured["silence_duration_ms"] == 500


async def test_a_turn_started_by_a_tool_output_has_no_callers_words_and_no_voice_to_voice(
    recorder: SpanRecorder,
) -> None:
    greeter, _ = make_agents()
    steps = [
        RealtimeStep(
            expect=RealtimeModelSendUserInput,
            emit=[
                *utterance("u1"),
                transcribed("u1", "weather in Oslo?"),
                started("r1"),
                call("get_weather", "c1", '{"city": "Oslo"}'),
                ended("r1"),
            ],
        ),
        RealtimeStep(
            expect=RealtimeModelSendToolOutput,
            emit=[started("r2"), pcm("r2", 40), *said("r2", "Sunny."), ended("r2"), END],
        ),
    ]
    await run(greeter, steps, trace=lambda s: traced(s, include_sensitive_data=True))

    assert tree_problems(recorder) == []
    first, second = of_kind(recorder, "generation")
    assert first.span_data.input == [
        {"role": "user", "content": "hello"},
        {"role": "user", "content": "weather in Oslo?"},
    ]
    assert second.span_data.input == [
        {"role": "tool", "tool_call_id": "c1", "content": "sunny in Oslo"}
    ]
    measured = exported(of_kind(recorder, "turn")[1])["data"]
    assert "voice_to_voice_ms" not in measured and "transcription_delay_ms" not in measured
    assert measured["time_to_first_audio_ms"] >= 0
    assert measured["audio_generated_ms"] == 40.0


async def test_a_text_only_session_has_text_latencies_and_no_audio_ones(
    recorder: SpanRecorder,
) -> None:
    greeter = RealtimeAgent(name="Greeter", instructions="greet")
    text = RealtimeModelOutputTextDeltaEvent
    steps = [
        RealtimeStep(
            expect=RealtimeModelSendUserInput,
            emit=[
                started("r1"),
                text(item_id="a1", delta="Hello ", response_id="r1"),
                text(item_id="a1", delta="there.", response_id="r1"),
                usage(4, 2),
                ended("r1"),
                END,
            ],
        )
    ]
    settings = {"model_name": "gpt-realtime", "modalities": ["text"]}
    await run(
        greeter,
        steps,
        settings=settings,
        trace=lambda s: traced(s, include_sensitive_data=True),
    )

    assert tree_problems(recorder) == []
    generation = only(of_kind(recorder, "generation")).span_data
    assert generation.model_config["modalities"] == ["text"]
    assert generation.input == [{"role": "user", "content": "hello"}]
    assert generation.output == [{"role": "assistant", "content": "Hello there."}]
    measured = exported(only(of_kind(recorder, "turn")))["data"]
    assert measured["time_to_first_text_ms"] >= 0
    for absent in ("time_to_first_audio_ms", "audio_generated_ms", "voice_to_voice_ms"):
        assert absent not in measured
    assert of_kind(recorder, "transcription") == []
    session = exported(only(of_kind(recorder, "task")))["data"]
    assert session["turns"] == 1 and session["interruptions"] == 0
    assert "voice_to_voice_median_ms" not in session


async def test_a_handoff_in_the_middle_of_the_callers_speech(recorder: SpanRecorder) -> None:
    greeter, _ = make_agents()
    steps = [
        RealtimeStep(
            expect=RealtimeModelSendUserInput,
            emit=[
                started("r1"),
                call("transfer_to_specialist", "h1"),
                # the caller starts speaking while the Greeter hands off
                server("input_audio_buffer.speech_started", "u1", audio_start_ms=0),
                ended("r1"),
            ],
        ),
        RealtimeStep(expect=RealtimeModelSendSessionUpdate),
        RealtimeStep(
            expect=RealtimeModelSendToolOutput,
            emit=[
                server("input_audio_buffer.speech_stopped", "u1", audio_end_ms=700),
                server("input_audio_buffer.committed", "u1"),
                caller_item("u1"),
                started("r2"),
                transcribed("u1", "plan my trip"),
                pcm("r2", 40),
                *said("r2", "Where to?"),
                ended("r2"),
                END,
            ],
        ),
    ]
    await run(greeter, steps, trace=lambda s: traced(s, include_sensitive_data=True))

    assert tree_problems(recorder) == []
    agents = {a.span_data.name: a for a in of_kind(recorder, "agent")}
    transcription = only(of_kind(recorder, "transcription"))
    assert transcription.span_data.output == "plan my trip"
    # the utterance began under the Greeter: its span stays there, in the same trace
    assert transcription.parent_id == agents["Greeter"].span_id
    first, second = of_kind(recorder, "generation")
    turns = of_kind(recorder, "turn")
    assert second.parent_id == turns[1].span_id
    assert turns[1].parent_id == agents["Specialist"].span_id
    assert second.span_data.input == [
        {"role": "tool", "tool_call_id": "h1", "content": second.span_data.input[0]["content"]},
        {"role": "user", "content": "plan my trip"},
    ]
    assert "plan my trip" not in json.dumps(first.span_data.input)
    measured = exported(turns[1])["data"]
    assert measured["voice_to_voice_ms"] >= measured["time_to_first_audio_ms"] >= 0
