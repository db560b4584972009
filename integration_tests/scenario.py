"""The call every integration check runs: a greeter with a tool hands off to a specialist.

The greeter answers a weather question with ``get_weather``, then hands the caller to the
specialist, who answers. The caller then speaks (an audio item, transcribed); the
specialist starts a spoken answer, and the caller cuts in (a barge-in) with words of their
own, transcribed too. The model is the SDK's own ``ScriptedRealtimeModel``. With
``raw_server_events=True`` the script also emits the raw Realtime API server events the
OpenAI WebSocket model forwards before each normalized event (``response.created``,
``response.output_item.added``, ``response.done``...), which is what peers such as
OpenInference's realtime patch read. With ``vad_events=True`` (the default when raw server
events are on) the caller's speech also comes with the server's voice activity messages
(``input_audio_buffer.speech_started``/``speech_stopped``/``committed``), from which the
voice-to-voice latency is measured.

The e2e script imports this module too, so the Phoenix run checks the same call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

from agents import Tool, function_tool
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
    RealtimeModelSendSessionUpdate,
    RealtimeModelSendToolOutput,
    RealtimeModelSendUserInput,
)
from agents.realtime.session import RealtimeSession
from agents.realtime.testing import RealtimeStep, ScriptedRealtimeModel
from agents.usage import Usage

WORKFLOW = "Integration: weather line"
SERVER_SESSION_ID = "sess_integration"
CITY = "Oslo"
WEATHER = f"sunny in {CITY}"
#: Total tokens of each model response, in order (turns 1 and 2: greeter; 3, 4: specialist).
TURN_TOKENS = (15, 25, 40, 62)
SESSION_TOKENS = sum(TURN_TOKENS)
#: What the user types at the start of the call.
TYPED = f"What's the weather in {CITY}? Then plan a trip."
#: The assistant's spoken answers (transcripts), per response that speaks.
GREETER_SAID = "Sunny. Let me get you a planner."
SPECIALIST_SAID = "Hi, I plan trips."
#: The caller's spoken request, the specialist's answer to it, and the barge-in's words.
CALLER_SAID = "Book me a train to Bergen, please."
ANSWER_SAID = "Sure, the morning train to Bergen leaves at"
CUT_IN_SAID = "Wait, make it the evening one."
CALLER_ITEM, CUT_IN_ITEM = "item_caller_1", "item_caller_2"
#: The audio the answer to the caller generates (PCM16, 24 kHz: 48 bytes a millisecond);
#: the caller cuts in long before it has played.
ANSWER_AUDIO_MS = 1500
MODEL = "gpt-realtime"
TRANSCRIPTION_MODEL = "gpt-4o-transcribe"
#: The session's model settings (given to ``RealtimeRunner``'s config).
SETTINGS: dict[str, Any] = {
    "model_name": MODEL,
    "voice": "marin",
    "modalities": ["audio"],
    "input_audio_format": "pcm16",
    "output_audio_format": "pcm16",
    "input_audio_transcription": {"model": TRANSCRIPTION_MODEL},
    "turn_detection": {"type": "server_vad", "silence_duration_ms": 500},
}


@function_tool
def get_weather(city: str) -> str:
    """Weather in a city."""
    return f"sunny in {city}"


def make_agents(weather_tool: Tool = get_weather) -> tuple[RealtimeAgent, RealtimeAgent]:
    """A greeter with a ``get_weather`` tool that hands off to a specialist."""
    specialist = RealtimeAgent(name="Specialist", instructions="plan trips")
    greeter = RealtimeAgent(
        name="Greeter", instructions="greet", tools=[weather_tool], handoffs=[specialist]
    )
    return greeter, specialist


def _usage(input_tokens: int, output_tokens: int) -> RealtimeModelUsageEvent:
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
            text_tokens=output_tokens, audio_tokens=0
        ),
    )


def _spoken(response_id: str, text: str, audio_ms: int = 0) -> list[RealtimeModelEvent]:
    item_id = f"item_{response_id}"
    audio = b"\x00\x01" * (24 * audio_ms if audio_ms else 80)
    return [
        RealtimeModelAudioEvent(
            data=audio, response_id=response_id, item_id=item_id, content_index=0
        ),
        RealtimeModelTranscriptDeltaEvent(item_id=item_id, delta=text, response_id=response_id),
        RealtimeModelAudioDoneEvent(item_id=item_id, content_index=0),
    ]


def _turn(response_id: str, *events: RealtimeModelEvent) -> list[RealtimeModelEvent]:
    return [
        RealtimeModelTurnStartedEvent(response_id=response_id),
        *events,
        RealtimeModelTurnEndedEvent(response_id=response_id),
    ]


def _vad(kind: str, item_id: str) -> RealtimeModelRawServerEvent:
    return _raw({"type": f"input_audio_buffer.{kind}", "item_id": item_id})


def _caller_speaks(item_id: str, *, vad: bool, cut_in: bool = False) -> list[RealtimeModelEvent]:
    """The caller's audio from speech start to its item; a cut-in also interrupts the
    audio that is playing (what the OpenAI model emits on ``speech_started``)."""
    events: list[RealtimeModelEvent] = [_vad("speech_started", item_id)] if vad else []
    if cut_in:
        events.append(RealtimeModelAudioInterruptedEvent(item_id="item_resp_4", content_index=0))
    if vad:
        events += [_vad("speech_stopped", item_id), _vad("committed", item_id)]
    item = UserMessageItem(item_id=item_id, content=[InputAudio(transcript=None)])
    events.append(RealtimeModelItemUpdatedEvent(item=item))
    return events


def _transcribed(item_id: str, text: str) -> RealtimeModelInputAudioTranscriptionCompletedEvent:
    return RealtimeModelInputAudioTranscriptionCompletedEvent(item_id=item_id, transcript=text)


def steps(
    *,
    raw_server_events: bool = False,
    vad_events: bool | None = None,
    caller_said: str = CALLER_SAID,
) -> list[RealtimeStep]:
    """The model's side of the call, optionally with the raw server events (and the voice
    activity ones, by default with the raw server events); ``caller_said`` is what the
    caller's spoken request is transcribed as."""
    vad = raw_server_events if vad_events is None else vad_events
    scripted = [
        RealtimeStep(
            expect=RealtimeModelSendUserInput,
            emit=_turn(
                "resp_1",
                RealtimeModelToolCallEvent(
                    name="get_weather", call_id="call_weather", arguments=f'{{"city": "{CITY}"}}'
                ),
                _usage(10, 5),
            ),
        ),
        RealtimeStep(
            expect=RealtimeModelSendToolOutput,
            emit=_turn(
                "resp_2",
                *_spoken("resp_2", GREETER_SAID),
                RealtimeModelToolCallEvent(
                    name="transfer_to_specialist", call_id="call_handoff", arguments="{}"
                ),
                _usage(20, 5),
            ),
        ),
        RealtimeStep(expect=RealtimeModelSendSessionUpdate),
        RealtimeStep(
            expect=RealtimeModelSendToolOutput,
            emit=[
                *_turn("resp_3", *_spoken("resp_3", SPECIALIST_SAID), _usage(30, 10)),
                # the caller speaks, is transcribed, and the specialist answers aloud
                *_caller_speaks(CALLER_ITEM, vad=vad),
                _transcribed(CALLER_ITEM, caller_said),
                *_turn("resp_4", *_spoken("resp_4", ANSWER_SAID, ANSWER_AUDIO_MS), _usage(50, 12)),
                # the answer has not played out: the caller cuts in
                *_caller_speaks(CUT_IN_ITEM, vad=vad, cut_in=True),
                _transcribed(CUT_IN_ITEM, CUT_IN_SAID),
                RealtimeModelEndOfStreamEvent(),
            ],
        ),
    ]
    return _with_raw_server_events(scripted) if raw_server_events else scripted


