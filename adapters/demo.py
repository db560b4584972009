"""The demo: a scripted two-agent realtime call, traced, printed as a span tree and a
conversation.

The caller asks a greeter for the weather (a tool call), then for a trip: the greeter hands
them to a specialist, whose first answer trips an output guardrail (no bookings before
payment), so the session cancels it and the specialist answers again; the caller barges
in on that answer. The model is the SDK's own ``ScriptedRealtimeModel``: no network, no
API key. A driver plays the server's side with small real pauses (about four seconds in
all), so the latencies printed are measured, not made up: the caller's speech as the
server's voice activity detection reports it, their transcripts (one arrives after the
answer started), the agent's transcript and audio in deltas. Run it with
``python -m realtime_spans.adapters.demo``.
"""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agents import function_tool
from agents.guardrail import GuardrailFunctionOutput, OutputGuardrail
from agents.realtime import RealtimeAgent, RealtimeRunner
from agents.realtime.items import InputAudio, UserMessageItem
from agents.realtime.model_events import (
    RealtimeModelAudioDoneEvent,
    RealtimeModelAudioEvent,
    RealtimeModelAudioInterruptedEvent,
    RealtimeModelEndOfStreamEvent,
    RealtimeModelEvent,
    RealtimeModelInputAudioTranscriptionCompletedEvent,
    RealtimeModelInputTokensDetails,
    RealtimeModelItemUpdatedEvent,
    RealtimeModelOutputTokensDetails,
    RealtimeModelRawServerEvent,
    RealtimeModelToolCallEvent,
    RealtimeModelTranscriptDeltaEvent,
    RealtimeModelTurnEndedEvent,
    RealtimeModelTurnStartedEvent,
    RealtimeModelUsageEvent,
)
from agents.realtime.model_inputs import (
    RealtimeModelSendEvent,
    RealtimeModelSendInterrupt,
    RealtimeModelSendSessionUpdate,
    RealtimeModelSendToolOutput,
    RealtimeModelSendUserInput,
)
from agents.realtime.testing import RealtimeStep, ScriptedRealtimeModel
from agents.tracing import set_trace_processors
from agents.usage import Usage

from ._api import traced
from .recording import SpanRecorder

WORKFLOW = "Realtime demo: weather line"


@function_tool
def get_weather(city: str) -> str:
    """Today's weather in a city."""
    return f"Sunny and 21 degrees in {city}."


async def _no_unpaid_bookings(_context: Any, _agent: Any, text: str) -> GuardrailFunctionOutput:
    return GuardrailFunctionOutput(output_info=None, tripwire_triggered="booked" in text)


def build_agents() -> tuple[RealtimeAgent, RealtimeAgent]:
    """The two agents: a greeter with a tool and a handoff, and a guarded specialist.

    Example:
        >>> greeter, specialist = build_agents()
        >>> greeter.name, specialist.name
        ('Greeter', 'Specialist')
    """
    specialist = RealtimeAgent(
        name="Specialist",
        instructions="Plan the caller's trip; never book before payment.",
        output_guardrails=[OutputGuardrail(_no_unpaid_bookings, name="no_unpaid_bookings")],
    )
    greeter = RealtimeAgent(
        name="Greeter",
        instructions="Greet the caller, answer weather questions, hand trips to the specialist.",
        tools=[get_weather],
        handoffs=[specialist],
    )
    return greeter, specialist


def _usage(input_tokens: int, output_tokens: int, audio_out: int) -> RealtimeModelUsageEvent:
    return RealtimeModelUsageEvent(
        usage=Usage(
            requests=1,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            total_tokens=input_tokens + output_tokens,
        ),
        input_tokens_details=RealtimeModelInputTokensDetails(
            text_tokens=input_tokens, audio_tokens=0, cached_tokens=0
        ),
        output_tokens_details=RealtimeModelOutputTokensDetails(
            text_tokens=output_tokens - audio_out, audio_tokens=audio_out
        ),
    )


#: The model's settings: the transcription model makes the caller's words appear, the
#: server VAD's silence window is recorded beside voice-to-voice.
SETTINGS: dict[str, Any] = {
    "model_name": "gpt-realtime",
    "voice": "marin",
    "modalities": ["audio"],
    "output_audio_format": "pcm16",
    "input_audio_transcription": {"model": "gpt-4o-transcribe"},
    "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
}

