"""Processors that parent through the context: each span starts where its parent's start
left the context, as in a ``Runner`` run, and nothing leaks out of the session.

Some tracing processors (OpenLLMetry's, for OpenTelemetry) ignore the SDK's parent ids:
on start they put their own span into a context variable, and a later span takes the
variable's value as its parent. The processor here does exactly that, with a context
variable of its own, and records what each span saw when it started.
"""

from __future__ import annotations

import contextvars
from typing import Any

from agents.tracing import Span, Trace, TracingProcessor, set_trace_processors

from realtime_spans.adapters import SpanRecorder, traced

from .support import handoff_steps, make_agents, run_script

_CURRENT: contextvars.ContextVar[str | None] = contextvars.ContextVar("current", default=None)


def _label(span: Span[Any]) -> str:
    data = span.span_data
    return f"{data.type}:{getattr(data, 'name', None) or getattr(data, 'turn', '')}"


class ContextParenting(TracingProcessor):
    """Attaches each span to the context on start and detaches it on end, the way
    OpenTelemetry bridges do; records the ambient label each span started under."""

    def __init__(self) -> None:
        self.started_under: dict[str, str | None] = {}
        self.tokens: dict[str, contextvars.Token[str | None]] = {}

    def on_trace_start(self, trace: Trace) -> None:
        pass

    def on_trace_end(self, trace: Trace) -> None:
        pass

    def on_span_start(self, span: Span[Any]) -> None:
        self.started_under[_label(span)] = _CURRENT.get()
        self.tokens[span.span_id] = _CURRENT.set(_label(span))

    def on_span_end(self, span: Span[Any]) -> None:
        _CURRENT.reset(self.tokens.pop(span.span_id))  # raises if in another context

    def shutdown(self) -> None:
        pass

    def force_flush(self) -> None:
        pass


async def test_each_span_starts_under_its_parents_context(recorder: SpanRecorder) -> None:
    parenting = ContextParenting()
    set_trace_processors([recorder, parenting])
    greeter, _ = make_agents()
    await run_script(greeter, handoff_steps(), trace=traced)

    by_label = {_label(span): span for span in recorder.started}
    for label, span in by_label.items():
        parent = next((p for p in recorder.started if p.span_id == span.parent_id), None)
        assert parenting.started_under[label] == (_label(parent) if parent else None), label
    assert parenting.started_under["function:get_weather"] == "agent:Greeter"
    assert parenting.started_under["agent:Specialist"] == "task:Realtime session"
    assert parenting.tokens == {}  # every span ended in the context it started in
    assert _CURRENT.get() is None  # and nothing leaked into the caller's


async def test_a_tool_sees_its_function_span_in_the_context(recorder: SpanRecorder) -> None:
    """What the processor attached for the function span is current inside the tool."""
    from agents import function_tool

    seen: list[str | None] = []

    @function_tool
    def get_weather(city: str) -> str:
        """Weather in a city."""
        seen.append(_CURRENT.get())
        return f"sunny in {city}"

    parenting = ContextParenting()
    set_trace_processors([recorder, parenting])
    greeter, _ = make_agents(tools=[get_weather])
    await run_script(greeter, handoff_steps(), trace=traced)
    assert seen == ["function:get_weather"]