def connect_events() -> list[RealtimeModelEvent]:
    """What the server says right after connecting: its session id."""
    return [
        RealtimeModelRawServerEvent(
            data={"type": "session.created", "session": {"id": SERVER_SESSION_ID}}
        )
    ]


def _raw(data: dict[str, Any]) -> RealtimeModelRawServerEvent:
    return RealtimeModelRawServerEvent(data=data)


_TOOL_OUTPUTS = {"call_weather": WEATHER, "call_handoff": '{"assistant": "Specialist"}'}


def _with_raw_server_events(scripted: Iterable[RealtimeStep]) -> list[RealtimeStep]:
    """Each step with the raw server events the OpenAI WebSocket model would forward
    first: the model emits every server event raw, then its normalized form."""
    calls_sent = iter(_TOOL_OUTPUTS.items())
    result: list[RealtimeStep] = []
    for step in scripted:
        emit: list[RealtimeModelEvent] = []
        if step.expect is RealtimeModelSendToolOutput:
            call_id, output = next(calls_sent)
            item = {"type": "function_call_output", "call_id": call_id, "output": output}
            emit.append(_raw({"type": "conversation.item.added", "item": item}))
        response_id = ""
        calls: list[dict[str, Any]] = []
        for event in step.emit:
            if isinstance(event, RealtimeModelTurnStartedEvent):
                response_id, calls = event.response_id or "", []
                response = {"id": response_id, "model": "gpt-realtime"}
                emit.append(_raw({"type": "response.created", "response": response}))
            elif isinstance(event, RealtimeModelToolCallEvent):
                call = {"type": "function_call", "call_id": event.call_id, "name": event.name}
                calls.append({**call, "arguments": event.arguments})
                emit.append(
                    _raw(
                        {"type": "response.output_item.added", "response_id": response_id}
                        | {"item": call}
                    )
                )
                emit.append(
                    _raw(
                        {
                            "type": "response.function_call_arguments.done",
                            "response_id": response_id,
                            "call_id": event.call_id,
                            "arguments": event.arguments,
                        }
                    )
                )
            elif isinstance(event, RealtimeModelInputAudioTranscriptionCompletedEvent):
                completed = "conversation.item.input_audio_transcription.completed"
                emit.append(
                    _raw(
                        {"type": completed, "item_id": event.item_id}
                        | {"content_index": 0, "transcript": event.transcript}
                    )
                )
            elif isinstance(event, RealtimeModelUsageEvent):
                usage = event.usage
                response = {
                    "id": response_id,
                    "status": "completed",
                    "output": calls,
                    "usage": {
                        "input_tokens": usage.input_tokens,
                        "output_tokens": usage.output_tokens,
                        "total_tokens": usage.total_tokens,
                    },
                }
                emit.append(_raw({"type": "response.done", "response": response}))
            emit.append(event)
        result.append(RealtimeStep(expect=step.expect, emit=emit))
    return result