#: Bytes of PCM16 audio at 24 kHz, mono, per millisecond.
_PCM16_BYTES_PER_MS = 48


@dataclass(frozen=True)
class Pause:
    """The driver waits this long (seconds) before the next beat."""

    seconds: float


@dataclass(frozen=True)
class Emit:
    """The server sends these events."""

    events: tuple[RealtimeModelEvent, ...]


@dataclass(frozen=True)
class Sent:
    """The driver waits until the session has sent this to the model."""

    kind: type[RealtimeModelSendEvent]


Beat = Pause | Emit | Sent


def _server(kind: str, item_id: str) -> RealtimeModelRawServerEvent:
    return RealtimeModelRawServerEvent(data={"type": kind, "item_id": item_id})


def _speech_stopped(item_id: str) -> Emit:
    """The server's VAD heard the caller stop; it commits their audio as an item."""
    return Emit(
        (
            _server("input_audio_buffer.speech_stopped", item_id),
            _server("input_audio_buffer.committed", item_id),
            RealtimeModelItemUpdatedEvent(
                item=UserMessageItem(item_id=item_id, content=[InputAudio(transcript=None)])
            ),
        )
    )


def _caller_says(item_id: str, seconds: float) -> list[Beat]:
    """The caller speaks for ``seconds``."""
    started = _server("input_audio_buffer.speech_started", item_id)
    return [Emit((started,)), Pause(seconds), _speech_stopped(item_id)]


def _transcript(item_id: str, text: str) -> Emit:
    return Emit(
        (RealtimeModelInputAudioTranscriptionCompletedEvent(item_id=item_id, transcript=text),)
    )


