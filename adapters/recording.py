"""A tracing processor that keeps what it sees and prints it as a tree."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime
from typing import Any

from agents.tracing import Span, Trace, TracingProcessor


def _parse(timestamp: str | None) -> datetime | None:
    return datetime.fromisoformat(timestamp) if timestamp else None


def duration_ms(span: Span[Any]) -> float | None:
    """A finished span's duration in milliseconds (``None`` while it is open).

    Example:
        >>> from agents.tracing import custom_span, trace
        >>> with trace("t"):
        ...     with custom_span("work") as span:
        ...         pass
        >>> duration_ms(span) >= 0
        True
    """
    start, end = _parse(span.started_at), _parse(span.ended_at)
    if start is None or end is None:
        return None
    return (end - start).total_seconds() * 1000


def describe(span: Span[Any]) -> tuple[str, str]:
    """A span's kind and a short name for it, as the tree prints them.

    Example:
        >>> from agents.tracing import agent_span, trace
        >>> with trace("t"):
        ...     describe(agent_span(name="Greeter"))
        ('agent', 'Greeter')
    """
    data = span.span_data
    kind = data.type
    if kind == "handoff":
        return kind, f"{data.from_agent} -> {data.to_agent}"
    if kind == "turn":
        return kind, f"{data.turn} ({data.agent_name})"
    if kind in ("generation", "transcription"):
        return kind, str(getattr(data, "model", None) or "")
    return kind, str(getattr(data, "name", "") or "")


def _details(span: Span[Any]) -> str:
    data = span.span_data
    parts: list[str] = []
    tools = getattr(data, "tools", None)
    if data.type == "agent":
        parts.append(f"tools={list(tools or [])}")
        parts.append(f"handoffs={list(getattr(data, 'handoffs', None) or [])}")
    usage = getattr(data, "usage", None)
    if usage:
        parts.append(f"tokens={usage.get('total_tokens', usage.get('input_tokens', 0))}")
    for flag in ("interrupted", "cut_off"):
        if getattr(data, flag, False):
            parts.append(flag)
    if data.type == "guardrail" and getattr(data, "triggered", False):
        parts.append("triggered")
    if span.error is not None:
        parts.append(f"error={span.error['message']!r}")
    return ("  " + " ".join(parts)) if parts else ""


class SpanRecorder(TracingProcessor):
    """Keeps every trace and span the SDK reports, thread-safely, in the order seen.

    Register it with ``agents.tracing.add_trace_processor`` (or ``set_trace_processors``
    to keep traces local), run a session, then read :attr:`spans` or print
    :meth:`render`.

    Example:
        >>> from agents.tracing import add_trace_processor, custom_span, trace
        >>> recorder = SpanRecorder()
        >>> add_trace_processor(recorder)
        >>> with trace("Demo"):
        ...     with custom_span("step"):
        ...         pass
        >>> print(recorder.render())  # doctest: +ELLIPSIS
        trace Demo
          custom step ... ms
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._traces: list[Trace] = []
        self._started: list[Span[Any]] = []
        self._ended: list[Span[Any]] = []
        self._ended_traces: list[str] = []
        self._end_calls: Counter[str] = Counter()

    # -- TracingProcessor -------------------------------------------------------------------

    def on_trace_start(self, trace: Trace) -> None:
        with self._lock:
            self._traces.append(trace)

    def on_trace_end(self, trace: Trace) -> None:
        with self._lock:
            self._ended_traces.append(trace.trace_id)

    def on_span_start(self, span: Span[Any]) -> None:
        with self._lock:
            self._started.append(span)

    def on_span_end(self, span: Span[Any]) -> None:
        with self._lock:
            self._ended.append(span)
            self._end_calls[span.span_id] += 1

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self) -> None:
        """Nothing is buffered."""

    # -- reading ------------------------------------------------------------------------------

    @property
    def traces(self) -> list[Trace]:
        """Traces started, in order."""
        with self._lock:
            return list(self._traces)

    @property
    def ended_trace_ids(self) -> list[str]:
        """Ids of traces ended, in order (a trace ended twice appears twice)."""
        with self._lock:
            return list(self._ended_traces)

    @property
    def started(self) -> list[Span[Any]]:
        """Spans started, in order."""
        with self._lock:
            return list(self._started)

    @property
    def spans(self) -> list[Span[Any]]:
        """Spans ended, in the order they ended."""
        with self._lock:
            return list(self._ended)

    @property
    def open_spans(self) -> list[Span[Any]]:
        """Spans started and not (yet) ended."""
        with self._lock:
            ended = set(self._end_calls)
            return [span for span in self._started if span.span_id not in ended]

    def end_count(self, span: Span[Any]) -> int:
        """How many times the processor was told that ``span`` ended."""
        if not isinstance(span, Span):
            raise TypeError(f"end_count() needs an SDK span, got {type(span).__name__}")
        with self._lock:
            return self._end_calls[span.span_id]

    def clear(self) -> None:
        """Forget everything recorded so far."""
        with self._lock:
            self._traces.clear()
            self._started.clear()
            self._ended.clear()
            self._ended_traces.clear()
            self._end_calls.clear()

    def render(self, trace_id: str | None = None) -> str:
        """The recorded spans as an indented tree: kind, name, duration, details.

        Example:
            >>> SpanRecorder().render()
            ''
        """
        if trace_id is not None and not isinstance(trace_id, str):
            raise TypeError(f"trace_id must be a str or None, got {type(trace_id).__name__}")
        traces = [t for t in self.traces if trace_id is None or t.trace_id == trace_id]
        spans = self.started
        order = {span.span_id: index for index, span in enumerate(spans)}
        children: dict[str | None, list[Span[Any]]] = {}
        for span in spans:
            children.setdefault(span.parent_id, []).append(span)
        for siblings in children.values():
            siblings.sort(key=lambda s: (_parse(s.started_at) or datetime.min, order[s.span_id]))

        lines: list[str] = []

        def walk(parent_id: str | None, trace_id: str, depth: int) -> None:
            for span in children.get(parent_id, []):
                if span.trace_id != trace_id:
                    continue
                kind, name = describe(span)
                took = duration_ms(span)
                timing = f"{took:.1f} ms" if took is not None else "(open)"
                lines.append(f"{'  ' * depth}{kind} {name} {timing}{_details(span)}")
                walk(span.span_id, trace_id, depth + 1)

        for trace in traces:
            extras = []
            group_id = getattr(trace, "group_id", None)
            if group_id:
                extras.append(f"group_id={group_id}")
            metadata = getattr(trace, "metadata", None)
            if metadata:
                extras.append(f"metadata={metadata}")
            lines.append(" ".join([f"trace {trace.name}", *extras]))
            walk(None, trace.trace_id, 1)
        return "\n".join(lines)