async def run_call(
    trace: Callable[[RealtimeSession], RealtimeSession] | None,
    *,
    raw_server_events: bool = False,
    vad_events: bool | None = None,
    caller_said: str = CALLER_SAID,
    weather_tool: Tool = get_weather,
) -> ScriptedRealtimeModel:
    """Run the call to its end, the session traced by ``trace`` when given (``None``: the
    session as ``RealtimeRunner`` returns it, e.g. when ``instrument()`` is active)."""
    greeter, _ = make_agents(weather_tool)
    model = ScriptedRealtimeModel(
        steps(raw_server_events=raw_server_events, vad_events=vad_events, caller_said=caller_said),
        connect_events=connect_events(),
    )
    config: Any = {"model_settings": dict(SETTINGS)}
    session = await RealtimeRunner(greeter, model=model, config=config).run()
    if trace is not None:
        session = trace(session)
    async with asyncio.timeout(30):  # a call that hangs fails the test instead
        async with session:
            await session.send_message(TYPED)
            async for _ in session:
                pass
    model.assert_complete()
    return model


#: The call as OpenInference shows it (span name [span kind]), indented by depth.
OPENINFERENCE_TREE = [
    f"{WORKFLOW} [AGENT]",  # the trace's root span
    f"  {WORKFLOW} [CHAIN]",  # the session (task) span
    "    Greeter [AGENT]",
    "      get_weather [TOOL]",
    "      handoff to Specialist [TOOL]",
    "      turn [CHAIN]",
    "        generation [LLM]",
    "      turn [CHAIN]",
    "        generation [LLM]",
    "    Specialist [AGENT]",
    "      transcription [CHAIN]",
    "      transcription [CHAIN]",
    "      turn [CHAIN]",
    "        generation [LLM]",
    "      turn [CHAIN]",
    "        generation [LLM]",
]