def _answer(response_id: str, text: str, audio_ms: int) -> list[Beat]:
    """The response's audio and transcript, in deltas a few milliseconds apart (the server
    generates faster than the caller hears)."""
    item_id = f"item_{response_id}"
    words = text.split(" ")
    chunks = 4
    per_chunk = -(-len(words) // chunks)
    beats: list[Beat] = []
    for index in range(chunks):
        part = " ".join(words[index * per_chunk : (index + 1) * per_chunk])
        events: list[RealtimeModelEvent] = [
            RealtimeModelAudioEvent(
                data=b"\x00\x00" * (_PCM16_BYTES_PER_MS // 2) * (audio_ms // chunks),
                response_id=response_id,
                item_id=item_id,
                content_index=0,
            )
        ]
        if part:
            delta = part if index == 0 else " " + part
            events.append(
                RealtimeModelTranscriptDeltaEvent(
                    item_id=item_id, delta=delta, response_id=response_id
                )
            )
        beats += [Emit(tuple(events)), Pause(0.01)]
    beats.append(Emit((RealtimeModelAudioDoneEvent(item_id=item_id, content_index=0),)))
    return beats


def _start(response_id: str) -> Emit:
    return Emit((RealtimeModelTurnStartedEvent(response_id=response_id),))


def _end(response_id: str, usage: RealtimeModelUsageEvent) -> Emit:
    return Emit((usage, RealtimeModelTurnEndedEvent(response_id=response_id)))


def script() -> tuple[list[RealtimeModelEvent], list[Beat]]:
    """The server's side of the call: its events at connect, then the beats the driver
    plays (events, pauses, and the sends of the session it waits for).

    Example:
        >>> connect_events, beats = script()
        >>> [beat.kind.__name__ for beat in beats if isinstance(beat, Sent)]
        ['RealtimeModelSendToolOutput', 'RealtimeModelSendSessionUpdate', \
'RealtimeModelSendToolOutput', 'RealtimeModelSendInterrupt', 'RealtimeModelSendUserInput']
    """
    connect_events: list[RealtimeModelEvent] = [
        RealtimeModelRawServerEvent(
            data={"type": "session.created", "session": {"id": "sess_demo"}}
        )
    ]
    beats: list[Beat] = [
        # 1. The caller asks; their transcript comes before the answer starts.
        *_caller_says("item_caller_1", 0.35),
        Pause(0.12),
        _transcript("item_caller_1", "What's the weather in Lisbon?"),
        Pause(0.05),
        _start("resp_1"),
        Pause(0.2),
        *_answer("resp_1", "Let me check.", 600),
        Emit(
            (
                RealtimeModelToolCallEvent(
                    name="get_weather", call_id="call_weather", arguments='{"city": "Lisbon"}'
                ),
            )
        ),
        _end("resp_1", _usage(120, 30, 12)),
        # 2. The tool's output starts the next answer.
        Sent(RealtimeModelSendToolOutput),
        Pause(0.1),
        _start("resp_2"),
        Pause(0.18),
        *_answer("resp_2", "It's sunny and 21 degrees in Lisbon today.", 1600),
        _end("resp_2", _usage(160, 60, 40)),
        Pause(0.3),
        # 3. The caller asks again; this transcript arrives after the answer started.
        *_caller_says("item_caller_2", 0.3),
        Pause(0.05),
        _start("resp_3"),
        Pause(0.1),
        _transcript("item_caller_2", "Lovely. Can you plan me a weekend there?"),
        Pause(0.12),
        *_answer("resp_3", "Sure, I'll pass you to our trip planner.", 1200),
        Emit(
            (
                RealtimeModelToolCallEvent(
                    name="transfer_to_specialist", call_id="call_handoff", arguments="{}"
                ),
            )
        ),
        _end("resp_3", _usage(210, 50, 30)),
        # 4. The handoff: the specialist's settings, then the handoff's output.
        Sent(RealtimeModelSendSessionUpdate),
        Sent(RealtimeModelSendToolOutput),
        Pause(0.1),
        _start("resp_4"),
        Pause(0.2),
        *_answer(
            "resp_4",
            "Hi, I plan trips. Great news: I have booked you a hotel in Lisbon for "
            "two nights, and a table for dinner on the river on Saturday.",
            4800,
        ),
        # The guardrail trips on "booked": the session interrupts the answer (the OpenAI
        # transport stops its playback: audio_interrupted) and cancels it...
        Sent(RealtimeModelSendInterrupt),
        Emit((RealtimeModelAudioInterruptedEvent(item_id="item_resp_4", content_index=0),)),
        _end("resp_4", _usage(260, 80, 60)),
        # ...and tells the model why; the specialist answers again.
        Sent(RealtimeModelSendUserInput),
        Pause(0.1),
        _start("resp_5"),
        Pause(0.2),
        *_answer(
            "resp_5",
            "Sorry, I can't book before payment. I can hold a hotel on the river "
            "until Friday, or send you three options by text.",
            4000,
        ),
        _end("resp_5", _usage(300, 90, 70)),
        # 5. The caller barges in while that answer plays.
        Pause(0.5),
        Emit(
            (
                _server("input_audio_buffer.speech_started", "item_caller_3"),
                RealtimeModelAudioInterruptedEvent(item_id="item_resp_5", content_index=0),
            )
        ),
        Pause(0.3),
        _speech_stopped("item_caller_3"),
        Pause(0.1),
        _transcript("item_caller_3", "Just hold the hotel, please."),
        Pause(0.05),
        _start("resp_6"),
        Pause(0.2),
        *_answer("resp_6", "Done: it's held until Friday. Goodbye!", 800),
        _end("resp_6", _usage(340, 40, 30)),
        Pause(0.8),  # the caller hears the goodbye and hangs up
        Emit((RealtimeModelEndOfStreamEvent(),)),
    ]
    return connect_events, beats


def _step(kind: type[RealtimeModelSendEvent], sent: asyncio.Event) -> RealtimeStep:
    """The model expects a send of ``kind``; ``sent`` is set when it comes."""

    def matches(event: RealtimeModelSendEvent) -> bool:
        if not isinstance(event, kind):
            return False
        sent.set()
        return True

    return RealtimeStep(expect=matches)


async def drive(
    model: ScriptedRealtimeModel, beats: Sequence[Beat], sent: Sequence[asyncio.Event]
) -> None:
    """Play the beats: emit, pause, or wait until the session sent the next expected event
    (``sent``: one flag per :class:`Sent` beat, in order).

    Example:
        >>> import asyncio
        >>> asyncio.run(drive(ScriptedRealtimeModel(), [Pause(0.0)], []))
    """
    flags = iter(sent)
    for beat in beats:
        if isinstance(beat, Pause):
            await asyncio.sleep(beat.seconds)
        elif isinstance(beat, Emit):
            await model.emit(*beat.events)
        else:
            await next(flags).wait()


async def run_demo(recorder: SpanRecorder) -> list[str]:
    """Run the scripted call, traced; returns the types of the events the caller saw.

    Example:
        >>> import asyncio
        >>> from agents.tracing import set_trace_processors
        >>> recorder = SpanRecorder()
        >>> set_trace_processors([recorder])
        >>> "handoff" in asyncio.run(run_demo(recorder))
        True
    """
    greeter, _ = build_agents()
    connect_events, beats = script()
    expected = [beat.kind for beat in beats if isinstance(beat, Sent)]
    sent = [asyncio.Event() for _ in expected]
    steps = [_step(kind, flag) for kind, flag in zip(expected, sent, strict=True)]
    model = ScriptedRealtimeModel(steps, connect_events=connect_events)
    config: Any = {"model_settings": dict(SETTINGS)}
    runner = RealtimeRunner(greeter, model=model, config=config)
    seen: list[str] = []
    session = traced(await runner.run(), workflow_name=WORKFLOW, correlate_server_trace=True)
    async with session:
        driver = asyncio.create_task(drive(model, beats, sent))
        async for event in session:
            seen.append(event.type)
        await asyncio.wait_for(driver, timeout=30)
    model.assert_complete()
    return seen


#: The latencies printed per turn, in this order, when the turn span has them.
LATENCIES = (
    "voice_to_voice_ms",
    "time_to_first_audio_ms",
    "time_to_first_text_ms",
    "transcription_delay_ms",
    "audio_generated_ms",
    "audio_heard_ms",
)


def _said(message: Mapping[str, Any], spoken: set[str], agent: str) -> tuple[str, str]:
    """Who said a message and what, as the conversation prints it."""
    role, content = message.get("role"), message.get("content")
    if role == "assistant":
        calls = [
            f"-> {call['function']['name']}({call['function']['arguments'] or ''})"
            for call in message.get("tool_calls") or ()
        ]
        return agent, " ".join([f'"{content}"' if content else "", *calls]).strip()
    if role == "tool":
        return "tool", f'"{content}"'
    if content is None:
        return "caller", "(audio; its transcript came after this answer)"
    return ("caller" if content in spoken else "message"), f'"{content}"'


def conversation(recorder: SpanRecorder) -> list[str]:
    """The conversation per turn, as the spans record it: who said what (each generation's
    input and output; the caller's words are the transcription spans'), each turn's
    latencies, and the session's summary.

    Example:
        >>> conversation(SpanRecorder())
        []
    """
    spans = recorder.started
    spoken = {
        s.span_data.output
        for s in spans
        if s.span_data.type == "transcription" and s.span_data.output
    }
    generations = {s.parent_id: s for s in spans if s.span_data.type == "generation"}
    lines: list[str] = []
    for turn in (s for s in spans if s.span_data.type == "turn"):
        data = turn.span_data.export()["data"]
        state = " (interrupted)" if data.get("interrupted") else ""
        head = f"turn {data['turn']} {data['agent_name']}{state}:"
        measured = [f"{name}={data[name]}" for name in LATENCIES if name in data]
        lines += textwrap.wrap(" ".join([head, *measured]), width=_WIDTH, subsequent_indent=" " * 4)
        generation = generations.get(turn.span_id)
        if generation is None:
            continue
        messages = [*(generation.span_data.input or ()), *(generation.span_data.output or ())]
        for message in messages:
            who, what = _said(message, spoken, data["agent_name"])
            lines += textwrap.wrap(
                f"  {who:<10} {what}",
                width=_WIDTH,
                subsequent_indent=" " * 13,
                break_long_words=False,
            )
    sessions = [s for s in spans if s.span_data.type == "task"]
    if sessions:
        summary = sessions[0].span_data.export()["data"]
        figures = [
            f"{name}={summary[name]}"
            for name in (
                "turns",
                "interruptions",
                "voice_to_voice_median_ms",
                "voice_to_voice_max_ms",
            )
            if name in summary
        ]
        lines.append("session: " + " ".join(figures))
    return lines


_WIDTH = 100


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo and print the span tree and the conversation; returns the exit status."""
    recorder = SpanRecorder()
    set_trace_processors([recorder])  # keep the demo's traces local: nothing is exported
    seen = asyncio.run(run_demo(recorder))
    print(recorder.render())
    print()
    print("\n".join(conversation(recorder)))
    print()
    print(
        f"{len(recorder.spans)} spans in {len(recorder.traces)} trace; "
        f"the caller saw {len(seen)} session events; spans left open: {len(recorder.open_spans)}"
    )
    return 0 if not recorder.open_spans else 1


if __name__ == "__main__":
    raise SystemExit(main())
