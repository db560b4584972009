"""Scripted realtime sessions for the benchmarks: one script, run traced or untraced.

Sessions are real ``RealtimeSession`` objects driven by the SDK's own
``ScriptedRealtimeModel``: no network, no API key. The event stream is shaped like the one
``OpenAIRealtimeWebSocketModel`` delivers: every server message reaches the session first as
a ``RealtimeModelRawServerEvent`` (the model emits one for each WebSocket message) and then
as its normalized model event (turn started, audio delta, audio done, function call, usage,
turn ended). So an audio delta costs the session two model events and the user sees
two session events for it (``raw_model_event`` and ``audio``), as in production.

The traced and untraced arms run the same script and the same consumer loop
(:func:`consume`); the only difference is the ``traced(session)`` call.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import bench_floor
from agents import function_tool
from agents.handoffs import Handoff
from agents.realtime import RealtimeAgent, RealtimeRunner
from agents.realtime.model_events import (
    RealtimeModelAudioDoneEvent,
    RealtimeModelAudioEvent,
    RealtimeModelEndOfStreamEvent,
    RealtimeModelEvent,
    RealtimeModelRawServerEvent,
    RealtimeModelToolCallEvent,
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

from realtime_spans.adapters import traced

#: 50 ms of 24 kHz mono PCM16, the size of a typical output audio delta.
AUDIO_CHUNK = bytes(2400)
_AUDIO_B64 = base64.b64encode(AUDIO_CHUNK).decode("ascii")


@function_tool
async def get_weather(city: str) -> str:
    """Weather in a city (an async tool, so no worker thread adds scheduling noise)."""
    return f"sunny in {city}"


def make_agents() -> tuple[RealtimeAgent[Any], RealtimeAgent[Any]]:
    """Two agents with ``get_weather`` that can hand the call to each other.

    Example:
        >>> greeter, specialist = make_agents()
        >>> [h.name for h in greeter.handoffs], [h.name for h in specialist.handoffs]
        (['Specialist'], ['Greeter'])
    """
    specialist: RealtimeAgent[Any] = RealtimeAgent(
        name="Specialist", instructions="plan trips", tools=[get_weather]
    )
    greeter: RealtimeAgent[Any] = RealtimeAgent(
        name="Greeter", instructions="greet", tools=[get_weather], handoffs=[specialist]
    )
    specialist.handoffs.append(greeter)
    return greeter, specialist


_AGENTS: tuple[RealtimeAgent[Any], RealtimeAgent[Any]] | None = None


def agents() -> tuple[RealtimeAgent[Any], RealtimeAgent[Any]]:
    """The process-wide pair of benchmark agents (made once)."""
    global _AGENTS  # noqa: PLW0603 - a lazily made constant
    if _AGENTS is None:
        _AGENTS = make_agents()
    return _AGENTS


@dataclass(frozen=True)
class Scenario:
    """A scripted conversation: how many turns, audio deltas, tool calls and handoffs.

    Tool calls and handoffs are spread evenly over the turns; a turn carries at most one
    call, and the last turn carries none. Each call is answered by the session (tool output,
    or session update and tool output for a handoff), and that answer releases the next
    scripted turns, as a real model would respond to it.

    Example:
        >>> s = Scenario("demo", turns=4, audio_per_turn=2, tool_calls=1, handoffs=1)
        >>> s.call_plan()
        ['tool', 'handoff', None, None]
    """

    name: str
    turns: int
    audio_per_turn: int
    tool_calls: int
    handoffs: int
    raw_server_events: bool = True
    sessions_per_sample: int = 1

    def call_plan(self) -> list[str | None]:
        """For each turn, the call it ends with: ``"tool"``, ``"handoff"`` or ``None``."""
        count = self.tool_calls + self.handoffs
        if count > max(0, self.turns - 1):
            raise ValueError(f"{self.name}: more calls than turns (the last turn has none)")
        handoff_at = {
            ((index + 1) * count) // (self.handoffs + 1) for index in range(self.handoffs)
        }
        plan: list[str | None] = [None] * self.turns
        for index in range(count):
            plan[(index * (self.turns - 1)) // count] = "handoff" if index in handoff_at else "tool"
        return plan

    def model_events_per_session(self) -> int:
        """How many model events the scripted model delivers in one session."""
        return sum(len(group) for group in self._groups())

    def steps(self) -> list[RealtimeStep]:
        """The script: what the session sends, and the model events each send releases."""
        groups = self._groups()
        plan = self.call_plan()
        steps = [RealtimeStep(expect=RealtimeModelSendUserInput, emit=groups[0])]
        group = 1
        for kind in plan:
            if kind is None:
                continue
            if kind == "handoff":
                steps.append(RealtimeStep(expect=RealtimeModelSendSessionUpdate))
            steps.append(RealtimeStep(expect=RealtimeModelSendToolOutput, emit=groups[group]))
            group += 1
        return steps

    def _groups(self) -> list[list[RealtimeModelEvent]]:
        """Turns grouped into deliveries: each group ends with a call (or the stream's end)."""
        greeter, specialist = agents()
        speaking = greeter
        groups: list[list[RealtimeModelEvent]] = [[]]
        for number, kind in enumerate(self.call_plan(), start=1):
            call: RealtimeModelToolCallEvent | None = None
            if kind == "tool":
                call = RealtimeModelToolCallEvent(
                    name="get_weather", call_id=f"call_{number}", arguments='{"city": "Oslo"}'
                )
            elif kind == "handoff":
                target = specialist if speaking is greeter else greeter
                call = RealtimeModelToolCallEvent(
                    name=Handoff.default_tool_name(target), call_id=f"call_{number}", arguments="{}"
                )
                speaking = target
            groups[-1].extend(self._turn(f"resp_{number}", call))
            if call is not None:
                groups.append([])
        groups[-1].append(RealtimeModelEndOfStreamEvent())
        return groups

    def _turn(
        self, response_id: str, call: RealtimeModelToolCallEvent | None
    ) -> list[RealtimeModelEvent]:
        item_id = f"item_{response_id}"
        events: list[RealtimeModelEvent] = []
        raw = self.raw_server_events

        def server(message: dict[str, Any], *normalized: RealtimeModelEvent) -> None:
            if raw:
                events.append(RealtimeModelRawServerEvent(data=message))
            events.extend(normalized)

        server(
            {"type": "response.created", "response": {"id": response_id}},
            RealtimeModelTurnStartedEvent(response_id=response_id),
        )
        for _ in range(self.audio_per_turn):
            server(
                {
                    "type": "response.output_audio.delta",
                    "response_id": response_id,
                    "item_id": item_id,
                    "content_index": 0,
                    "delta": _AUDIO_B64,
                },
                RealtimeModelAudioEvent(
                    data=AUDIO_CHUNK, response_id=response_id, item_id=item_id, content_index=0
                ),
            )
        if self.audio_per_turn:
            server(
                {"type": "response.output_audio.done", "item_id": item_id, "content_index": 0},
                RealtimeModelAudioDoneEvent(item_id=item_id, content_index=0),
            )
        if call is not None:
            server(
                {
                    "type": "response.function_call_arguments.done",
                    "call_id": call.call_id,
                    "name": call.name,
                    "arguments": call.arguments,
                },
                call,
            )
        server(
            {"type": "response.done", "response": {"id": response_id, "status": "completed"}},
            RealtimeModelUsageEvent(
                usage=Usage(requests=1, input_tokens=120, output_tokens=80, total_tokens=200)
            ),
            RealtimeModelTurnEndedEvent(response_id=response_id),
        )
        return events


def audio_heavy(*, raw_server_events: bool = True) -> Scenario:
    """20 turns of 500 audio deltas each, 10 tool calls, 2 handoffs."""
    return Scenario(
        "audio-heavy",
        turns=20,
        audio_per_turn=500,
        tool_calls=10,
        handoffs=2,
        raw_server_events=raw_server_events,
    )


def lifecycle_heavy() -> Scenario:
    """Turns and tool calls only, no audio: 20 turns, 10 tool calls; 10 sessions a sample."""
    return Scenario(
        "lifecycle-heavy",
        turns=20,
        audio_per_turn=0,
        tool_calls=10,
        handoffs=0,
        sessions_per_sample=10,
    )


@dataclass
class Prepared:
    """A session built (model script snapshotted, session constructed), not yet entered."""

    session: RealtimeSession
    model: ScriptedRealtimeModel


async def prepare(scenario: Scenario) -> Prepared:
    """Build the model and session for one run; this is not part of the timed region."""
    model = ScriptedRealtimeModel(scenario.steps())
    session = await RealtimeRunner(agents()[0], model=model).run()
    return Prepared(session, model)


@dataclass
class Consumed:
    """What the consumer loop saw: events, audio bytes played."""

    events: int = 0
    audio_bytes: int = 0


async def consume(session: RealtimeSession, out: Consumed) -> None:
    """The user side, identical in both arms: enter, say hello, iterate every event, exit."""
    async with session:
        await session.send_message("hello")
        async for event in session:
            out.events += 1
            if event.type == "audio":
                out.audio_bytes += len(event.audio.data)


async def run_timed(
    prepared: Sequence[Prepared], *, trace: bool, floor: bool = False
) -> tuple[int, Consumed]:
    """Run prepared sessions one after another; nanoseconds spent, and what was consumed.

    The timed region is everything a real application pays per session: ``traced()`` (in
    the traced arm), entry and connect, the conversation, every event iterated, and close.
    With ``floor`` (and not ``trace``) the sessions run under :mod:`bench_floor` instead:
    the same spans, made straight through the SDK with no bookkeeping, ended at close.
    """
    seen = Consumed()
    start = time.perf_counter_ns()
    for item in prepared:
        if trace:
            await consume(traced(item.session), seen)
        elif floor:
            tracer = bench_floor.attach(item.session)
            await consume(item.session, seen)
            tracer.close()
        else:
            await consume(item.session, seen)
    elapsed = time.perf_counter_ns() - start
    for item in prepared:
        item.model.assert_complete()
    return elapsed, seen
