"""Bad input: a clear ``TypeError``/``ValueError`` at call time, and nothing lost.

The public functions of ``realtime_spans.adapters`` reject wrong types and unknown options
when called, naming the problem, and leave the session (or the process-wide
instrumentation) exactly as it was: a session refused by ``traced()`` still works, untraced.
The core span machine fed garbage (things that are not events, events in states where they
do not fit) raises ``UnexpectedEvent`` in strict mode and answers only with ``Diagnostic``
commands in lenient mode; its event constructors refuse fields of the wrong type.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from agents.realtime import RealtimeAgent, RealtimeRunner
from agents.realtime.model_inputs import RealtimeModelSendUserInput
from agents.realtime.session import RealtimeSession
from agents.realtime.testing import RealtimeStep, ScriptedRealtimeModel
from hypothesis import example, given
from hypothesis import strategies as st

from realtime_spans.adapters import (
    SpanRecorder,
    instrument,
    is_instrumented,
    traced,
    uninstrument,
)
from realtime_spans.core import (
    EVENT_TYPES,
    AgentActivated,
    AgentSaid,
    AudioInterrupted,
    AudioStarted,
    CallerAudioCommitted,
    CallerSpeechStarted,
    CallerSpeechStopped,
    CallerTranscribed,
    CallerTranscriptionFailed,
    Command,
    Diagnostic,
    EndSpan,
    EntryFailed,
    ErrorInfo,
    ErrorReported,
    GuardrailTripped,
    HandoffRoute,
    MessageSent,
    ModelConfigured,
    OpenTrace,
    ServerSessionIdentified,
    SessionClosed,
    SessionStarted,
    SpanMachine,
    StartSpan,
    TextStarted,
    TimerFired,
    ToolApprovalRequested,
    ToolApproved,
    ToolCalled,
    ToolFailed,
    ToolGuardrailRejected,
    ToolOutputSent,
    ToolRejected,
    TransportFailed,
    TurnEnded,
    TurnStarted,
    UnexpectedEvent,
    Usage,
    UsageReported,
)

from .support import END, converse, event_signature, make_agents, turn, usage

# -- the adapters' public functions ------------------------------------------------------------

#: (options, exception, text the message must contain)
BAD_OPTIONS: list[tuple[dict[str, Any], type[Exception], str]] = [
    ({"workflow_nam": "Support"}, TypeError, "'workflow_nam'"),
    ({"sensitive": True}, TypeError, "'sensitive'"),
    ({"alpha": 1, "beta": 2}, TypeError, "'alpha', 'beta'"),
    ({"workflow_name": 5}, TypeError, "workflow_name"),
    ({"workflow_name": b"Support"}, TypeError, "workflow_name"),
    ({"workflow_name": ["Support"]}, TypeError, "workflow_name"),
    ({"workflow_name": ""}, ValueError, "workflow_name"),
    ({"workflow_name": "   "}, ValueError, "workflow_name"),
    ({"include_sensitive_data": "yes"}, TypeError, "include_sensitive_data"),
    ({"include_sensitive_data": 1}, TypeError, "include_sensitive_data"),
    ({"correlate_server_trace": "true"}, TypeError, "correlate_server_trace"),
    ({"correlate_server_trace": 0}, TypeError, "correlate_server_trace"),
    ({"correlate_server_trace": None}, TypeError, "correlate_server_trace"),
]
_ids = [", ".join(f"{k}={v!r}" for k, v in options.items()) for options, _, _ in BAD_OPTIONS]


def _steps() -> list[RealtimeStep]:
    return [RealtimeStep(expect=RealtimeModelSendUserInput, emit=[*turn("r1", usage(3, 4)), END])]


async def _fresh_session() -> tuple[RealtimeSession, ScriptedRealtimeModel]:
    greeter, _ = make_agents()
    model = ScriptedRealtimeModel(_steps())
    return await RealtimeRunner(greeter, model=model).run(), model


async def _reference_events() -> list[tuple[str, ...]]:
    session, model = await _fresh_session()
    seen = await converse(session)
    model.assert_complete()
    return event_signature(seen)


def _snapshot(session: RealtimeSession) -> tuple[type[Any], dict[str, Any]]:
    return type(session), dict(vars(session))


async def _still_works_untraced(
    session: RealtimeSession, model: ScriptedRealtimeModel, recorder: SpanRecorder
) -> None:
    """The session runs its whole conversation exactly as a session never touched."""
    expected = await _reference_events()
    seen = await converse(session)
    model.assert_complete()
    assert event_signature(seen) == expected
    assert recorder.started == [] and recorder.traces == []


@pytest.mark.parametrize(("options", "error", "names"), BAD_OPTIONS, ids=_ids)
async def test_traced_rejects_bad_options_and_loses_nothing(
    options: dict[str, Any], error: type[Exception], names: str, recorder: SpanRecorder
) -> None:
    session, model = await _fresh_session()
    before = _snapshot(session)
    with pytest.raises(error, match=re.escape(names)):
        traced(session, **options)
    after = _snapshot(session)
    assert after[0] is before[0] is RealtimeSession
    assert after[1].keys() == before[1].keys()
    assert all(after[1][key] is value for key, value in before[1].items())
    await _still_works_untraced(session, model, recorder)


@pytest.mark.parametrize(("options", "error", "names"), BAD_OPTIONS, ids=_ids)
async def test_instrument_rejects_bad_options_and_changes_nothing(
    options: dict[str, Any], error: type[Exception], names: str, recorder: SpanRecorder
) -> None:
    sdk_init = RealtimeSession.__init__
    with pytest.raises(error, match=re.escape(names)):
        instrument(**options)
    assert not is_instrumented()
    assert RealtimeSession.__init__ is sdk_init
    session, model = await _fresh_session()
    await _still_works_untraced(session, model, recorder)


async def test_bad_instrument_call_keeps_the_instrumentation_in_effect(
    recorder: SpanRecorder,
) -> None:
    instrument(workflow_name="Kept")
    with pytest.raises(TypeError, match="workflow_name"):
        instrument(workflow_name=42)
    with pytest.raises(TypeError, match="'flavour'"):
        instrument(flavour="vanilla")
    assert is_instrumented()
    session, model = await _fresh_session()
    await converse(session)
    model.assert_complete()
    assert [t.name for t in recorder.traces] == ["Kept"]


@pytest.mark.parametrize(
    "make",
    [
        lambda: None,
        lambda: "a session",
        lambda: 42,
        lambda: RealtimeAgent(name="agent, not session"),
        ScriptedRealtimeModel,
        lambda: RealtimeRunner(RealtimeAgent(name="runner, not session")),
        lambda: RealtimeSession,  # the class, not an instance
    ],
    ids=["None", "str", "int", "agent", "model", "runner", "class"],
)
async def test_traced_rejects_what_is_not_a_session(make: Callable[[], Any]) -> None:
    thing = make()
    with pytest.raises(TypeError, match=rf"RealtimeSession.*{re.escape(type(thing).__name__)}"):
        traced(thing)


async def test_traced_names_a_forgotten_await() -> None:
    runner = RealtimeRunner(RealtimeAgent(name="Greeter"), model=ScriptedRealtimeModel())
    pending = runner.run()  # the coroutine, not the session
    try:
        with pytest.raises(TypeError, match=r"RealtimeSession.*coroutine"):
            traced(pending)  # type: ignore[type-var]
    finally:
        pending.close()


async def test_wrong_call_shapes_are_type_errors(recorder: SpanRecorder) -> None:
    session, model = await _fresh_session()
    with pytest.raises(TypeError):
        traced(session, "Support line")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        traced()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        instrument("Support line")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        uninstrument(True)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        is_instrumented("now")  # type: ignore[call-arg]
    assert not is_instrumented()
    assert type(session) is RealtimeSession
    await _still_works_untraced(session, model, recorder)


async def test_traced_on_an_entered_session_is_a_value_error(recorder: SpanRecorder) -> None:
    expected = await _reference_events()
    session, model = await _fresh_session()
    seen = []
    async with session:
        with pytest.raises(ValueError, match="before the session is entered"):
            traced(session)
        assert type(session) is RealtimeSession
        await session.send_message("hello")
        seen = [event async for event in session]
    model.assert_complete()
    assert event_signature(seen) == expected
    assert recorder.started == [] and recorder.traces == []
    with pytest.raises(ValueError, match="before the session is entered"):
        traced(session)  # closed now: still too late


def test_span_recorder_takes_no_arguments() -> None:
    with pytest.raises(TypeError):
        SpanRecorder("spans.json")  # type: ignore[call-arg]


def test_span_recorder_render_rejects_a_non_string_trace_id() -> None:
    with pytest.raises(TypeError, match="trace_id"):
        SpanRecorder().render(trace_id=123)  # type: ignore[arg-type]


def test_span_recorder_end_count_rejects_a_non_span() -> None:
    with pytest.raises(TypeError, match="span"):
        SpanRecorder().end_count("span_123")  # type: ignore[arg-type]


# -- the core: constructors refuse wrong field types --------------------------------------------

_ERROR = ErrorInfo("boom")

#: A valid instance's arguments for every event type (positional, keyword).
VALID: dict[type[Any], dict[str, Any]] = {
    SessionStarted: {
        "workflow_name": "s",
        "group_id": "g",
        "metadata": {},
        "open_trace": True,
        "tracing_enabled": True,
    },
    AgentActivated: {
        "agent": 1,
        "name": "a",
        "tools": ("t",),
        "handoffs": (HandoffRoute("transfer_to_b", "b"),),
        "call_id": "c",
    },
    TurnStarted: {"response_id": "r", "at": 1.0},
    UsageReported: {"usage": Usage(total_tokens=1)},
    TurnEnded: {"response_id": "r", "at": 1.0},
    AudioInterrupted: {"item_id": "i", "at": 1.0, "generated_ms": 1.0, "played_ms": 1.0},
    ToolCalled: {"call_id": "c", "name": "t", "arguments": "{}"},
    ToolApprovalRequested: {"call_id": "c"},
    ToolApproved: {"call_id": "c"},
    ToolRejected: {"call_id": "c"},
    ToolGuardrailRejected: {"call_id": "c", "stage": "input"},
    ToolOutputSent: {"call_id": "c", "output": "o"},
    ToolFailed: {"call_id": "c", "error": _ERROR},
    GuardrailTripped: {"agent": 1, "guardrails": ("g",)},
    ErrorReported: {"error": _ERROR, "call_id": "c"},
    TransportFailed: {"error": _ERROR},
    ServerSessionIdentified: {"session_id": "s"},
    EntryFailed: {"error": _ERROR},
    SessionClosed: {"error": _ERROR, "by_call": "c"},
    ModelConfigured: {
        "model": "m",
        "config": {"voice": "v"},
        "transcription_model": "t",
        "input_format": "pcm16",
    },
    CallerSpeechStarted: {"item_id": "i", "at": 1.0},
    CallerSpeechStopped: {"item_id": "i", "at": 1.0},
    CallerAudioCommitted: {"item_id": "i", "at": 1.0},
    CallerTranscribed: {"item_id": "i", "transcript": "t", "at": 1.0},
    CallerTranscriptionFailed: {"item_id": "i", "error": _ERROR, "at": 1.0},
    MessageSent: {"text": "t", "at": 1.0, "call_id": "c"},
    AudioStarted: {"response_id": "r", "item_id": "i", "at": 1.0},
    TextStarted: {"response_id": "r", "at": 1.0},
    AgentSaid: {"response_id": "r", "text": "t", "audio_ms": 1.0},
    TimerFired: {"token": 1, "at": 1.0},
}


class _Opaque:
    """A value of no type any field accepts."""


#: Wrong values for each kind of field: (value, why it is wrong).
_WRONG = [_Opaque(), 1.5, b"bytes", ["list"]]


def test_every_event_type_is_covered() -> None:
    assert set(VALID) == set(EVENT_TYPES)
    for kind, arguments in VALID.items():
        kind(**arguments)  # each valid example really is valid


def _numbers(field: attrs.Attribute[Any]) -> bool:
    """A field of moments or durations: a float is right there."""
    return "float" in str(field.type)


_field_cases = [
    pytest.param(kind, field.name, wrong, id=f"{type(wrong).__name__}-{kind.__name__}.{field.name}")
    for kind in VALID
    for field in attrs.fields(kind)
    for wrong in _WRONG
    if not (isinstance(wrong, float) and _numbers(field))
]


@pytest.mark.parametrize(("kind", "field", "wrong"), _field_cases)
def test_event_constructors_refuse_wrong_field_types(
    kind: type[Any], field: str, wrong: Any
) -> None:
    arguments = {**VALID[kind], field: wrong}
    with pytest.raises(TypeError, match=field):
        kind(**arguments)


@pytest.mark.parametrize(
    ("build", "error"),
    [
        (lambda: Usage(input_tokens=-1), TypeError),
        (lambda: Usage(total_tokens=True), TypeError),
        (lambda: Usage(output_tokens="3"), TypeError),
        (lambda: AgentActivated(1, "a", tools=["list, not tuple"]), TypeError),
        (lambda: AgentActivated(1, "a", tools=(1,)), TypeError),
        (lambda: AgentActivated(1, "a", handoffs=(("tool", "agent"),)), TypeError),
        (lambda: GuardrailTripped(1, ["g"]), TypeError),
        (lambda: ToolGuardrailRejected("c", "midway"), ValueError),
        (lambda: ErrorInfo(None), TypeError),
        (lambda: ErrorInfo("m", ["not", "a", "mapping"]), TypeError),
        (lambda: HandoffRoute("t", None), TypeError),
        (lambda: SessionStarted("s", open_trace="yes"), TypeError),
        (lambda: SessionStarted("s", metadata=[("k", "v")]), TypeError),
        (lambda: SessionStarted("s", record_audio="yes"), TypeError),
        (lambda: TurnStarted("r", at=float("nan")), ValueError),
        (lambda: TurnEnded("r", at=float("inf")), ValueError),
        (lambda: CallerSpeechStopped("i", at=True), TypeError),
        (lambda: CallerTranscribed("i", "t", at=None), TypeError),
        (lambda: AudioInterrupted("i", generated_ms=-1.0), ValueError),
        (lambda: AudioInterrupted("i", played_ms=-1.0), ValueError),
        (lambda: AudioInterrupted("i", played_ms=float("nan")), ValueError),
        (lambda: AgentSaid("r", "t", audio_ms=float("nan")), ValueError),
        (lambda: ModelConfigured("m", config=[("voice", "v")]), TypeError),
        (lambda: TimerFired(1.5, at=1.0), TypeError),
    ],
)
def test_constructors_refuse_bad_values(build: Callable[[], Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        build()


# -- the core fed garbage ------------------------------------------------------------------------

_GARBAGE: list[Any] = [
    None,
    "TurnStarted",
    42,
    _Opaque(),
    {"type": "turn_started"},
    TurnStarted,  # the class, not an event
    StartSpan(1, None, None),  # type: ignore[arg-type]  # a command, not an event
    Diagnostic("idle", "X", "y"),
]


def _prefix_to(state: str) -> list[Any]:
    """Events that bring a fresh machine to ``state``."""
    route = HandoffRoute("transfer_to_b", "B")
    prefixes: dict[str, list[Any]] = {
        "not started": [],
        "idle": [SessionStarted("s")],
        "agent_active": [SessionStarted("s"), AgentActivated(1, "A", handoffs=(route,))],
        "handing_off": [
            SessionStarted("s"),
            AgentActivated(1, "A", handoffs=(route,)),
            ToolCalled("h1", "transfer_to_b"),
        ],
        "closed": [SessionStarted("s"), SessionClosed()],
    }
    return prefixes[state]


_STATES = ["not started", "idle", "agent_active", "handing_off", "closed"]


def _fed(events: list[Any], *, strict: bool) -> tuple[SpanMachine, list[Command]]:
    machine = SpanMachine(strict=strict)
    commands: list[Command] = []
    for event in events:
        commands.extend(machine.feed(event))
    return machine, commands


@pytest.mark.parametrize("state", _STATES)
@pytest.mark.parametrize("garbage", _GARBAGE, ids=lambda g: type(g).__name__)
def test_non_events_are_refused_in_every_state(state: str, garbage: Any) -> None:
    strict, _ = _fed(_prefix_to(state), strict=True)
    before = strict.state
    with pytest.raises(UnexpectedEvent) as caught:
        strict.feed(garbage)
    assert caught.value.state == before == strict.state
    assert caught.value.event is garbage
    assert type(garbage).__name__ in str(caught.value)

    lenient, _ = _fed(_prefix_to(state), strict=False)
    (diagnostic,) = lenient.feed(garbage)
    assert isinstance(diagnostic, Diagnostic)
    assert (diagnostic.state, diagnostic.event) == (before, type(garbage).__name__)
    assert lenient.state == before


@pytest.mark.parametrize("garbage", _GARBAGE, ids=lambda g: type(g).__name__)
def test_garbage_leaves_the_lenient_machine_working(garbage: Any) -> None:
    """Garbage between real events changes none of the commands the real events give."""
    route = HandoffRoute("transfer_to_b", "B")
    session = [
        SessionStarted("s"),
        AgentActivated(1, "A", tools=("lookup",), handoffs=(route,)),
        TurnStarted("r1"),
        ToolCalled("c1", "lookup", "{}"),
        UsageReported(Usage(total_tokens=3)),
        TurnEnded("r1"),
        ToolOutputSent("c1", "ok"),
        ToolCalled("h1", "transfer_to_b"),
        AgentActivated(2, "B", call_id="h1"),
        TurnStarted(None),
        TurnEnded(None),
        SessionClosed(),
    ]
    _, clean = _fed(session, strict=False)
    interleaved = [item for event in session for item in (garbage, event)]
    _, noisy = _fed(interleaved, strict=False)
    assert [c for c in noisy if not isinstance(c, Diagnostic)] == clean
    assert sum(isinstance(c, Diagnostic) for c in noisy) == len(session)


@pytest.mark.parametrize("garbage", [None, "TurnStarted", _Opaque()], ids=type)
def test_muted_strict_machine_still_refuses_non_events(garbage: Any) -> None:
    machine = SpanMachine(strict=True)
    assert machine.feed(SessionStarted("s", tracing_enabled=False)) == ()
    with pytest.raises(UnexpectedEvent):
        machine.feed(garbage)


def test_strict_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="strict"):
        SpanMachine(strict="yes")  # type: ignore[arg-type]


# events in the wrong state: strict and lenient machines fed the same stream in lockstep

_call_ids = st.sampled_from(["c1", "c2", "h1"])
_keys = st.integers(1, 3)
_names = st.sampled_from(["A", "B"])
_rids = st.none() | st.sampled_from(["r1", "r2"])
_errors = st.builds(ErrorInfo, st.sampled_from(["boom", "bang"]))
_routes = st.just((HandoffRoute("transfer_to_b", "B"),)) | st.just(())

any_event = st.one_of(
    st.builds(SessionStarted, _names, open_trace=st.booleans()),
    st.builds(
        AgentActivated,
        _keys,
        _names,
        tools=st.just(("lookup",)),
        handoffs=_routes,
        call_id=st.none() | _call_ids,
    ),
    st.builds(TurnStarted, _rids),
    st.builds(UsageReported, st.builds(Usage, total_tokens=st.integers(0, 9))),
    st.builds(TurnEnded, _rids),
    st.just(AudioInterrupted()),
    st.builds(ToolCalled, _call_ids, st.sampled_from(["lookup", "transfer_to_b", "nope"])),
    st.builds(ToolApprovalRequested, _call_ids),
    st.builds(ToolApproved, _call_ids),
    st.builds(ToolRejected, _call_ids),
    st.builds(ToolGuardrailRejected, _call_ids, st.sampled_from(["input", "output"])),
    st.builds(ToolOutputSent, _call_ids, st.none() | st.just("out")),
    st.builds(ToolFailed, _call_ids, _errors),
    st.builds(GuardrailTripped, st.none() | _keys, st.just(("no_refunds",))),
    st.builds(ErrorReported, _errors, call_id=st.none() | _call_ids),
    st.builds(TransportFailed, _errors),
    st.builds(ServerSessionIdentified, st.just("sess_1")),
    st.builds(EntryFailed, _errors),
    st.builds(SessionClosed, st.none() | _errors),
    st.sampled_from(_GARBAGE),
)


def _well_formed(commands: list[Command], *, closed: bool) -> list[str]:
    """Problems in a command stream: spans used while not open, ended twice, before their
    children, or left open once the session closed."""
    problems: list[str] = []
    open_spans: dict[int, int | None] = {}
    ever: set[int] = set()
    trace_open = False
    for command in commands:
        if isinstance(command, OpenTrace):
            if trace_open:
                problems.append("trace opened twice")
            trace_open = True
        elif isinstance(command, StartSpan):
            if command.span_id in ever:
                problems.append(f"span {command.span_id} started twice")
            if command.parent_id is not None and command.parent_id not in open_spans:
                problems.append(f"span {command.span_id} under closed {command.parent_id}")
            open_spans[command.span_id] = command.parent_id
            ever.add(command.span_id)
        elif isinstance(command, EndSpan):
            if command.span_id not in open_spans:
                problems.append(f"span {command.span_id} ended while not open")
                continue
            children = [s for s, parent in open_spans.items() if parent == command.span_id]
            if children:
                problems.append(f"span {command.span_id} ended before its children {children}")
            del open_spans[command.span_id]
        elif type(command).__name__ == "CloseTrace":
            if open_spans:
                problems.append(f"trace closed with spans open: {sorted(open_spans)}")
            trace_open = False
        elif hasattr(command, "span_id") and command.span_id not in open_spans:
            problems.append(f"{type(command).__name__} on span {command.span_id} not open")
    if closed and (open_spans or trace_open):
        problems.append(f"left open at close: {sorted(open_spans)}, trace {trace_open}")
    return problems


@example([SessionStarted("s"), TurnEnded(None)])  # a turn_ended with no turn open
@example([TurnStarted("r1"), SessionStarted("s"), ToolOutputSent("c9")])
@example([SessionStarted("s"), SessionClosed(), AgentActivated(1, "A")])
@given(st.lists(any_event, max_size=30))
def test_strict_raises_exactly_where_lenient_answers_with_a_diagnostic(events: list[Any]) -> None:
    strict = SpanMachine(strict=True)
    lenient = SpanMachine()
    commands: list[Command] = []
    for event in events:
        state = strict.state
        assert lenient.state == state
        answer = lenient.feed(event)
        try:
            expected = strict.feed(event)
        except UnexpectedEvent as refused:
            assert (refused.state, refused.event_name) == (state, type(event).__name__)
            assert answer == (Diagnostic(state, type(event).__name__, refused.reason),)
            assert strict.state == state  # refusing changed nothing
            continue
        assert answer == expected
        assert not any(isinstance(c, Diagnostic) for c in answer)
        commands.extend(answer)
    commands.extend(lenient.feed(SessionClosed()))
    assert _well_formed(commands, closed=lenient.state == "closed") == []


def test_well_formed_check_catches_problems() -> None:
    """The checker above is not vacuous."""
    bad = [StartSpan(1, None, None), StartSpan(2, 1, None), EndSpan(1)]  # type: ignore[arg-type]
    assert _well_formed(bad, closed=True) != []


@dataclasses.dataclass
class _NotAnEvent:
    """Looks like an event (same field names), is not one."""

    response_id: str | None = None


def test_look_alike_events_are_refused() -> None:
    machine, _ = _fed(_prefix_to("agent_active"), strict=True)
    with pytest.raises(UnexpectedEvent, match="_NotAnEvent"):
        machine.feed(_NotAnEvent("r1"))
