"""Five hundred concurrent sessions in one event loop: no span ever crosses sessions.

Every session calls a tool (which works for a few loop turns, so tools of different
sessions interleave) and hands off to a specialist; one in five is closed from another
task while its tool is still running. Each session opens its own trace (named after it):
each trace must hold exactly that session's spans, every parent in the same trace, nothing
left open, and each tool must see its own session's function span and trace as current.
The same sessions run untraced first: every caller sees the same events either way.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict
from typing import Any

from agents import function_tool
from agents.realtime import RealtimeAgent, RealtimeRunner
from agents.realtime.events import RealtimeSessionEvent
from agents.realtime.model_inputs import (
    RealtimeModelSendSessionUpdate,
    RealtimeModelSendToolOutput,
    RealtimeModelSendUserInput,
)
from agents.realtime.session import RealtimeSession
from agents.realtime.testing import RealtimeStep, ScriptedRealtimeModel
from agents.tracing import Span, get_current_span, get_current_trace

from realtime_spans.adapters import SpanRecorder, traced

from .support import END, audio, call, event_signature, tree_problems, turn, usage

SESSIONS = 500
CLOSED_EARLY = range(0, SESSIONS, 5)  # closed from another task while the tool runs
TOOL_TURNS = 8  # loop turns the tool works for; the close lands well within them

_tool_saw: dict[str, tuple[Span[Any] | None, str | None]] = {}


@function_tool
async def get_weather(city: str) -> str:
    """Weather in a city, looked up over a few loop turns."""
    current_trace = get_current_trace()
    _tool_saw[city] = (get_current_span(), current_trace.name if current_trace else None)
    for _ in range(TOOL_TURNS):
        await asyncio.sleep(0)
    return f"sunny in {city}"


def _agent() -> RealtimeAgent[Any]:
    specialist = RealtimeAgent(name="Specialist", instructions="plan trips")
    return RealtimeAgent(
        name="Greeter", instructions="greet", tools=[get_weather], handoffs=[specialist]
    )


def _steps(name: str) -> list[RealtimeStep]:
    arguments = json.dumps({"city": name})
    return [
        RealtimeStep(
            expect=RealtimeModelSendUserInput,
            emit=turn(f"{name}-r1", call("get_weather", f"{name}-c1", arguments), usage(10, 5)),
        ),
        RealtimeStep(
            expect=RealtimeModelSendToolOutput,
            emit=turn(f"{name}-r2", call("transfer_to_specialist", f"{name}-c2"), usage(20, 5)),
        ),
        RealtimeStep(expect=RealtimeModelSendSessionUpdate),
        RealtimeStep(
            expect=RealtimeModelSendToolOutput,
            emit=[*turn(f"{name}-r3", *audio(f"{name}-r3"), usage(30, 10)), END],
        ),
    ]


async def _one(index: int, *, trace_it: bool) -> list[tuple[str, ...]]:
    name = f"session-{index:03d}"
    model = ScriptedRealtimeModel(_steps(name))
    session = await RealtimeRunner(_agent(), model=model).run()
    if trace_it:
        session = traced(session, workflow_name=name)
    before = (get_current_trace(), get_current_span())
    seen: list[RealtimeSessionEvent] = []
    closer: asyncio.Task[None] | None = None
    async with session:
        await session.send_message("hello")
        async for event in session:
            seen.append(event)
            assert (get_current_trace(), get_current_span()) == before
            if index in CLOSED_EARLY and event.type == "tool_start" and closer is None:
                closer = asyncio.create_task(_close_from_elsewhere(session))
    if closer is not None:
        await closer
    else:
        model.assert_complete()
    assert (get_current_trace(), get_current_span()) == before
    return event_signature(seen)


async def _close_from_elsewhere(session: RealtimeSession) -> None:
    await session.close()


FULL = Counter({"task": 1, "agent": 2, "turn": 3, "generation": 3, "function": 1, "handoff": 1})
CUT = Counter({"task": 1, "agent": 1, "turn": 1, "generation": 1, "function": 1})


async def test_five_hundred_concurrent_sessions_never_cross(recorder: SpanRecorder) -> None:
    plain = await asyncio.gather(*(_one(i, trace_it=False) for i in range(SESSIONS)))
    assert recorder.started == []
    _tool_saw.clear()
    seen = await asyncio.gather(*(_one(i, trace_it=True) for i in range(SESSIONS)))

    assert seen == plain  # every caller saw exactly what it sees untraced
    assert recorder.open_spans == []
    assert tree_problems(recorder) == []

    traces = {t.trace_id: t.name for t in recorder.traces}
    assert sorted(traces.values()) == [f"session-{i:03d}" for i in range(SESSIONS)]
    by_trace: dict[str, list[Span[Any]]] = defaultdict(list)
    for span in recorder.started:
        by_trace[traces[span.trace_id]].append(span)  # KeyError: a span outside any trace

    for index in range(SESSIONS):
        name = f"session-{index:03d}"
        spans = by_trace[name]
        ids = {span.span_id for span in spans}
        assert all(span.parent_id is None or span.parent_id in ids for span in spans), name
        kinds = Counter(span.span_data.type for span in spans)
        function = next(s for s in spans if s.span_data.type == "function")
        # the tool ran with its own session's function span and trace current
        tool_span, tool_trace = _tool_saw[name]
        assert tool_span is function and tool_trace == name
        if index in CLOSED_EARLY:
            assert kinds == CUT, name
            assert function.error is not None and "closed" in function.error["message"]
        else:
            assert kinds == FULL, name
            assert all(span.error is None for span in spans), name
            handoff = next(s for s in spans if s.span_data.type == "handoff")
            assert (handoff.span_data.from_agent, handoff.span_data.to_agent) == (
                "Greeter",
                "Specialist",
            )
        (session_span,) = (s for s in spans if s.span_data.type == "task")
        assert session_span.span_data.name == name
    assert sum(len(spans) for spans in by_trace.values()) == len(recorder.started)
