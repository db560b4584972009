"""Fault injection: whatever fails around tracing, the session behaves exactly as untraced.

Each test runs a real session through the SDK's ``ScriptedRealtimeModel`` twice, traced and
untraced, with the same script and the same caller actions, and compares what the caller
observes (the events iterated, and what the session sent to the model), then what the
healthy processors recorded and what was logged. The faults:

1. a tracing processor that raises in one of its callbacks, beside a healthy one;
2. the caller ending their own trace, or their span, while the session still runs (and
   ending the trace with plain ``finish()``, which leaves it current);
3. tracing disabled mid-session (and re-enabled, or not);
4. ``uninstrument()`` while instrumented sessions run;
5. an internal error in the span machine (of one of two concurrent sessions);
6. tracing stopping (internal error, tracing disabled) while a tool runs in its span;
7. the model reusing a running call's id for another tool;
8. the caller's task cancelled while the session closes, its span ending before cleanup.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import pytest
from agents import RunContextWrapper, function_tool
from agents.realtime import RealtimeAgent, RealtimeRunner, realtime_handoff
from agents.realtime.events import RealtimeSessionEvent
from agents.realtime.model_events import RealtimeModelTurnEndedEvent
from agents.realtime.model_inputs import (
    RealtimeModelSendEvent,
    RealtimeModelSendSessionUpdate,
    RealtimeModelSendToolOutput,
    RealtimeModelSendUserInput,
)
from agents.realtime.session import RealtimeSession
from agents.realtime.testing import RealtimeStep, ScriptedRealtimeModel
from agents.tracing import (
    Span,
    Trace,
    TracingProcessor,
    custom_span,
    get_current_span,
    get_current_trace,
    set_trace_processors,
    set_tracing_disabled,
    trace,
)
from agents.tracing.spans import NoOpSpan

from realtime_spans.adapters import (
    SpanRecorder,
    instrument,
    is_instrumented,
    traced,
    uninstrument,
)
from realtime_spans.core import SpanMachine

from .support import (
    END,
    audio,
    call,
    converse,
    event_signature,
    handoff_steps,
    of_kind,
    tree_problems,
    turn,
    usage,
)

# -- the cast: a tool and a handoff callback that report what they see as current -------------

_seen_current: list[tuple[str, Span[Any] | None, Trace | None]] = []


@function_tool(name_override="get_weather")
async def weather(city: str) -> str:
    """Weather in a city (async: runs in the tool's own task, deterministically)."""
    _seen_current.append(("tool", get_current_span(), get_current_trace()))
    await asyncio.sleep(0)
    return f"sunny in {city}"


def _on_handoff(_context: RunContextWrapper[Any]) -> None:
    _seen_current.append(("on_handoff", get_current_span(), get_current_trace()))


def _agents() -> RealtimeAgent[Any]:
    specialist = RealtimeAgent(name="Specialist", instructions="plan trips")
    return RealtimeAgent(
        name="Greeter",
        instructions="greet",
        tools=[weather],
        handoffs=[realtime_handoff(specialist, on_handoff=_on_handoff)],
    )


def _three_messages_steps() -> list[RealtimeStep]:
    """Three user messages; the second one's answer calls ``get_weather``."""
    return [
        RealtimeStep(expect=RealtimeModelSendUserInput, emit=turn("r1", *audio("r1"), usage(5, 5))),
        RealtimeStep(
            expect=RealtimeModelSendUserInput,
            emit=turn("r2", call("get_weather", "c1", '{"city": "Rome"}'), usage(6, 6)),
        ),
        RealtimeStep(expect=RealtimeModelSendToolOutput, emit=turn("r3", usage(7, 7))),
        RealtimeStep(expect=RealtimeModelSendUserInput, emit=[*turn("r4", usage(8, 8)), END]),
    ]


Trace_it = Callable[[RealtimeSession], RealtimeSession] | None
During = Callable[[RealtimeSession, RealtimeSessionEvent], Awaitable[None]]


def _sends(model: ScriptedRealtimeModel) -> list[tuple[Any, ...]]:
    """What the session sent to the model, comparably."""
    described: list[tuple[Any, ...]] = []
    for sent in model.sent_events:
        described.append(_describe(sent))
    return described


def _describe(sent: RealtimeModelSendEvent) -> tuple[Any, ...]:
    if isinstance(sent, RealtimeModelSendToolOutput):
        return ("tool_output", sent.tool_call.call_id, sent.output)
    if isinstance(sent, RealtimeModelSendUserInput):
        return ("user_input", sent.user_input)
    if isinstance(sent, RealtimeModelSendSessionUpdate):
        return ("session_update", sent.session_settings.get("instructions"))
    return (type(sent).__name__,)


async def _run(
    steps: Sequence[RealtimeStep],
    *,
    trace_it: Trace_it,
    during: During | None = None,
    then_say: dict[int, str] | None = None,
    prepare: Callable[[RealtimeSession], None] | None = None,
) -> tuple[list[tuple[str, ...]], list[tuple[Any, ...]]]:
    """Run one scripted session: say "hello", then ``then_say[n]`` after the n-th answer."""
    model = ScriptedRealtimeModel(list(steps))
    session = await RealtimeRunner(_agents(), model=model).run()
    if trace_it is not None:
        session = trace_it(session)
    if prepare is not None:
        prepare(session)
    answers = 0

    async def act(active: RealtimeSession, event: RealtimeSessionEvent) -> None:
        nonlocal answers
        if during is not None:
            await during(active, event)
        if event.type == "agent_end":
            answers += 1
            if then_say and answers in then_say:
                await active.send_message(then_say[answers])

    seen = await converse(session, during=act)
    model.assert_complete()
    return event_signature(seen), _sends(model)


#: After which answer the caller says what, in the three-message conversation (the second
#: answer calls a tool, whose output brings the third answer).
THREE_MESSAGES = {1: "second", 3: "third"}


def _ours(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "realtime_spans" and r.levelno >= level]


def _kinds(spans: Sequence[Span[Any]]) -> list[str]:
    return sorted(span.span_data.type for span in spans)


FULL_TREE = sorted(
    ["task", "agent", "agent", "turn", "turn", "turn", "function", "handoff"] + ["generation"] * 3
)


# -- 1. a tracing processor that raises --------------------------------------------------------


class _Faulty(TracingProcessor):
    """A processor (say, an exporter whose backend is down) that raises in one callback."""

    def __init__(self, failing: str) -> None:
        self.failing = failing

    def _maybe_fail(self, callback: str) -> None:
        if callback == self.failing:
            raise ConnectionError(f"exporter down in {callback}")

    def on_trace_start(self, trace: Trace) -> None:
        self._maybe_fail("on_trace_start")

    def on_trace_end(self, trace: Trace) -> None:
        self._maybe_fail("on_trace_end")

    def on_span_start(self, span: Span[Any]) -> None:
        self._maybe_fail("on_span_start")

    def on_span_end(self, span: Span[Any]) -> None:
        self._maybe_fail("on_span_end")

    def shutdown(self) -> None:
        """Nothing to release."""

    def force_flush(self) -> None:
        """Nothing buffered."""


@pytest.mark.parametrize(
    "failing", ["on_span_start", "on_span_end", "on_trace_start", "on_trace_end"]
)
async def test_processor_that_raises_changes_nothing(
    failing: str, caplog: pytest.LogCaptureFixture
) -> None:
    plain = await _run(handoff_steps(), trace_it=None)

    healthy = SpanRecorder()
    set_trace_processors([_Faulty(failing), healthy])  # the faulty one is called first
    try:
        seen = await _run(handoff_steps(), trace_it=traced)
    finally:
        set_trace_processors([])

    assert seen == plain
    # The SDK's multi-processor catches each processor's error: the healthy processor
    # registered after the faulty one still sees the whole, well-formed tree.
    assert _kinds(healthy.started) == FULL_TREE
    assert healthy.open_spans == [] and tree_problems(healthy) == []
    assert all(span.error is None for span in healthy.spans)
    assert len(healthy.traces) == 1 and len(healthy.ended_trace_ids) == 1
    # ... and logs each failure once, as its own error (the library never notices).
    complaints = [
        r for r in caplog.records if f"Error in trace processor during {failing}" in r.getMessage()
    ]
    calls_per_session = len(healthy.started) if "span" in failing else 1
    assert len(complaints) == calls_per_session
    assert {(r.name, r.levelno) for r in complaints} == {("openai.agents", logging.ERROR)}
    assert _ours(caplog, logging.WARNING) == []
    caplog.clear()


# -- 2. the caller ends their own trace or span while the session still runs ------------------


def _says(record_or_error: Any, *words: str) -> bool:
    text = record_or_error if isinstance(record_or_error, str) else record_or_error.getMessage()
    return all(re.search(word, text, re.IGNORECASE) for word in words)


async def _caller_ends_first(
    what: str, when: str, *, trace_it: Trace_it
) -> tuple[Any, list[Span[Any]], int]:
    """Run the three-message session inside a caller's trace (``what="span"``: and span)
    and end that trace (or span) before the session closes.

    ``when="mid"``: after the first answer, while the conversation goes on (the library
    can see it at the next span it starts); ``when="close"``: after the last answer, just
    before the session closes. Returns what the caller observed, the spans recorded, and
    how many had started when the caller ended theirs.
    """
    recorder = SpanRecorder()
    set_trace_processors([recorder])
    caller_trace = trace("Caller's trace")
    caller_trace.start(mark_as_current=True)
    caller_span = custom_span("caller's step")
    if what == "span":
        caller_span.start(mark_as_current=True)
    started_then: list[int] = []
    end_after = 1 if when == "mid" else 4

    def end_it() -> None:
        started_then.append(len(recorder.started))
        if what == "span":
            caller_span.finish(reset_current=True)
        else:
            caller_trace.finish(reset_current=True)

    answers = 0

    async def during(_session: RealtimeSession, event: RealtimeSessionEvent) -> None:
        nonlocal answers
        if event.type == "agent_end":
            answers += 1
            if answers == end_after:
                end_it()

    try:
        result = await _run(
            _three_messages_steps(), trace_it=trace_it, during=during, then_say=THREE_MESSAGES
        )
    finally:
        if not started_then:
            end_it()
        if what == "span":
            caller_trace.finish(reset_current=True)
        set_trace_processors([])
    assert get_current_span() is None and get_current_trace() is None
    return result, recorder.started, started_then[0]


@pytest.mark.parametrize("when", ["mid", "close"])
@pytest.mark.parametrize("what", ["trace", "span"])
async def test_caller_ends_their_trace_or_span_first(
    what: str, when: str, caplog: pytest.LogCaptureFixture
) -> None:
    plain, plain_spans, _ = await _caller_ends_first(what, when, trace_it=None)
    seen, spans, started_at_end = await _caller_ends_first(what, when, trace_it=traced)

    assert seen == plain
    assert [s for s in plain_spans if s.span_data.type != "custom"] == []
    session_spans = [s for s in spans if s.span_data.type != "custom"]
    # tracing stopped for the session: nothing started after the caller's end
    assert len(spans) == started_at_end
    assert all(span.ended_at is not None for span in session_spans)
    # the spans still open were closed, saying the caller's trace (or span) ended first
    (session_span,) = [s for s in session_spans if s.span_data.type == "task"]
    assert session_span.error is not None
    assert _says(session_span.error["message"], what, "(ended|finished)")
    open_then = [s for s in session_spans if s.span_data.type in ("task", "agent")]
    assert all(s.error is not None and _says(s.error["message"], what) for s in open_then)
    (warning,) = _ours(caplog, logging.WARNING)
    assert warning.levelno == logging.WARNING
    assert _says(warning, what, "(ended|finished)")
    caplog.clear()


async def _caller_finishes_trace_without_reset(*, trace_it: Trace_it) -> tuple[Any, list[Any]]:
    """As ``_caller_ends_first("trace", "mid")``, but the caller ends its trace with
    ``finish()``: ``reset_current=False``, the SDK's default. The caller runs in a task of
    its own, so the ended trace it leaves current stays in that task's context."""
    recorder = SpanRecorder()
    set_trace_processors([recorder])

    async def caller() -> Any:
        caller_trace = trace("Caller's trace")
        caller_trace.start(mark_as_current=True)

        async def during(_session: RealtimeSession, event: RealtimeSessionEvent) -> None:
            if event.type == "agent_end" and not recorder.ended_trace_ids:
                caller_trace.finish()  # processors are told the trace ended

        return await _run(
            _three_messages_steps(), trace_it=trace_it, during=during, then_say=THREE_MESSAGES
        )

    try:
        result = await asyncio.create_task(caller())
    finally:
        set_trace_processors([])
    return result, recorder.started


@pytest.mark.xfail(
    strict=True,
    reason=(
        "the library sees a caller's trace end through the context token that "
        "finish(reset_current=True) drops; a trace ended with plain finish() (the SDK's "
        "default) goes unnoticed: the session keeps adding spans to the ended trace, with "
        "no warning"
    ),
)
async def test_caller_finishes_their_trace_without_resetting_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    plain, _ = await _caller_finishes_trace_without_reset(trace_it=None)
    seen, spans = await _caller_finishes_trace_without_reset(trace_it=traced)
    assert seen == plain
    # as when the trace is ended with reset_current=True: tracing stops, with one warning
    assert [s.span_data.type for s in spans] == ["task", "agent", "turn"]
    (warning,) = _ours(caplog, logging.WARNING)
    assert _says(warning, "trace", "(ended|finished)")
    caplog.clear()


# -- 3. tracing disabled, then re-enabled, while the session runs ------------------------------


async def _disabled_midway(*, trace_it: Trace_it, reenable: bool) -> tuple[Any, SpanRecorder]:
    recorder = SpanRecorder()
    set_trace_processors([recorder])
    answers = 0
    user_current: list[Span[Any] | None] = []

    async def during(_session: RealtimeSession, event: RealtimeSessionEvent) -> None:
        nonlocal answers
        user_current.append(get_current_span())
        if event.type == "agent_end":
            answers += 1
            if answers == 1:
                set_tracing_disabled(True)
            elif answers == 3 and reenable:
                set_tracing_disabled(False)

    _seen_current.clear()
    try:
        result = await _run(
            _three_messages_steps(), trace_it=trace_it, during=during, then_say=THREE_MESSAGES
        )
    finally:
        set_tracing_disabled(False)
        set_trace_processors([])
    made_current = [span for span in user_current if span is not None]
    made_current += [span for _, span, _ in _seen_current if span is not None]
    assert not any(isinstance(span, NoOpSpan) or span.span_id == "no-op" for span in made_current)
    assert _seen_current, "the tool ran"
    return result, recorder


@pytest.mark.parametrize("reenable", [True, False], ids=["re-enabled", "still-disabled"])
async def test_tracing_disabled_mid_session(
    reenable: bool, caplog: pytest.LogCaptureFixture
) -> None:
    plain, _ = await _disabled_midway(trace_it=None, reenable=reenable)
    seen, recorder = await _disabled_midway(trace_it=traced, reenable=reenable)

    assert seen == plain  # no exception, same events, same sends
    assert tree_problems(recorder) == [] and recorder.open_spans == []
    # the spans open when tracing was disabled (trace, session, agent) were closed, saying so
    (session_span,) = [s for s in recorder.started if s.span_data.type == "task"]
    (agent_span,) = [s for s in recorder.started if s.span_data.type == "agent"]
    for span in (session_span, agent_span):
        assert span.error is not None
        assert _says(span.error["message"], "disabled")
    (warning,) = _ours(caplog, logging.WARNING)
    assert warning.levelno == logging.WARNING and _says(warning, "disabled")
    caplog.clear()


# -- 4. uninstrument() while instrumented sessions run -----------------------------------------


async def test_uninstrument_while_sessions_run(recorder: SpanRecorder) -> None:
    async def plain_run() -> Any:
        return await _run(handoff_steps(), trace_it=None)

    plain = await plain_run()

    instrument(workflow_name="Instrumented")
    models = [ScriptedRealtimeModel(handoff_steps()) for _ in range(2)]
    sessions = [await RealtimeRunner(_agents(), model=m).run() for m in models]
    later: list[asyncio.Task[Any]] = []

    async def uninstrument_midway(session: RealtimeSession, event: RealtimeSessionEvent) -> None:
        if event.type == "agent_end" and not later:
            uninstrument()
            assert not is_instrumented()
            later.append(asyncio.create_task(plain_run()))  # a new session: not traced

    seen = await asyncio.gather(
        converse(sessions[0], during=uninstrument_midway), converse(sessions[1])
    )
    new_session = await later[0]
    for model in models:
        model.assert_complete()

    assert [(event_signature(s), _sends(m)) for s, m in zip(seen, models, strict=True)] == [
        plain,
        plain,
    ]
    assert new_session == plain
    assert not is_instrumented()
    # the two sessions instrumented before finished all their spans, normally
    assert [t.name for t in recorder.traces] == ["Instrumented", "Instrumented"]
    by_trace = Counter(span.trace_id for span in recorder.spans)
    assert sorted(by_trace.values()) == [len(FULL_TREE)] * 2
    assert _kinds(recorder.spans) == sorted(FULL_TREE * 2)
    assert all(span.error is None for span in recorder.spans)
    assert tree_problems(recorder) == [] and recorder.open_spans == []


# -- 5. an internal error in the tracer --------------------------------------------------------


def _ghost_turn_steps() -> list[RealtimeStep]:
    """The handoff conversation, with a ``turn_ended`` for a response that never started
    arriving while the first turn and its tool call are open."""
    steps = handoff_steps()
    first = steps[0]
    ghost = RealtimeModelTurnEndedEvent(response_id="ghost")
    emit = list(first.emit)
    emit.insert(2, ghost)  # after turn_started and the function call
    steps[0] = RealtimeStep(expect=first.expect, emit=emit)
    return steps


def _make_strict(session: RealtimeSession) -> None:
    # Reaching into the library's internals on purpose: no public path exists for injecting
    # an internal failure. A strict span machine raises on the ghost ``turn_ended`` (no such
    # turn is open) where the default lenient one would only emit a diagnostic.
    session._realtime_spans_tap.machine = SpanMachine(strict=True)  # type: ignore[attr-defined]


async def test_internal_error_stops_tracing_for_that_session_only(
    recorder: SpanRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    plain_ghost = await _run(_ghost_turn_steps(), trace_it=None)
    plain = await _run(handoff_steps(), trace_it=None)

    failing, healthy = await asyncio.gather(
        _run(
            _ghost_turn_steps(),
            trace_it=lambda s: traced(s, workflow_name="failing"),
            prepare=_make_strict,
        ),
        _run(handoff_steps(), trace_it=lambda s: traced(s, workflow_name="healthy")),
    )
    assert failing == plain_ghost
    assert healthy == plain

    assert tree_problems(recorder) == [] and recorder.open_spans == []
    traces = {t.name: t.trace_id for t in recorder.traces}
    assert sorted(traces) == ["failing", "healthy"]
    failed = [s for s in recorder.spans if s.trace_id == traces["failing"]]
    fine = [s for s in recorder.spans if s.trace_id == traces["healthy"]]
    # the failing session: exactly the spans open at the failure, each closed with an error
    assert _kinds(failed) == ["agent", "function", "generation", "task", "turn"]
    assert all(s.error is not None and _says(s.error["message"], "internal error") for s in failed)
    # the other session is complete and clean
    assert _kinds(fine) == FULL_TREE
    assert all(s.error is None for s in fine)
    (error,) = _ours(caplog, logging.WARNING)
    assert error.levelno == logging.ERROR
    assert _says(error, "internal error")
    assert error.exc_info is not None and type(error.exc_info[1]).__name__ == "UnexpectedEvent"
    caplog.clear()


# -- 6. tracing stops while a tool runs with its function span current -------------------------

_busy: list[asyncio.Event] = []  # set by the tool once it is inside its own span


@function_tool(name_override="slow_lookup")
async def slow_lookup(query: str) -> str:
    """Works for a few loop turns inside a span of its own (user code in a tool)."""
    with custom_span("the tool's own work"):
        _busy[-1].set()
        for _ in range(20):
            await asyncio.sleep(0)
    return f"found {query}"


async def _stop_while_tool_runs(mode: str, *, trace_it: Trace_it) -> Any:
    """The tool is busy when the second message's answer makes tracing stop: a ghost
    ``turn_ended`` for a strict machine (internal error), or tracing disabled."""
    _busy.append(asyncio.Event())
    second = (
        [RealtimeModelTurnEndedEvent(response_id="ghost")] if mode == "internal" else turn("r2")
    )
    steps = [
        RealtimeStep(
            RealtimeModelSendUserInput, turn("r1", call("slow_lookup", "c1", '{"query": "q"}'))
        ),
        RealtimeStep(RealtimeModelSendUserInput, second),
        RealtimeStep(RealtimeModelSendToolOutput, [*turn("r3"), END]),
    ]
    model = ScriptedRealtimeModel(steps)
    session = await RealtimeRunner(
        RealtimeAgent(name="Clerk", tools=[slow_lookup]), model=model
    ).run()
    if trace_it is not None:
        session = trace_it(session)
        if mode == "internal":
            _make_strict(session)
    said = False

    async def during(active: RealtimeSession, event: RealtimeSessionEvent) -> None:
        nonlocal said
        if event.type == "agent_end" and not said:
            said = True
            await _busy[-1].wait()
            if mode == "disabled":
                set_tracing_disabled(True)
            await active.send_message("second")

    try:
        seen = await converse(session, during=during)
    finally:
        set_tracing_disabled(False)
    model.assert_complete()
    return event_signature(seen), _sends(model)


@pytest.mark.parametrize("mode", ["internal", "disabled"])
async def test_tracing_stopping_while_a_tool_runs_keeps_its_spans_nested(
    mode: str, recorder: SpanRecorder, caplog: pytest.LogCaptureFixture
) -> None:
    plain = await _stop_while_tool_runs(mode, trace_it=None)
    recorder.clear()
    seen = await _stop_while_tool_runs(mode, trace_it=traced)
    assert seen == plain
    assert len(_ours(caplog, logging.WARNING)) == 1
    caplog.clear()
    assert recorder.open_spans == []
    assert tree_problems(recorder) == []


# -- 7. the model reuses a call id while that call's tool still runs ---------------------------


@function_tool(name_override="other_lookup")
async def other_lookup(query: str) -> str:
    """Any other tool: the name the model wrongly reuses the call id for."""
    return f"other {query}"


async def _reused_call_id(*, trace_it: Trace_it) -> Any:
    """``c1`` calls ``slow_lookup``; while it runs, the model calls ``other_lookup`` with the
    same call id. The SDK refuses the second invocation (``ModelBehaviorError``), which
    ends the session; the first call's tool is still running when that happens."""
    _busy.append(asyncio.Event())
    steps = [
        RealtimeStep(
            RealtimeModelSendUserInput, turn("r1", call("slow_lookup", "c1", '{"query": "q"}'))
        ),
        RealtimeStep(
            RealtimeModelSendUserInput, turn("r2", call("other_lookup", "c1", '{"query": "q"}'))
        ),
    ]
    model = ScriptedRealtimeModel(steps)
    agent = RealtimeAgent(name="Clerk", tools=[slow_lookup, other_lookup])
    session = await RealtimeRunner(agent, model=model).run()
    if trace_it is not None:
        session = trace_it(session)
    seen: list[RealtimeSessionEvent] = []
    with pytest.raises(Exception) as caught:
        async with session:
            await session.send_message("first")
            async for event in session:
                seen.append(event)
                if event.type == "agent_end":
                    await _busy[-1].wait()
                    await session.send_message("second")
    model.assert_complete()
    return event_signature(seen), _sends(model), type(caught.value).__name__, str(caught.value)


async def test_reused_call_id_does_not_end_the_running_calls_span(recorder: SpanRecorder) -> None:
    plain = await _reused_call_id(trace_it=None)
    recorder.clear()
    seen = await _reused_call_id(trace_it=traced)
    assert seen == plain
    assert plain[2] == "ModelBehaviorError"
    assert recorder.open_spans == []
    assert tree_problems(recorder) == []
    # the first call did not fail: the second invocation did
    (function,) = [s for s in recorder.started if s.span_data.type == "function"]
    assert function.error is None or "ModelBehaviorError" not in function.error["message"]


# -- 8. the caller's task is cancelled while the session closes --------------------------------


@function_tool(name_override="tidy_lookup")
async def tidy_lookup(query: str) -> str:
    """Waits to be cancelled, then tidies up for a few loop turns (say, closes a client)."""
    try:
        await asyncio.Event().wait()
    except asyncio.CancelledError:
        for _ in range(5):
            await asyncio.sleep(0)
        raise
    return query


async def _cancelled_while_closing(*, trace_it: Trace_it) -> tuple[Any, list[Span[Any]], bool]:
    """The caller's task is cancelled while ``__aexit__`` awaits ``close()``: the SDK's
    cleanup, shielded, goes on without it (it first waits for a running tool to stop), and
    the caller leaves its span and trace before that cleanup is over."""
    steps = [
        RealtimeStep(
            RealtimeModelSendUserInput,
            [*turn("r1", call("tidy_lookup", "c1", '{"query": "q"}')), END],
        )
    ]
    model = ScriptedRealtimeModel(steps)
    agent = RealtimeAgent(name="Clerk", tools=[tidy_lookup])
    session = await RealtimeRunner(agent, model=model).run()
    if trace_it is not None:
        session = trace_it(session)
    recorder = SpanRecorder()
    set_trace_processors([recorder])
    seen: list[RealtimeSessionEvent] = []
    closing = asyncio.Event()

    async def caller() -> None:
        async with session:
            await session.send_message("hello")
            async for event in session:
                seen.append(event)
            closing.set()  # __aexit__ starts closing next

    try:
        with trace("Caller's trace"), custom_span("caller's step"):
            task = asyncio.create_task(caller())
            await closing.wait()  # the caller's task now awaits close() in __aexit__
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            closed_in_time = session._closed
        await session.close()  # the shielded cleanup ends here, after the caller's span
    finally:
        set_trace_processors([])
    model.assert_complete()
    return (event_signature(seen), _sends(model)), recorder.started, closed_in_time


async def test_caller_cancelled_while_closing_is_the_caller_ending_first(
    caplog: pytest.LogCaptureFixture,
) -> None:
    plain, plain_spans, plain_closed = await _cancelled_while_closing(trace_it=None)
    seen, spans, closed_in_time = await _cancelled_while_closing(trace_it=traced)
    assert seen == plain
    assert closed_in_time is plain_closed is False  # the scenario really happened
    assert [s.span_data.type for s in plain_spans] == ["custom"]
    session_spans = [s for s in spans if s.span_data.type != "custom"]
    assert all(span.ended_at is not None for span in session_spans)
    (session_span,) = [s for s in session_spans if s.span_data.type == "task"]
    assert _says(session_span.error["message"], "span", "(ended|finished)")
    (warning,) = _ours(caplog, logging.WARNING)
    assert warning.levelno == logging.WARNING and _says(warning, "span", "(ended|finished)")
    caplog.clear()


async def _leave_by(escape: BaseException, *, close_error: Exception | None = None) -> Any:
    """Enter a session and leave its block by raising ``escape``; what got out."""
    model = ScriptedRealtimeModel(close_error=close_error)
    agent = RealtimeAgent(name="Greeter", instructions="greet")
    session = traced(await RealtimeRunner(agent, model=model).run())
    try:
        async with session:
            raise escape
    except BaseException as error:  # what left the block, whatever it is
        return error
    raise AssertionError("nothing left the block")


async def test_a_block_cancelled_ends_the_session_without_error(recorder: SpanRecorder) -> None:
    cancelled = asyncio.CancelledError()
    assert await _leave_by(cancelled) is cancelled
    (session_span,) = of_kind(recorder, "task")
    assert session_span.error is None and session_span.ended_at is not None
    assert recorder.open_spans == []


async def test_a_failing_close_is_the_sessions_error_over_what_the_block_raised(
    recorder: SpanRecorder,
) -> None:
    got_out = await _leave_by(ValueError("the app's"), close_error=ConnectionError("the close's"))
    assert isinstance(got_out, ConnectionError)  # as without tracing: the close's error wins
    (session_span,) = of_kind(recorder, "task")
    assert session_span.error is not None
    assert session_span.error["message"] == "ConnectionError: the close's"
    assert recorder.open_spans == []
