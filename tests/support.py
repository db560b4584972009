"""What the adapter tests share: scripted conversations, driving sessions, checking trees.

Everything here drives real ``RealtimeSession`` objects through the SDK's own
``ScriptedRealtimeModel``; spans are read from a real ``TracingProcessor`` registered with
the SDK's trace provider.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from agents import function_tool
from agents.realtime import RealtimeAgent, RealtimeRunner
from agents.realtime.events import RealtimeSessionEvent
from agents.realtime.model_events import (
    RealtimeModelAudioEvent,
    RealtimeModelEndOfStreamEvent,
    RealtimeModelEvent,
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
from agents.tracing import Span
from agents.usage import Usage

from realtime_spans.adapters import SpanRecorder


@function_tool
def get_weather(city: str) -> str:
    """Weather in a city."""
    return f"sunny in {city}"


def make_agents(**greeter_options: Any) -> tuple[RealtimeAgent, RealtimeAgent]:
    """A greeter with ``get_weather`` that hands off to a specialist."""
    specialist = RealtimeAgent(name="Specialist", instructions="plan trips")
    options: dict[str, Any] = {"tools": [get_weather], "handoffs": [specialist]}
    options.update(greeter_options)
    greeter = RealtimeAgent(name="Greeter", instructions="greet", **options)
    return greeter, specialist


def turn(response_id: str | None, *events: RealtimeModelEvent) -> list[RealtimeModelEvent]:
    """One model response: ``turn_started``, the events, ``turn_ended``."""
    return [
        RealtimeModelTurnStartedEvent(response_id=response_id),
        *events,
        RealtimeModelTurnEndedEvent(response_id=response_id),
    ]


def call(name: str, call_id: str, arguments: str = "{}") -> RealtimeModelToolCallEvent:
    return RealtimeModelToolCallEvent(name=name, call_id=call_id, arguments=arguments)


def usage(input_tokens: int, output_tokens: int) -> RealtimeModelUsageEvent:
    return RealtimeModelUsageEvent(
        usage=Usage(
            requests=1,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            total_tokens=input_tokens + output_tokens,
        )
    )


def audio(response_id: str, item_id: str = "item", count: int = 3) -> list[RealtimeModelEvent]:
    return [
        RealtimeModelAudioEvent(
            data=b"\x00\x01" * 8, response_id=response_id, item_id=item_id, content_index=0
        )
        for _ in range(count)
    ]


END = RealtimeModelEndOfStreamEvent()


def handoff_steps(*, end: bool = True) -> list[RealtimeStep]:
    """Greeter calls ``get_weather``, then hands off to the specialist, who answers."""
    return [
        RealtimeStep(
            expect=RealtimeModelSendUserInput,
            emit=turn("r1", call("get_weather", "c1", '{"city": "Oslo"}'), usage(10, 5)),
        ),
        RealtimeStep(
            expect=RealtimeModelSendToolOutput,
            emit=turn("r2", call("transfer_to_specialist", "c2"), usage(20, 5)),
        ),
        RealtimeStep(expect=RealtimeModelSendSessionUpdate),
        RealtimeStep(
            expect=RealtimeModelSendToolOutput,
            emit=[*turn("r3", *audio("r3"), usage(30, 10)), *([END] if end else [])],
        ),
    ]


async def converse(
    session: RealtimeSession,
    *,
    message: str = "hello",
    during: Callable[[RealtimeSession, RealtimeSessionEvent], Awaitable[None]] | None = None,
    until: Callable[[RealtimeSessionEvent], bool] | None = None,
) -> list[RealtimeSessionEvent]:
    """Enter the session, send one message, collect events until the stream ends (or until
    ``until(event)`` holds), then leave the session.

    A script should not end the stream in reply to a tool output: the end would race the
    tool's own task (the session may close before the output's send returns). Stop on the
    ``tool_end`` event instead.
    """
    seen: list[RealtimeSessionEvent] = []
    async with session:
        await session.send_message(message)
        async for event in session:
            seen.append(event)
            if during is not None:
                await during(session, event)
            if until is not None and until(event):
                break
    return seen


async def run_script(
    agent: RealtimeAgent,
    steps: Iterable[RealtimeStep],
    *,
    trace: Callable[[RealtimeSession], RealtimeSession] | None = None,
    connect_events: Sequence[RealtimeModelEvent] = (),
    until: Callable[[RealtimeSessionEvent], bool] | None = None,
    **run_options: Any,
) -> tuple[list[RealtimeSessionEvent], ScriptedRealtimeModel]:
    """Run a scripted conversation (traced by ``trace`` when given) to its end."""
    model = ScriptedRealtimeModel(list(steps), connect_events=connect_events)
    session = await RealtimeRunner(agent, model=model, config=run_options.pop("config", None)).run(
        **run_options
    )
    if trace is not None:
        session = trace(session)
    seen = await converse(session, until=until)
    model.assert_complete()
    return seen, model


def ended(kind: str) -> Callable[[RealtimeSessionEvent], bool]:
    """An ``until`` predicate: stop at the first event of type ``kind``."""
    return lambda event: event.type == kind


def event_signature(events: Iterable[RealtimeSessionEvent]) -> list[tuple[str, ...]]:
    """What a user iterating the session observes, comparable across runs."""
    signature: list[tuple[str, ...]] = []
    for event in events:
        parts = [type(event).__name__, event.type]
        data = getattr(event, "data", None)
        if data is not None:
            parts.append(getattr(data, "type", ""))
        for attribute in ("agent", "from_agent", "to_agent"):
            agent = getattr(event, attribute, None)
            if agent is not None:
                parts.append(f"{attribute}={agent.name}")
        tool = getattr(event, "tool", None)
        if tool is not None:
            parts.append(f"tool={tool.name}")
        signature.append(tuple(parts))
    return signature


def of_kind(recorder: SpanRecorder, kind: str) -> list[Span[Any]]:
    """Ended spans of one kind (``agent``, ``turn``, ``function``...), in start order."""
    ended = {span.span_id for span in recorder.spans}
    return [s for s in recorder.started if s.span_data.type == kind and s.span_id in ended]


def only(spans: Sequence[Span[Any]]) -> Span[Any]:
    """The one span of a list (fails the test when there are none or several)."""
    assert len(spans) == 1, [span.span_data.export() for span in spans]
    return spans[0]


def named(spans: Iterable[Span[Any]]) -> list[str]:
    return [getattr(span.span_data, "name", None) or "" for span in spans]


def _time(stamp: str | None) -> datetime:
    assert stamp is not None
    return datetime.fromisoformat(stamp)


def tree_problems(recorder: SpanRecorder, *, external: Iterable[str] = ()) -> list[str]:
    """Everything wrong with the recorded tree (empty when it is well formed).

    Every span started ended exactly once; every parent is a recorded span of the same
    trace (or one of ``external``, the caller's own spans), started no later and ended no
    earlier than its child; every trace that started also ended, once.
    """
    problems: list[str] = []
    started = {span.span_id: span for span in recorder.started}
    allowed_external = set(external)
    for span in started.values():
        count = recorder.end_count(span)
        if count != 1:
            problems.append(f"{span.span_data.type} {span.span_id} ended {count} times")
        parent_id = span.parent_id
        if parent_id is None or parent_id in allowed_external:
            continue
        parent = started.get(parent_id)
        if parent is None:
            problems.append(f"{span.span_data.type} {span.span_id}: parent {parent_id} unknown")
            continue
        if parent.trace_id != span.trace_id:
            problems.append(f"{span.span_id}: parent in another trace")
        if span.ended_at and parent.ended_at:
            if _time(parent.started_at) > _time(span.started_at):
                problems.append(f"{span.span_data.type} {span.span_id} starts before its parent")
            if _time(parent.ended_at) < _time(span.ended_at):
                problems.append(
                    f"{span.span_data.type} {span.span_id} outlives its parent "
                    f"{parent.span_data.type} {parent.span_id}"
                )
    ended_traces = recorder.ended_trace_ids
    for trace in recorder.traces:
        if ended_traces.count(trace.trace_id) != 1:
            problems.append(f"trace {trace.name} ended {ended_traces.count(trace.trace_id)} times")
    return problems


_BAD_SDK_LOG_TEXT = ("already finished", "already started", "different Context", "ContextVar")


def bad_log_records(records: Iterable[logging.LogRecord]) -> list[str]:
    """Log lines that mean tracing went wrong: our own warnings and errors, SDK span
    misuse, context-variable errors."""
    bad = []
    for record in records:
        text = record.getMessage()
        ours = record.name.startswith("realtime_spans") and record.levelno >= logging.WARNING
        if ours or any(marker in text for marker in _BAD_SDK_LOG_TEXT):
            bad.append(text)
    return bad
