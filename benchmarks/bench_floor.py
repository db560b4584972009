"""The floor arm: the SDK's own spans at the same moments, with no bookkeeping at all.

It answers "how much of the overhead is the SDK's span machinery itself?". A
:class:`FloorTracer` replaces the session's event queue with one whose ``_put`` leaves
audio after identity checks (as the library's does) and, on the lifecycle events, makes
the same spans the library makes, straight through the SDK's provider: the trace, the
session span, one agent span per active agent, a turn span per response, a function span
per tool or handoff call and a handoff span per handoff (one trace and 38 spans in the
audio-heavy session, as traced). It keeps no state machine, no error handling, no context
isolation, no tool-task context and no usage: it is not a tracer anyone should ship, only
the least any tracer emitting these spans through the SDK must pay.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agents.realtime.events import (
    RealtimeAudio,
    RealtimeHandoffEvent,
    RealtimeRawModelEvent,
    RealtimeToolEnd,
)
from agents.realtime.model_events import (
    RealtimeModelAudioEvent,
    RealtimeModelRawServerEvent,
    RealtimeModelToolCallEvent,
    RealtimeModelTurnEndedEvent,
    RealtimeModelTurnStartedEvent,
)
from agents.realtime.session import RealtimeSession
from agents.tracing import (
    AgentSpanData,
    FunctionSpanData,
    HandoffSpanData,
    Span,
    TaskSpanData,
    TurnSpanData,
    get_trace_provider,
)


class FloorTracer(asyncio.Queue):  # type: ignore[type-arg]
    """A session's event queue that emits the library's spans with nothing else around them.

    Example:
        >>> tracer = FloorTracer("Greeter")
        >>> tracer.close()
        >>> tracer.spans_made
        2
    """

    def __init__(self, agent_name: str) -> None:
        super().__init__()
        self.provider = get_trace_provider()
        self.trace = self.provider.create_trace(name="Realtime session")
        self.trace.start()
        self.session_span = self._start(TaskSpanData(name="Realtime session"), self.trace)
        self.agent_span = self._start(AgentSpanData(name=agent_name), self.session_span)
        self.turn: Span[Any] | None = None
        self.turns = 0
        self.calls: dict[str, Span[Any]] = {}
        self.spans_made = 2

    def _start(self, data: Any, parent: Any) -> Span[Any]:
        span = self.provider.create_span(span_data=data, parent=parent)
        span.start()
        return span

    def _put(self, item: Any) -> None:
        self._queue.append(item)  # type: ignore[attr-defined]
        kind = type(item)
        if kind is RealtimeRawModelEvent:
            kind = type(item.data)
            if kind is RealtimeModelAudioEvent or kind is RealtimeModelRawServerEvent:
                return
            if kind is RealtimeModelTurnStartedEvent:
                self.turns += 1
                self.turn = self._start(
                    TurnSpanData(turn=self.turns, agent_name="agent"), self.agent_span
                )
                self.spans_made += 1
            elif kind is RealtimeModelTurnEndedEvent and self.turn is not None:
                self.turn.finish()
                self.turn = None
            elif kind is RealtimeModelToolCallEvent:
                data = FunctionSpanData(name=item.data.name, input=None, output=None)
                self.calls[item.data.call_id] = self._start(data, self.agent_span)
                self.spans_made += 1
        elif kind is RealtimeAudio:
            return
        elif kind is RealtimeToolEnd:
            self._end_oldest_call()
        elif kind is RealtimeHandoffEvent:
            self._end_oldest_call()
            from_name, to_name = item.from_agent.name, item.to_agent.name
            handoff = self._start(
                HandoffSpanData(from_agent=from_name, to_agent=to_name), self.agent_span
            )
            handoff.finish()
            self.agent_span.finish()
            self.agent_span = self._start(AgentSpanData(name=to_name), self.session_span)
            self.spans_made += 2

    def _end_oldest_call(self) -> None:
        if self.calls:
            self.calls.pop(next(iter(self.calls))).finish()

    def close(self) -> None:
        """End whatever is open, children first, then the trace."""
        while self.calls:
            self._end_oldest_call()
        if self.turn is not None:
            self.turn.finish()
        self.agent_span.finish()
        self.session_span.finish()
        self.trace.finish()


def attach(session: RealtimeSession) -> FloorTracer:
    """Give a not yet entered session a :class:`FloorTracer` as its event queue."""
    tracer = FloorTracer(session._current_agent.name)
    session._event_queue = tracer  # type: ignore[assignment]
    return tracer
