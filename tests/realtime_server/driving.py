"""Driving a real session against the local server: bounded iteration and log checks."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from agents.realtime.events import RealtimeSessionEvent
from agents.realtime.session import RealtimeSession
from agents.tracing import Span, Trace, TracingProcessor, add_trace_processor

__all__ = ["SpanWatch", "agent_ended", "events_until", "nth", "sdk_errors"]


async def events_until(
    session: RealtimeSession,
    stop: Callable[[RealtimeSessionEvent], bool] | None = None,
    *,
    each: Callable[[RealtimeSessionEvent], None] | None = None,
    seconds: float = 5.0,
) -> list[RealtimeSessionEvent]:
    """Iterate ``session`` until ``stop(event)`` holds (or the stream ends); at most ``seconds`` s.

    ``each`` is called with every event, in the iterating task, before ``stop``. Returns
    the events seen, the stopping one last. Exceptions the iteration raises (the session's
    stored transport error) propagate unchanged; running out of time raises
    ``AssertionError`` naming the last events seen.

    Example:
        ```python
        seen = await events_until(session, agent_ended("Specialist"))
        ```
    """
    seen: list[RealtimeSessionEvent] = []
    try:
        async with asyncio.timeout(seconds):
            async for event in session:
                seen.append(event)
                if each is not None:
                    each(event)
                if stop is not None and stop(event):
                    break
    except TimeoutError:
        raise AssertionError(
            f"no stopping event within {seconds} s; last events: {[e.type for e in seen[-8:]]}"
        ) from None
    return seen


def agent_ended(name: str) -> Callable[[RealtimeSessionEvent], bool]:
    """A stop predicate: the ``agent_end`` event of the agent called ``name``.

    Example:
        >>> agent_ended("Specialist").__name__
        'stop'
    """

    def stop(event: RealtimeSessionEvent) -> bool:
        agent: Any = getattr(event, "agent", None)
        return event.type == "agent_end" and getattr(agent, "name", None) == name

    return stop


def nth(event_type: str, count: int) -> Callable[[RealtimeSessionEvent], bool]:
    """A stop predicate: the ``count``-th event of type ``event_type``.

    Example:
        >>> stop = nth("agent_end", 2)
        >>> class Event:
        ...     type = "agent_end"
        >>> [stop(Event()), stop(Event())]
        [False, True]
    """
    seen = 0

    def stop(event: RealtimeSessionEvent) -> bool:
        nonlocal seen
        seen += event.type == event_type
        return seen == count

    return stop


def sdk_errors(records: Iterable[logging.LogRecord]) -> list[str]:
    """Errors the SDK logged (``openai.agents``), e.g. a server event it failed to validate.

    Example:
        >>> sdk_errors([])
        []
    """
    return [
        record.getMessage()
        for record in records
        if record.name.startswith("openai.agents") and record.levelno >= logging.ERROR
    ]


class SpanWatch(TracingProcessor):
    """A tracing processor to wait on: :meth:`ended` returns once a span of a kind ended.

    Register it with :meth:`install` (next to the test's recorder), from the event loop
    thread that ends the spans. It lets a test order itself after something that happens
    in a task it cannot await (a tool's task, say) without sleeping.

    Example:
        ```python
        watch = SpanWatch.install()
        ...
        await watch.ended("function")
        ```
    """

    def __init__(self) -> None:
        self._kinds: set[str] = set()
        self._changed = asyncio.Event()

    @classmethod
    def install(cls) -> SpanWatch:
        """A new watch, added to the SDK's processors (the ``recorder`` fixture resets them)."""
        watch = cls()
        add_trace_processor(watch)
        return watch

    async def ended(self, kind: str, *, seconds: float = 2.0) -> None:
        """Wait (at most ``seconds`` s) until a span of type ``kind`` has ended."""
        try:
            async with asyncio.timeout(seconds):
                while kind not in self._kinds:
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            raise AssertionError(f"no {kind} span ended within {seconds} s") from None

    def on_span_end(self, span: Span[Any]) -> None:
        self._kinds.add(span.span_data.type)
        self._changed.set()

    def on_trace_start(self, trace: Trace) -> None:
        """Not watched."""

    def on_trace_end(self, trace: Trace) -> None:
        """Not watched."""

    def on_span_start(self, span: Span[Any]) -> None:
        """Not watched."""

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self) -> None:
        """Nothing is buffered."""
