"""The demo: a scripted two-agent realtime session, traced, printed as a span tree.

A greeter answers with a tool call (``get_weather``), then hands the caller to a
specialist, whose first answer trips an output guardrail (no bookings without payment):
the session interrupts it and the specialist answers again. The model is the SDK's own
``ScriptedRealtimeModel``: no network, no API key. Run it with
``python -m realtime_spans.adapters.demo``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from agents import function_tool
from agents.guardrail import GuardrailFunctionOutput, OutputGuardrail
from agents.realtime import RealtimeAgent, RealtimeRunner
from agents.realtime.model_events import (
    RealtimeModelAudioDoneEvent,
    RealtimeModelAudioEvent,
    RealtimeModelEndOfStreamEvent,
    RealtimeModelEvent,
    RealtimeModelInputTokensDetails,
    RealtimeModelOutputTokensDetails,
    RealtimeModelRawServerEvent,
    RealtimeModelToolCallEvent,
    RealtimeModelTranscriptDeltaEvent,
    RealtimeModelTurnEndedEvent,
    RealtimeModelTurnStartedEvent,
    RealtimeModelUsageEvent,
)
from agents.realtime.model_inputs import (
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


def _spoken(response_id: str, item_id: str, text: str, chunks: int) -> list[RealtimeModelEvent]:
    events: list[RealtimeModelEvent] = []
    for index in range(chunks):
        events.append(
            RealtimeModelAudioEvent(
                data=b"\x00\x01" * 160, response_id=response_id, item_id=item_id, content_index=0
            )
        )
        if index == 0:
            events.append(
                RealtimeModelTranscriptDeltaEvent(
                    item_id=item_id, delta=text, response_id=response_id
                )
            )
    events.append(RealtimeModelAudioDoneEvent(item_id=item_id, content_index=0))
    return events


def script() -> tuple[list[RealtimeModelEvent], list[RealtimeStep]]:
    """The model's side of the call: what it emits at connect and after each client send.

    Example:
        >>> connect_events, steps = script()
        >>> len(steps)
        6
    """
    connect_events: list[RealtimeModelEvent] = [
        RealtimeModelRawServerEvent(
            data={"type": "session.created", "session": {"id": "sess_demo"}}
        )
    ]
    steps = [
        RealtimeStep(
            expect=RealtimeModelSendUserInput,
            emit=[
                RealtimeModelTurnStartedEvent(response_id="resp_1"),
                RealtimeModelToolCallEvent(
                    name="get_weather", call_id="call_weather", arguments='{"city": "Lisbon"}'
                ),
                _usage(120, 18, 0),
                RealtimeModelTurnEndedEvent(response_id="resp_1"),
            ],
        ),
        RealtimeStep(
            expect=RealtimeModelSendToolOutput,
            emit=[
                RealtimeModelTurnStartedEvent(response_id="resp_2"),
                *_spoken("resp_2", "item_2", "It is sunny in Lisbon. Let me get you a planner.", 8),
                RealtimeModelToolCallEvent(
                    name="transfer_to_specialist", call_id="call_handoff", arguments="{}"
                ),
                _usage(160, 60, 40),
                RealtimeModelTurnEndedEvent(response_id="resp_2"),
            ],
        ),
        RealtimeStep(expect=RealtimeModelSendSessionUpdate),
        RealtimeStep(
            expect=RealtimeModelSendToolOutput,
            emit=[
                RealtimeModelTurnStartedEvent(response_id="resp_3"),
                *_spoken(
                    "resp_3",
                    "item_3",
                    "Hi, I plan trips. Great news: I have booked you a hotel in Lisbon for "
                    "three nights, and a table for dinner on the river on Friday.",
                    12,
                ),
            ],
        ),
        # The guardrail trips on "booked": the session cancels the response...
        RealtimeStep(
            expect=RealtimeModelSendInterrupt,
            emit=[_usage(210, 75, 60), RealtimeModelTurnEndedEvent(response_id="resp_3")],
        ),
        # ...and tells the model why; the specialist answers again.
        RealtimeStep(
            expect=RealtimeModelSendUserInput,
            emit=[
                RealtimeModelTurnStartedEvent(response_id="resp_4"),
                *_spoken("resp_4", "item_4", "Sorry: shall I hold the hotel until you pay?", 6),
                _usage(260, 40, 30),
                RealtimeModelTurnEndedEvent(response_id="resp_4"),
                RealtimeModelEndOfStreamEvent(),
            ],
        ),
    ]
    return connect_events, steps


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
    connect_events, steps = script()
    model = ScriptedRealtimeModel(steps, connect_events=connect_events)
    runner = RealtimeRunner(greeter, model=model)
    seen: list[str] = []
    session = traced(await runner.run(), workflow_name=WORKFLOW, correlate_server_trace=True)
    async with session:
        await session.send_message("What's the weather in Lisbon? I'd like to plan a trip.")
        async for event in session:
            seen.append(event.type)
    model.assert_complete()
    return seen


def main(argv: Sequence[str] | None = None) -> int:
    """Run the demo and print the span tree; returns the exit status."""
    recorder = SpanRecorder()
    set_trace_processors([recorder])  # keep the demo's traces local: nothing is exported
    seen = asyncio.run(run_demo(recorder))
    print(recorder.render())
    print()
    print(
        f"{len(recorder.spans)} spans in {len(recorder.traces)} trace; "
        f"the caller saw {len(seen)} session events; spans left open: {len(recorder.open_spans)}"
    )
    return 0 if not recorder.open_spans else 1


if __name__ == "__main__":
    raise SystemExit(main())
