"""Properties of the pure span machine over arbitrary event sequences, valid or not.

A hypothesis state machine feeds the same events to a lenient and a strict
:class:`SpanMachine`. Events are drawn so that they often fit (ids of open calls and turns,
tools and handoff routes of the active agent, the call id of an in-flight handoff) and
often do not (unknown or finished ids, events before the start or after the close,
duplicates, objects that are not events at all). The lenient machine's commands are
applied to :class:`SpanTree`, a small model sink that checks the span-tree rules command
by command; the state of the session is checked after every event and at the end.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Sequence
from typing import Any

import attrs
import pytest
from hypothesis import event as tally
from hypothesis import given, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from realtime_spans.core import (
    AGENT_ACTIVE,
    CLOSED,
    EVENT_TYPES,
    HANDING_OFF,
    IDLE,
    SESSION_SPAN_ID,
    TRACE_KEY_SERVER_SESSION,
    AgentActivated,
    AgentSaid,
    AgentSpec,
    AnnotateSpan,
    AnnotateTrace,
    AttachAudio,
    AudioInterrupted,
    AudioStarted,
    CallerAudioCommitted,
    CallerSpeechStarted,
    CallerSpeechStopped,
    CallerTranscribed,
    CallerTranscriptionFailed,
    CloseTrace,
    Command,
    Diagnostic,
    EndSpan,
    EntryFailed,
    ErrorInfo,
    ErrorReported,
    FlagTurn,
    FunctionSpec,
    GenerationSpec,
    GuardrailSpec,
    GuardrailTripped,
    HandoffRoute,
    HandoffSpec,
    MessageSent,
    ModelConfigured,
    OpenTrace,
    ServerSessionIdentified,
    SessionClosed,
    SessionSpec,
    SessionStarted,
    SetError,
    SetHandoffTarget,
    SetMeasures,
    SetMessages,
    SetOutput,
    SetTimer,
    SetUsage,
    SpanMachine,
    SpeechSpec,
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
    TranscriptionSpec,
    TransportFailed,
    TurnEnded,
    TurnSpec,
    TurnStarted,
    UnexpectedEvent,
    Usage,
    UsageReported,
    replay,
)

# -- value pools: small, so that ids and names collide often --------------------------------

AGENT_KEYS = (1, 2, 3)
AGENT_NAMES = ("Greeter", "Billing", "Sales")
TOOL_NAMES = ("lookup", "refund", "weather")
HANDOFF_TOOLS = ("to_billing", "to_sales", "to_greeter")
CALL_IDS = ("call_1", "call_2", "call_3", "call_4", "call_5")
RESPONSE_IDS = ("resp_1", "resp_2", "resp_3")
GUARDRAILS = ("no_refunds", "polite")
ITEM_IDS = ("item_1", "item_2", "item_3")
MODELS = ("gpt-realtime", "gpt-4o-realtime-preview")
TRANSCRIBERS = ("gpt-4o-transcribe", "whisper-1")

WITH_AGENT = frozenset({AGENT_ACTIVE, HANDING_OFF})

texts = st.sampled_from(("", "boom", "sunny", '{"city": "Paris"}'))
error_infos = st.builds(
    ErrorInfo, texts, st.one_of(st.none(), st.just({"status": "x"}), st.just({}))
)
counts = st.integers(min_value=0, max_value=50)
usages = st.builds(
    Usage,
    requests=counts,
    input_tokens=counts,
    output_tokens=counts,
    total_tokens=counts,
    input_audio_tokens=st.none() | counts,
    output_text_tokens=st.none() | counts,
)
routes = st.builds(HandoffRoute, st.sampled_from(HANDOFF_TOOLS), st.sampled_from(AGENT_NAMES))
session_starts = st.builds(
    SessionStarted,
    st.sampled_from(("Support line", "")),
    group_id=st.none() | st.just("group_1"),
    metadata=st.none() | st.just({"team": "voice"}),
    open_trace=st.booleans(),
    tracing_enabled=st.booleans(),
    record_audio=st.booleans(),
)
#: Any moment: for events drawn with no clock (the state machine below keeps one).
moments = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
durations = st.floats(min_value=0, max_value=1e5, allow_nan=False)
item_ids = st.sampled_from(ITEM_IDS)
model_configurations = st.builds(
    ModelConfigured,
    st.none() | st.sampled_from(MODELS),
    st.sampled_from(({}, {"voice": "marin"}, {"voice": "marin", "modalities": ["text"]})),
    transcription_model=st.none() | st.sampled_from(TRANSCRIBERS),
    input_format=st.none() | st.just("pcm16"),
)


def _one_in(n: int) -> st.SearchStrategy[bool]:
    return st.integers(min_value=1, max_value=n).map(lambda k: k == n)


optional_call_ids = st.none() | st.sampled_from(CALL_IDS)
optional_response_ids = st.none() | st.sampled_from(RESPONSE_IDS)


def agent_activations(call_ids: st.SearchStrategy[str | None]) -> st.SearchStrategy[Any]:
    return st.builds(
        AgentActivated,
        st.sampled_from(AGENT_KEYS),
        st.sampled_from(AGENT_NAMES),
        tools=st.lists(st.sampled_from(TOOL_NAMES), max_size=3).map(tuple),
        handoffs=st.lists(routes, max_size=2).map(tuple),
        call_id=call_ids,
    )


class _Hostile:
    """Not an event, and refuses to be compared, hashed or tested for truth."""

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("compared")

    def __hash__(self) -> int:
        raise RuntimeError("hashed")

    def __bool__(self) -> bool:
        raise RuntimeError("truth-tested")

    def __repr__(self) -> str:
        return "_Hostile()"


class _Closing(SessionClosed):
    """A subclass of an event class is not one of the machine's event types."""


GARBAGE: tuple[object, ...] = (
    None,
    0,
    True,
    "SessionClosed",
    b"turn_started",
    {"type": "turn_ended"},
    [TurnEnded()],
    (SessionClosed(),),
    SessionStarted,  # the class, not an instance
    Diagnostic("idle", "TurnEnded", "no turn is open"),  # a command, not an event
    EndSpan(1),
    ErrorInfo("not an event"),
    Usage(total_tokens=1),
    HandoffRoute("to_billing", "Billing"),
    object(),
    _Hostile(),
    _Closing(),
)
# (drawn by index: hypothesis would hash the values of a sampled_from)
garbage = st.integers(min_value=0, max_value=len(GARBAGE) - 1).map(GARBAGE.__getitem__)

#: One strategy per event type, arbitrary values, no attempt to fit: for ``@given`` tests.
EVENT_STRATEGIES: dict[type, st.SearchStrategy[Any]] = {
    SessionStarted: session_starts,
    AgentActivated: agent_activations(optional_call_ids),
    TurnStarted: st.builds(TurnStarted, optional_response_ids, at=st.none() | moments),
    UsageReported: st.builds(UsageReported, usages),
    TurnEnded: st.builds(TurnEnded, optional_response_ids, at=st.none() | moments),
    AudioInterrupted: st.builds(
        AudioInterrupted,
        st.none() | item_ids,
        at=st.none() | moments,
        generated_ms=st.none() | durations,
        played_ms=st.none() | durations,
    ),
    ToolCalled: st.builds(
        ToolCalled,
        st.sampled_from(CALL_IDS),
        st.sampled_from(TOOL_NAMES + HANDOFF_TOOLS + ("nope",)),
        st.none() | texts,
    ),
    ToolApprovalRequested: st.builds(ToolApprovalRequested, st.sampled_from(CALL_IDS)),
    ToolApproved: st.builds(ToolApproved, st.sampled_from(CALL_IDS)),
    ToolRejected: st.builds(ToolRejected, st.sampled_from(CALL_IDS)),
    ToolGuardrailRejected: st.builds(
        ToolGuardrailRejected, st.sampled_from(CALL_IDS), st.sampled_from(("input", "output"))
    ),
    ToolOutputSent: st.builds(ToolOutputSent, st.sampled_from(CALL_IDS), st.none() | texts),
    ToolFailed: st.builds(ToolFailed, st.sampled_from(CALL_IDS), error_infos),
    GuardrailTripped: st.builds(
        GuardrailTripped,
        st.none() | st.sampled_from(AGENT_KEYS),
        st.lists(st.sampled_from(GUARDRAILS), max_size=2).map(tuple),
    ),
    ErrorReported: st.builds(ErrorReported, error_infos, call_id=optional_call_ids),
    TransportFailed: st.builds(TransportFailed, error_infos),
    ServerSessionIdentified: st.builds(ServerSessionIdentified, st.just("sess_1")),
    EntryFailed: st.builds(EntryFailed, error_infos),
    SessionClosed: st.builds(SessionClosed, st.none() | error_infos),
    ModelConfigured: model_configurations,
    CallerSpeechStarted: st.builds(CallerSpeechStarted, item_ids, at=moments),
    CallerSpeechStopped: st.builds(CallerSpeechStopped, item_ids, at=moments),
    CallerAudioCommitted: st.builds(CallerAudioCommitted, item_ids, at=moments),
    CallerTranscribed: st.builds(CallerTranscribed, item_ids, st.none() | texts, at=moments),
    CallerTranscriptionFailed: st.builds(
        CallerTranscriptionFailed, item_ids, error_infos, at=moments
    ),
    MessageSent: st.builds(MessageSent, st.none() | texts, at=moments, call_id=optional_call_ids),
    AudioStarted: st.builds(AudioStarted, optional_response_ids, st.none() | item_ids, at=moments),
    TextStarted: st.builds(TextStarted, optional_response_ids, at=moments),
    AgentSaid: st.builds(AgentSaid, optional_response_ids, st.none() | texts, audio_ms=durations),
    TimerFired: st.builds(TimerFired, st.integers(min_value=0, max_value=20), at=moments),
}
any_event = st.one_of(*EVENT_STRATEGIES.values())
any_input = st.one_of(any_event, garbage)


def test_every_event_type_has_a_strategy_and_a_rule() -> None:
    """A new event type fails here until the tests below feed it."""
    assert set(EVENT_STRATEGIES) == set(EVENT_TYPES)
    rules = " ".join(name for name in vars(MachineProperties) if not name.startswith("_"))
    for event_type in EVENT_TYPES:
        assert _rule_name(event_type) in rules, f"no rule feeds {event_type.__name__}"


@given(st.sampled_from(EVENT_TYPES).flatmap(lambda t: st.tuples(st.just(t), EVENT_STRATEGIES[t])))
def test_each_event_strategy_builds_its_type(typed: tuple[type, object]) -> None:
    event_type, event = typed
    assert type(event) is event_type


def _rule_name(event_type: type) -> str:
    name = event_type.__name__
    return "".join("_" + ch.lower() if ch.isupper() else ch for ch in name).lstrip("_")


# -- the model sink ------------------------------------------------------------------------


@attrs.define
class _Span:
    span_id: int
    parent_id: int | None
    spec: Any
    open: bool = True
    errors: int = 0
    children: list[int] = attrs.Factory(list)


class SpanTree:
    """Applies commands the way a tracing backend would, asserting the tree rules."""

    def __init__(self) -> None:
        self.spans: dict[int, _Span] = {}
        self.session: int | None = None
        self.active_agent: int | None = None  # the agent span started last
        self.turns_started = 0
        self.traces_opened = 0
        self.traces_closed = 0
        self.finished = False  # the session span has ended
        self.timers: set[int] = set()  # turns whose end waits for their audio to play out
        self.interruptions = 0

    # queries

    def open_spans(self, kind: type | None = None) -> list[_Span]:
        return [
            span
            for span in self.spans.values()
            if span.open and (kind is None or isinstance(span.spec, kind))
        ]

    def open_children(self, span_id: int) -> list[_Span]:
        return [self.spans[c] for c in self.spans[span_id].children if self.spans[c].open]

    def generation_of(self, turn_id: int) -> _Span:
        (generation,) = (
            self.spans[c]
            for c in self.spans[turn_id].children
            if isinstance(self.spans[c].spec, GenerationSpec)
        )
        return generation

    def generating_turns(self) -> list[_Span]:
        """Open turns whose response is still generating (their generation span is open)."""
        return [t for t in self.open_spans(TurnSpec) if self.generation_of(t.span_id).open]

    def _require_open(self, span_id: int, *kinds: type) -> _Span:
        span = self.spans.get(span_id)
        assert span is not None, f"span {span_id} was never started"
        assert span.open, f"span {span_id} ({span.spec}) has already ended"
        if kinds:
            assert isinstance(span.spec, kinds), f"span {span_id} is a {span.spec}"
        return span

    # commands

    def apply(self, command: Command) -> None:
        match command:
            case OpenTrace():
                assert self.traces_opened == 0, "OpenTrace twice"
                assert not self.spans, "OpenTrace after a span started"
                self.traces_opened += 1
            case AnnotateTrace():
                assert self.traces_opened == 1 and self.traces_closed == 0, (
                    "AnnotateTrace without an open trace of the machine's own"
                )
            case AnnotateSpan(span_id=span_id):
                self._require_open(span_id, SessionSpec)
            case CloseTrace():
                assert self.traces_opened == 1, "CloseTrace without OpenTrace"
                assert self.traces_closed == 0, "CloseTrace twice"
                assert not self.open_spans(), "CloseTrace before every EndSpan"
                assert self.finished
                self.traces_closed += 1
            case StartSpan(span_id=span_id, parent_id=parent_id, spec=spec):
                self._start(span_id, parent_id, spec)
            case EndSpan(span_id=span_id):
                span = self._require_open(span_id)
                still_open = self.open_children(span_id)
                assert not still_open, f"span {span_id} ends before its children {still_open}"
                span.open = False
                self.timers.discard(span_id)
                if span_id == self.session:
                    self.finished = True
            case SetUsage(span_id=span_id):
                self._require_open(span_id, TurnSpec, SessionSpec, GenerationSpec)
            case SetOutput(span_id=span_id):
                self._require_open(span_id, FunctionSpec, TranscriptionSpec)
            case SetMessages(span_id=span_id, input=inputs, output=outputs):
                self._require_open(span_id, GenerationSpec)
                for message in (*inputs, *outputs):
                    assert message["role"] in ("user", "tool", "assistant"), message
                assert all(m["role"] == "assistant" for m in outputs)
            case SetMeasures(span_id=span_id, measures=measures):
                span = self._require_open(span_id, TurnSpec, SessionSpec)
                self._check_measures(span, measures)
            case SetTimer(token=token):
                self._require_open(token, TurnSpec)
                assert not self.generation_of(token).open, "a timer for a turn still generating"
                assert token not in self.timers, "a second timer for one turn"
                self.timers.add(token)
            case AttachAudio(span_id=span_id, source=source):
                span = self._require_open(span_id, SpeechSpec, TranscriptionSpec)
                assert source == ("agent" if isinstance(span.spec, SpeechSpec) else "caller")
            case SetHandoffTarget(span_id=span_id):
                self._require_open(span_id, HandoffSpec)
            case FlagTurn(span_id=span_id, flag=flag):
                self._require_open(span_id, TurnSpec)
                assert flag in ("interrupted", "cut_off")
                self.interruptions += flag == "interrupted"
            case SetError(span_id=span_id):
                span = self._require_open(span_id)
                span.errors += 1
                assert span.errors == 1, f"span {span_id} got a second error"
            case Diagnostic():
                pass
            case _:
                raise AssertionError(f"not a command: {command!r}")

    def _check_measures(self, span: _Span, measures: Any) -> None:
        """Latencies are finite and non-negative; the caller heard at most what was made;
        the session's summary counts what the tree saw."""
        for name, value in measures.items():
            assert isinstance(value, int | float) and not isinstance(value, bool), (name, value)
            assert math.isfinite(value) and value >= 0, f"{name} = {value}"
        heard, generated = measures.get("audio_heard_ms"), measures.get("audio_generated_ms")
        if heard is not None and generated is not None:
            assert heard <= generated, measures
        if isinstance(span.spec, SessionSpec):
            assert measures["turns"] == self.turns_started
            assert measures["interruptions"] == self.interruptions
            if "voice_to_voice_max_ms" in measures:
                assert measures["voice_to_voice_median_ms"] <= measures["voice_to_voice_max_ms"]

    def _start(self, span_id: int, parent_id: int | None, spec: Any) -> None:
        assert not self.finished, f"span {span_id} started after the session ended"
        assert span_id not in self.spans, f"span id {span_id} reused"
        assert all(span_id > other for other in self.spans), "span ids not handed out in order"
        if parent_id is None:
            assert isinstance(spec, SessionSpec), f"{spec} at the root"
            assert self.session is None, "a second session span"
            self.session = span_id
        else:
            parent = self._require_open(parent_id)
            parent.children.append(span_id)
        match spec:
            case SessionSpec():
                assert parent_id is None
            case AgentSpec():
                # siblings under the session span, never nested
                assert parent_id == self.session, f"agent span under {parent_id}"
                self.active_agent = span_id
            case TurnSpec(turn=number, agent_name=agent_name):
                assert parent_id == self.active_agent, "turn not under the active agent"
                self.turns_started += 1
                assert number == self.turns_started, "turns not numbered 1, 2, ..."
                assert agent_name == self.spans[parent_id].spec.name
            case FunctionSpec() | HandoffSpec():
                assert parent_id == self.active_agent, "call not under the requesting agent"
                if isinstance(spec, HandoffSpec):
                    assert spec.from_agent == self.spans[parent_id].spec.name
            case GenerationSpec():
                parent = self.spans[parent_id]  # type: ignore[index]
                assert isinstance(parent.spec, TurnSpec), "a generation not under a turn"
                assert parent.children == [span_id], "not the turn's first and only generation"
            case SpeechSpec():
                parent = self.spans[parent_id]  # type: ignore[index]
                assert isinstance(parent.spec, TurnSpec), "speech not under a turn"
                assert self.spans[parent.children[0]].open, "speech after its generation ended"
                assert not any(
                    isinstance(self.spans[c].spec, SpeechSpec) for c in parent.children[:-1]
                )
            case TranscriptionSpec():
                assert parent_id in (self.session, self.active_agent), (
                    "a transcription not under the active agent or the session"
                )
            case GuardrailSpec(triggered=triggered):
                assert triggered
                assert parent_id is not None
                assert isinstance(self.spans[parent_id].spec, AgentSpec | SessionSpec)
            case _:
                raise AssertionError(f"unknown span spec {spec!r}")
        self.spans[span_id] = _Span(span_id, parent_id, spec)


# -- the state machine test ----------------------------------------------------------------


def _due(out: Sequence[Command]) -> float:
    """When the turn's audio will have played out, by the SetTimer among ``out``."""
    return next((c.due for c in out if isinstance(c, SetTimer)), math.nan)


def _copy_event(event: object) -> object:
    """An equal, separately built copy of an event (garbage is kept as it is)."""
    if type(event) in EVENT_TYPES:
        return attrs.evolve(event)  # type: ignore[misc]
    return event


@attrs.frozen
class _Before:
    call_span: _Span | None  # the open function or handoff span of the event's call id
    call_errored: bool
    call_id_used: bool  # some ToolCalled with this id already opened a span
    turn_span: _Span | None  # the open turn of the event's response id
    generating: _Span | None  # the generating turn the machine matches to the event
    timer_pending: bool  # a TimerFired's turn waits for its audio to play out
    session_errored: bool
    error_target: tuple[int, bool]  # the latest open turn, else the session: (id, errored)
    active_agent: tuple[int, bool] | None  # the active agent span: (id, errored)
    open_functions: dict[str, int]  # call id -> its open function span


class MachineProperties(RuleBasedStateMachine):
    """One session: a lenient and a strict machine fed the same events, side by side."""

    def __init__(self) -> None:
        super().__init__()
        self.lenient = SpanMachine()
        self.strict = SpanMachine(strict=True)
        self.tree = SpanTree()
        self.log: list[object] = []
        self.outputs: list[Command] = []
        self.muted = False
        self.agent_events: dict[int, AgentActivated] = {}  # agent span -> its activation
        self.call_of_span: dict[int, str] = {}  # function / handoff span -> call id
        self.fresh = 0  # fresh ids handed out so far
        self.usage_pending: Usage | None = None  # reported, not yet on a turn
        self.usage_total: Usage | None = None  # reported in the whole session
        self.steps_ok = True
        self.now = 0.0  # the adapter's clock, seconds: it never goes back

    # -- feeding and checking ----------------------------------------------------------

    def feed(self, event: object) -> tuple[Command, ...]:
        self.steps_ok = False
        note(f"feed({event!r})")
        state_before = self.lenient.state
        started_before = self.tree.session is not None
        before = self._snapshot(event)
        out = self.lenient.feed(event)  # type: ignore[arg-type]
        note(f"  -> {out!r}")

        diagnostics = [c for c in out if isinstance(c, Diagnostic)]
        if diagnostics:
            (diagnostic,) = diagnostics
            assert out == (diagnostic,), "a diagnostic comes alone"
            assert diagnostic.state == state_before
            assert diagnostic.event == type(event).__name__
            with pytest.raises(UnexpectedEvent) as raised:
                self.strict.feed(event)  # type: ignore[arg-type]
            error = raised.value
            assert (error.state, error.event_name, error.reason) == (
                diagnostic.state,
                diagnostic.event,
                diagnostic.reason,
            )
            assert error.event is event
            assert error.state in str(error) and error.event_name in str(error)
            if isinstance(event, TurnEnded) and diagnostic.reason == "no open turn matches":
                self.usage_pending = None  # that response's usage is no other turn's
                # A strict raise leaves its machine as it was (a unit test says so), with
                # that usage still pending, where lenient dropped it: the one diagnostic
                # that changes lenient's state. The strict twin goes on from lenient's
                # state (reaching into our own core's private flag, on purpose).
                self.strict = copy.deepcopy(self.lenient)
                self.strict._strict = True
        elif self.muted and type(event) not in EVENT_TYPES:
            # Muted, lenient says nothing at all; strict still refuses a non-event.
            assert out == ()
            with pytest.raises(UnexpectedEvent, match=r"not a realtime_spans\.core event"):
                self.strict.feed(event)  # type: ignore[arg-type]
        else:
            assert self.strict.feed(event) == out  # type: ignore[arg-type]
        assert self.strict.state == self.lenient.state
        for call_id in self._known_call_ids():
            assert self.strict.function_span(call_id) == self.lenient.function_span(call_id)

        if self.muted:
            assert out == (), "tracing is disabled, yet the machine spoke"
        elif (
            isinstance(event, SessionStarted)
            and not event.tracing_enabled
            and state_before == IDLE
            and not started_before
        ):
            assert out == ()
            self.muted = True
        if state_before == CLOSED:
            assert list(out) == diagnostics, "the closed machine did more than report"

        for command in out:
            self.tree.apply(command)
        if not diagnostics and not self.muted:
            self._check_effect(event, out, before)
        self._remember(event, out)
        self.log.append(event)
        self.outputs.extend(out)
        self.check_session()
        self.steps_ok = True
        return out

    def _snapshot(self, event: object) -> _Before:
        """What the sink knows, before the event, about the spans the event names."""
        call_id = getattr(event, "call_id", None) if type(event) in EVENT_TYPES else None
        call_span = None
        if call_id is not None:
            for span in self.tree.open_spans(FunctionSpec) + self.tree.open_spans(HandoffSpec):
                if self.call_of_span[span.span_id] == call_id:
                    call_span = span
        response_id = getattr(event, "response_id", None) if type(event) in EVENT_TYPES else None
        turn_span = None
        if response_id is not None:
            for span in self.tree.open_spans(TurnSpec):
                if span.spec.response_id == response_id:
                    turn_span = span
                    break
        generating = None
        if type(event) in EVENT_TYPES and hasattr(event, "response_id"):
            generating = self._generating_for(response_id)
        session = self.tree.spans.get(self.tree.session or 0)
        turns = self.tree.generating_turns()
        target = turns[-1] if turns else session
        active = self.tree.spans.get(self.tree.active_agent or 0)
        return _Before(
            active_agent=(
                (active.span_id, active.errors > 0)
                if active is not None and active.open and self.lenient.state in WITH_AGENT
                else None
            ),
            error_target=(target.span_id, target.errors > 0) if target else (0, False),
            call_span=call_span,
            call_errored=call_span is not None and call_span.errors > 0,
            call_id_used=call_id in self.call_of_span.values(),
            turn_span=turn_span,
            generating=generating,
            timer_pending=isinstance(event, TimerFired) and event.token in self.tree.timers,
            session_errored=session is not None and session.errors > 0,
            open_functions={
                self.call_of_span[s.span_id]: s.span_id for s in self.tree.open_spans(FunctionSpec)
            },
        )

    def _generating_for(self, response_id: str | None) -> _Span | None:
        """The turn the machine gives a response's event: the generating turn of that
        response id, else the newest generating turn without one (``None``: the newest)."""
        turns = self.tree.generating_turns()
        if response_id is None:
            return turns[-1] if turns else None
        for turn in turns:
            if turn.spec.response_id == response_id:
                return turn
        return next((t for t in reversed(turns) if t.spec.response_id is None), None)

    def _check_usage(self, event: object, out: tuple[Command, ...]) -> None:
        """Usage reported while a turn is open goes to the turn that ends next (usage with
        no turn open, or of a turn_ended that matched no turn, goes to no turn); the sum of
        everything reported goes to the session span."""
        if isinstance(event, UsageReported):
            pending, total = self.usage_pending, self.usage_total
            if self.tree.generating_turns():
                self.usage_pending = event.usage if pending is None else pending + event.usage
            self.usage_total = event.usage if total is None else total + event.usage
        for command in out:
            if isinstance(command, SetUsage) and command.span_id == self.tree.session:
                assert command.usage == self.usage_total, "session usage is not the sum"
            elif isinstance(command, SetUsage):
                assert command.usage == self.usage_pending, "turn usage is not what was reported"
                if isinstance(self.tree.spans[command.span_id].spec, TurnSpec):
                    self.usage_pending = None  # the generation's first, then its turn's
            elif isinstance(command, EndSpan) and isinstance(
                self.tree.spans[command.span_id].spec, GenerationSpec
            ):
                assert self.usage_pending is None, "a response ended without the pending usage"
        if isinstance(event, SessionClosed | EntryFailed) and self.tree.session is not None:
            assert (SetUsage(self.tree.session, self.usage_total) in out) == (
                self.usage_total is not None
            )

    def _check_effect(self, event: object, out: tuple[Command, ...], before: _Before) -> None:
        """Each accepted event does what the design says to the spans it names."""
        call = before.call_span
        ended = [c.span_id for c in out if isinstance(c, EndSpan)]
        self._check_usage(event, out)
        match event:
            case ToolCalled():
                if before.call_id_used:
                    assert out == (), "a repeated call id opened a second span"
                else:
                    assert len(out) == 1 and isinstance(out[0], StartSpan)
            case ToolOutputSent(output=output) if call is not None:
                assert ended[0] == call.span_id, "the call's span did not end with its output"
                assert (SetOutput(call.span_id, output) in out) == (output is not None)
            case ToolFailed(error=error) if call is not None:
                assert ended[0] == call.span_id, "the failed call's span did not end"
                assert (SetError(call.span_id, error) in out) != before.call_errored
            case ToolOutputSent() | ToolFailed():
                assert out == (), "a late output or failure of a finished call changed spans"
            case (
                ToolApprovalRequested()
                | ToolApproved()
                | ToolRejected()
                | ToolGuardrailRejected()
                | UsageReported()
            ):
                assert out == (), "held for the span's end, not recorded at once"
            case ErrorReported(error=error) if call is not None:
                assert out == (() if before.call_errored else (SetError(call.span_id, error),))
            case ErrorReported() if before.call_id_used:
                assert out == (), "an error of a finished call changed spans"
            case ErrorReported(error=error):
                # not about an open call: on the latest open turn, else on the session span
                target, errored = before.error_target
                assert out == (() if errored else (SetError(target, error),))
            case TransportFailed(error=error):
                expected = () if before.session_errored else (SetError(self.tree.session, error),)
                assert out == expected, "a transport failure belongs on the session span"
            case ServerSessionIdentified(session_id=session_id):
                on_span = AnnotateSpan(self.tree.session, TRACE_KEY_SERVER_SESSION, session_id)
                if self.tree.traces_opened:
                    on_trace = AnnotateTrace(TRACE_KEY_SERVER_SESSION, session_id)
                    assert out == (on_trace, on_span)
                else:
                    assert out == (on_span,), "the caller's trace was annotated"
            case SessionStarted(group_id=group_id, open_trace=open_trace):
                assert isinstance(out[-1 if open_trace or group_id is None else -2], StartSpan)
                if not open_trace and group_id is not None:
                    # the caller's trace keeps its own group; the session span records ours
                    assert out[-1] == AnnotateSpan(self.tree.session, "group_id", group_id)
            case AgentActivated(name=name) if call is not None and isinstance(
                call.spec, HandoffSpec
            ):
                (start,) = (c for c in out if isinstance(c, StartSpan))
                assert out.index(EndSpan(call.span_id)) < out.index(start)
                retarget = SetHandoffTarget(call.span_id, name)
                assert (retarget in out) == (name != call.spec.to_agent)
            case AgentActivated():
                assert not any(isinstance(self.tree.spans[i].spec, HandoffSpec) for i in ended), (
                    "a handoff ended without its call id"
                )
            case TurnStarted(response_id=response_id):
                if before.turn_span is not None:
                    assert out == (), "a late turn_started opened a second turn"
                else:
                    start, generation = out
                    assert isinstance(start, StartSpan) and isinstance(generation, StartSpan)
                    assert start.spec.response_id == response_id  # type: ignore[union-attr]
                    assert generation.parent_id == start.span_id
            case TurnEnded() if before.generating is not None:
                turn = before.generating.span_id
                assert self.tree.generation_of(turn).span_id in ended, "the response went on"
                assert (turn in ended) != (SetTimer(turn, _due(out)) in out), (
                    "the turn neither ended nor waits for its audio"
                )
            case TimerFired(token=token):
                if before.timer_pending:
                    assert token in ended, "the turn's audio played out, yet it stayed open"
                else:
                    assert out == (), "a stale timer changed spans"
            case AudioInterrupted():
                flags = [c for c in out if isinstance(c, FlagTurn)]
                assert len(flags) <= 1 and all(f.flag == "interrupted" for f in flags)
            case SessionClosed(error=error) | EntryFailed(error=error) if self.tree.session:
                assert ended[-1] == self.tree.session, "the session span did not end last"
                if isinstance(event, EntryFailed) and before.active_agent is not None:
                    # every span open at a failed entry carries its error
                    active, errored = before.active_agent
                    assert (SetError(active, event.error) in out) != errored
                if error is not None and not before.session_errored:
                    assert SetError(self.tree.session, error) in out
                if self.tree.traces_opened:
                    assert out[-1] == CloseTrace()
                if isinstance(event, SessionClosed) and event.by_call in before.open_functions:
                    self._check_closing_call(event.by_call, before.open_functions, out)
            case _:
                pass

    def _check_closing_call(
        self, call_id: str, open_functions: dict[str, int], out: Sequence[Command]
    ) -> None:
        """The call whose tool closed the session ends, and is not said to be cancelled
        (unless its agent has no such tool: that call is cut short as any other)."""
        span_id = open_functions[call_id]
        assert EndSpan(span_id) in out
        span = self.tree.spans[span_id]
        assert span.parent_id is not None
        known = span.spec.name in self.agent_events[span.parent_id].tools
        tally(f"session closed by the tool of an open call (a tool its agent has: {known})")
        if known:
            statuses = [
                command.error.data.get("status") if command.error.data else None
                for command in out
                if isinstance(command, SetError) and command.span_id == span_id
            ]
            assert "cancelled" not in statuses, statuses

    def _remember(self, event: object, out: Sequence[Command]) -> None:
        started = [c for c in out if isinstance(c, StartSpan)]
        if isinstance(event, AgentActivated):
            for command in started:
                assert isinstance(command.spec, AgentSpec)
                assert command.spec.name == event.name
                assert command.spec.tools == event.tools
                assert command.spec.handoffs == tuple(r.agent_name for r in event.handoffs)
                self.agent_events[command.span_id] = event
        if isinstance(event, ToolCalled):
            for command in started:
                self.call_of_span[command.span_id] = event.call_id
                self._check_call_kind(event, command)

    def _check_call_kind(self, event: ToolCalled, command: StartSpan) -> None:
        activation = self.agent_events[command.parent_id]  # type: ignore[index]
        targets = {r.tool_name: r.agent_name for r in activation.handoffs}
        if event.name in targets:
            assert command.spec == HandoffSpec(activation.name, targets[event.name])
        else:
            assert command.spec == FunctionSpec(event.name, event.call_id, event.arguments)

    def check_session(self) -> None:
        tree, state = self.tree, self.lenient.state
        agents = tree.open_spans(AgentSpec)
        if state == IDLE:
            assert not any(isinstance(s.spec, AgentSpec) for s in tree.spans.values())
        if state in WITH_AGENT:
            assert tree.active_agent is not None
            assert tree.spans[tree.active_agent].open, "the active agent's span ended"
        # An inactive agent span stays open only while one of its turns or calls is open.
        for agent in agents:
            if agent.span_id != tree.active_agent or state not in WITH_AGENT:
                assert tree.open_children(agent.span_id), (
                    f"agent span {agent.span_id} is no longer active, has nothing open, "
                    "and did not end"
                )
        handoffs_open = bool(tree.open_spans(HandoffSpec))
        assert (state == HANDING_OFF) == handoffs_open, f"{state} with handoffs {handoffs_open}"
        if state == CLOSED:
            assert not tree.open_spans(), "the machine closed with spans open"
            assert tree.traces_closed == tree.traces_opened
            if tree.session is None:
                assert not tree.spans and tree.traces_opened == 0
        # The machine knows its open function spans by call id, and nothing else.
        open_functions = {
            self.call_of_span[s.span_id]: s.span_id for s in tree.open_spans(FunctionSpec)
        }
        for call_id in self._known_call_ids():
            assert self.lenient.function_span(call_id) == open_functions.get(call_id)

    # -- what fits right now -------------------------------------------------------------

    def _active(self) -> AgentActivated | None:
        if self.lenient.state not in WITH_AGENT or self.tree.active_agent is None:
            return None
        return self.agent_events.get(self.tree.active_agent)

    def _open_call_ids(self, kind: type) -> list[str]:
        return [self.call_of_span[s.span_id] for s in self.tree.open_spans(kind)]

    @staticmethod
    def _fitting_or_not(
        data: st.DataObject, fitting: Iterable[Any], other: st.SearchStrategy[Any]
    ) -> Any:
        candidates = list(fitting)
        if candidates:
            return data.draw(st.sampled_from(candidates) | other)
        return data.draw(other)

    def _call_id(self, data: st.DataObject) -> str:
        return self._fitting_or_not(  # type: ignore[no-any-return]
            data,
            self._open_call_ids(FunctionSpec) + self._open_call_ids(HandoffSpec),
            st.sampled_from(CALL_IDS),
        )

    def _fresh_id(self, prefix: str) -> str:
        self.fresh += 1
        return f"{prefix}_new{self.fresh}"

    def _known_call_ids(self) -> set[str]:
        return {*CALL_IDS, *self.call_of_span.values()}

    # -- rules: one per event type, plus garbage ----------------------------------------

    @initialize(data=st.data())
    def prelude(self, data: st.DataObject) -> None:
        """Most sessions start traced and put an agent in place first; some do not."""
        if data.draw(_one_in(8), label="skip SessionStarted"):
            return
        start = data.draw(session_starts)
        muted = data.draw(_one_in(8), label="tracing disabled")
        self.feed(attrs.evolve(start, tracing_enabled=not muted))
        if not data.draw(_one_in(8), label="skip AgentActivated"):
            self.feed(data.draw(agent_activations(st.none())))

    @rule(event=session_starts)
    def session_started(self, event: SessionStarted) -> None:
        self.feed(event)

    @rule(data=st.data())
    def agent_activated(self, data: st.DataObject) -> None:
        in_flight = self._open_call_ids(HandoffSpec)
        call_ids = (
            (st.sampled_from(in_flight) | optional_call_ids) if in_flight else optional_call_ids
        )
        self.feed(data.draw(agent_activations(call_ids)))

    def _tick(self, data: st.DataObject) -> float:
        """The clock moves on by a drawn step (often none): the moment of the next event."""
        self.now += data.draw(st.sampled_from((0.0, 0.05, 0.4, 1.5, 30.0)), label="seconds later")
        return self.now

    def _response_id(self, data: st.DataObject) -> str | None:
        open_ids = [s.spec.response_id for s in self.tree.open_spans(TurnSpec)]
        return self._fitting_or_not(data, open_ids, optional_response_ids)  # type: ignore[no-any-return]

    @rule(data=st.data())
    def turn_started(self, data: st.DataObject) -> None:
        response_id = self._response_id(data)
        self.feed(TurnStarted(response_id, at=self._tick(data)))

    @rule(usage=usages)
    def usage_reported(self, usage: Usage) -> None:
        self.feed(UsageReported(usage))

    @rule(data=st.data())
    def turn_ended(self, data: st.DataObject) -> None:
        response_id = self._response_id(data)
        at = data.draw(st.none() | st.builds(self._tick, st.just(data)), label="at")
        self.feed(TurnEnded(response_id, at=at))

    @rule(
        data=st.data(),
        item_id=st.none() | item_ids,
        generated_ms=st.none() | durations,
        played_ms=st.none() | durations,
    )
    def audio_interrupted(
        self,
        data: st.DataObject,
        item_id: str | None,
        generated_ms: float | None,
        played_ms: float | None,
    ) -> None:
        at = self._tick(data)
        self.feed(AudioInterrupted(item_id, at=at, generated_ms=generated_ms, played_ms=played_ms))

    @rule(event=model_configurations)
    def model_configured(self, event: ModelConfigured) -> None:
        self.feed(event)

    @rule(data=st.data(), item_id=item_ids)
    def caller_speech_started(self, data: st.DataObject, item_id: str) -> None:
        self.feed(CallerSpeechStarted(item_id, at=self._tick(data)))

    @rule(data=st.data(), item_id=item_ids)
    def caller_speech_stopped(self, data: st.DataObject, item_id: str) -> None:
        self.feed(CallerSpeechStopped(item_id, at=self._tick(data)))

    @rule(data=st.data(), item_id=item_ids)
    def caller_audio_committed(self, data: st.DataObject, item_id: str) -> None:
        self.feed(CallerAudioCommitted(item_id, at=self._tick(data)))

    @rule(data=st.data(), item_id=item_ids, transcript=st.none() | texts)
    def caller_transcribed(self, data: st.DataObject, item_id: str, transcript: str | None) -> None:
        self.feed(CallerTranscribed(item_id, transcript, at=self._tick(data)))

    @rule(data=st.data(), item_id=item_ids, error=error_infos)
    def caller_transcription_failed(
        self, data: st.DataObject, item_id: str, error: ErrorInfo
    ) -> None:
        self.feed(CallerTranscriptionFailed(item_id, error, at=self._tick(data)))

    @rule(data=st.data(), text=st.none() | texts)
    def message_sent(self, data: st.DataObject, text: str | None) -> None:
        call_id = self._call_id(data) if data.draw(st.booleans(), label="a tool's") else None
        self.feed(MessageSent(text, at=self._tick(data), call_id=call_id))

    @rule(data=st.data(), item_id=st.none() | item_ids)
    def audio_started(self, data: st.DataObject, item_id: str | None) -> None:
        response_id = self._response_id(data)
        self.feed(AudioStarted(response_id, item_id, at=self._tick(data)))

    @rule(data=st.data())
    def text_started(self, data: st.DataObject) -> None:
        response_id = self._response_id(data)
        self.feed(TextStarted(response_id, at=self._tick(data)))

    @rule(data=st.data(), text=st.none() | texts, audio_ms=st.none() | durations)
    def agent_said(self, data: st.DataObject, text: str | None, audio_ms: float | None) -> None:
        self.feed(AgentSaid(self._response_id(data), text, audio_ms=audio_ms))

    @rule(data=st.data())
    def timer_fired(self, data: st.DataObject) -> None:
        token = self._fitting_or_not(data, sorted(self.tree.timers), st.integers(0, 20))
        self.feed(TimerFired(token, at=self._tick(data)))

    @rule(data=st.data(), arguments=st.none() | texts)
    def tool_called(self, data: st.DataObject, arguments: str | None) -> None:
        active = self._active()
        names: list[str] = []
        if active is not None:
            names = [*active.tools, *(route.tool_name for route in active.handoffs)]
        other = st.sampled_from(TOOL_NAMES + HANDOFF_TOOLS + ("nope",))
        name = self._fitting_or_not(data, names, other)
        call_id = data.draw(st.sampled_from(CALL_IDS) | st.builds(self._fresh_id, st.just("call")))
        self.feed(ToolCalled(call_id, name, arguments))

    @rule(data=st.data())
    def tool_approval_requested(self, data: st.DataObject) -> None:
        self.feed(ToolApprovalRequested(self._call_id(data)))

    @rule(data=st.data())
    def tool_approved(self, data: st.DataObject) -> None:
        self.feed(ToolApproved(self._call_id(data)))

    @rule(data=st.data())
    def tool_rejected(self, data: st.DataObject) -> None:
        self.feed(ToolRejected(self._call_id(data)))

    @rule(data=st.data(), stage=st.sampled_from(("input", "output")))
    def tool_guardrail_rejected(self, data: st.DataObject, stage: str) -> None:
        self.feed(ToolGuardrailRejected(self._call_id(data), stage))

    @rule(data=st.data(), output=st.none() | texts)
    def tool_output_sent(self, data: st.DataObject, output: str | None) -> None:
        self.feed(ToolOutputSent(self._call_id(data), output))

    @rule(data=st.data(), error=error_infos)
    def tool_failed(self, data: st.DataObject, error: ErrorInfo) -> None:
        self.feed(ToolFailed(self._call_id(data), error))

    @rule(data=st.data(), names=st.lists(st.sampled_from(GUARDRAILS), max_size=2))
    def guardrail_tripped(self, data: st.DataObject, names: list[str]) -> None:
        keys = [event.agent for event in self.agent_events.values()]
        agent = self._fitting_or_not(data, keys, st.none() | st.sampled_from(AGENT_KEYS))
        out = self.feed(GuardrailTripped(agent, tuple(names)))
        active = self._active()
        if out and not isinstance(out[0], Diagnostic):
            assert len(out) == 2 * len(names)
            for start, name in zip(out[::2], names, strict=True):
                assert isinstance(start, StartSpan)
                assert start.spec == GuardrailSpec(name, True)
                if active is not None and agent == active.agent:
                    assert start.parent_id == self.tree.active_agent
                if agent is None:  # never under an agent it cannot be traced to
                    assert start.parent_id == SESSION_SPAN_ID
            assert out[1::2] == tuple(EndSpan(c.span_id) for c in out[::2])  # type: ignore[union-attr]

    @rule(data=st.data(), error=error_infos)
    def error_reported(self, data: st.DataObject, error: ErrorInfo) -> None:
        call_id = self._call_id(data) if data.draw(st.booleans(), label="about a call") else None
        self.feed(ErrorReported(error, call_id=call_id))

    @rule(error=error_infos)
    def transport_failed(self, error: ErrorInfo) -> None:
        self.feed(TransportFailed(error))

    @rule(session_id=st.sampled_from(("sess_1", "sess_2")))
    def server_session_identified(self, session_id: str) -> None:
        out = self.feed(ServerSessionIdentified(session_id))
        if any(isinstance(c, AnnotateTrace) for c in out):
            assert self.tree.traces_opened == 1

    @rule(data=st.data(), error=st.none() | error_infos)
    def entry_failed_or_session_closed(self, data: st.DataObject, error: ErrorInfo | None) -> None:
        """The two ends of a session, drawn less often than the rest so sessions get deep."""
        if not data.draw(_one_in(3), label="end the session now"):
            return
        if data.draw(st.booleans(), label="entry failed") and error is not None:
            self.feed(EntryFailed(error))
        else:
            # closed by the tool of an open call (an "end the call" tool), or by no call
            calls = self._open_call_ids(FunctionSpec)
            by_call = (
                data.draw(st.none() | st.sampled_from(calls), label="closed by") if calls else None
            )
            self.feed(SessionClosed(error, by_call=by_call))

    # -- episodes: a few fitting events in a row, so that sessions get deep ---------------

    @rule(data=st.data(), usage=st.none() | usages, said=st.none() | texts)
    def a_whole_turn(self, data: st.DataObject, usage: Usage | None, said: str | None) -> None:
        """The caller speaks (or not), the model answers in audio or text, the caller
        barges in (or not), the transcript comes before, during or after the response."""
        item = self._fresh_id("item") if data.draw(st.booleans(), label="spoken") else None
        if item is not None:
            self.feed(CallerSpeechStarted(item, at=self._tick(data)))
            self.feed(CallerSpeechStopped(item, at=self._tick(data)))
            self.feed(CallerAudioCommitted(item, at=self._tick(data)))
        when = data.draw(st.sampled_from(("before", "during", "after", "never")), label="heard")
        if item is not None and when == "before":
            self.feed(CallerTranscribed(item, "words", at=self._tick(data)))
        response_id = data.draw(st.none() | st.builds(self._fresh_id, st.just("resp")))
        self.feed(TurnStarted(response_id, at=self._tick(data)))
        audio_item = self._fresh_id("audio")
        spoken = data.draw(st.booleans(), label="audio answer")
        if spoken:
            self.feed(AudioStarted(response_id, audio_item, at=self._tick(data)))
        else:
            self.feed(TextStarted(response_id, at=self._tick(data)))
        if item is not None and when == "during":
            self.feed(CallerTranscribed(item, "words", at=self._tick(data)))
        generated = data.draw(durations, label="audio ms") if spoken else None
        if data.draw(_one_in(4), label="barge in while generating"):
            self.feed(AudioInterrupted(audio_item, at=self._tick(data), generated_ms=generated))
        self.feed(AgentSaid(response_id, said, audio_ms=generated))
        if usage is not None:
            self.feed(UsageReported(usage))
        if data.draw(_one_in(4), label="leave the turn open"):
            return
        self.feed(TurnEnded(response_id, at=self._tick(data)))
        if item is not None and when == "after":
            self.feed(CallerTranscribed(item, "words", at=self._tick(data)))
        after = data.draw(st.sampled_from(("barge in", "played out", "nothing")), label="then")
        if after == "barge in":
            self.feed(AudioInterrupted(audio_item, at=self._tick(data), generated_ms=generated))
        elif after == "played out":
            for token in sorted(self.tree.timers):
                self.feed(TimerFired(token, at=self._tick(data)))

    @rule(data=st.data(), arguments=st.none() | texts, output=st.none() | texts)
    def a_tool_round_trip(
        self, data: st.DataObject, arguments: str | None, output: str | None
    ) -> None:
        active = self._active()
        tools = list(active.tools) if active is not None else []
        name = self._fitting_or_not(data, tools, st.just("nope"))
        call_id = self._fresh_id("call")
        self.feed(ToolCalled(call_id, name, arguments))
        steps = st.sampled_from(("approval", "approved", "rejected", "guardrail", "error"))
        for step in data.draw(st.lists(steps, max_size=3), label="on the way"):
            match step:
                case "approval":
                    self.feed(ToolApprovalRequested(call_id))
                case "approved":
                    self.feed(ToolApproved(call_id))
                case "rejected":
                    self.feed(ToolRejected(call_id))
                case "guardrail":
                    stage = data.draw(st.sampled_from(("input", "output")))
                    self.feed(ToolGuardrailRejected(call_id, stage))
                case _:
                    self.feed(ErrorReported(data.draw(error_infos), call_id=call_id))
        ending = data.draw(st.sampled_from(("output", "failed", "left open")), label="ending")
        if ending == "output":
            self.feed(ToolOutputSent(call_id, output))
        elif ending == "failed":
            self.feed(ToolFailed(call_id, data.draw(error_infos)))

    @rule(data=st.data(), key=st.sampled_from(AGENT_KEYS))
    def a_handoff(self, data: st.DataObject, key: int) -> None:
        active = self._active()
        if active is None or not active.handoffs:
            route = data.draw(routes)
        else:
            route = data.draw(st.sampled_from(active.handoffs))
        call_id = self._fresh_id("call")
        self.feed(ToolCalled(call_id, route.tool_name))
        ending = data.draw(st.sampled_from(("done", "failed", "in flight")), label="ending")
        if ending == "done":
            name = data.draw(st.just(route.agent_name) | st.sampled_from(AGENT_NAMES))
            self.feed(
                data.draw(
                    agent_activations(st.just(call_id)).map(
                        lambda e: attrs.evolve(e, agent=key, name=name)
                    )
                )
            )
            if data.draw(st.booleans(), label="transfer message"):
                self.feed(ToolOutputSent(call_id, "transferred"))
        elif ending == "failed":
            self.feed(ToolFailed(call_id, data.draw(error_infos)))

    @rule(thing=garbage)
    def not_an_event(self, thing: object) -> None:
        out = self.feed(thing)
        if not self.muted:
            assert len(out) == 1 and isinstance(out[0], Diagnostic)

    @invariant()
    def strict_and_lenient_agree_on_the_state(self) -> None:
        assert self.strict.state == self.lenient.state

    def teardown(self) -> None:
        if not self.steps_ok:
            return  # a step already failed: let its error be the one reported
        if self.lenient.state != CLOSED:
            self.feed(SessionClosed())
            if not self.muted:
                assert self.lenient.state == CLOSED
                assert not self.tree.open_spans(), "spans left open after SessionClosed"
        if self.tree.traces_opened:
            assert self.tree.traces_closed == 1
            last_end = max(i for i, c in enumerate(self.outputs) if isinstance(c, EndSpan))
            assert self.outputs.index(CloseTrace()) > last_end
        # Event sourcing: the log alone gives the very same commands, every time.
        replayed = replay(self.log)  # type: ignore[arg-type]
        assert replayed == tuple(self.outputs)
        assert replay(self.log) == replayed  # type: ignore[arg-type]
        assert replay([_copy_event(e) for e in self.log]) == replayed  # type: ignore[misc]


MachineProperties.TestCase.settings = settings(stateful_step_count=100)
TestMachineProperties = MachineProperties.TestCase


# -- plain properties ---------------------------------------------------------------------


@given(st.lists(any_input, max_size=40))
def test_lenient_mode_never_raises_and_replay_is_deterministic(events: list[object]) -> None:
    machine = SpanMachine()
    fed: list[Command] = []
    for event in events:
        fed.extend(machine.feed(event))  # type: ignore[arg-type]
    assert replay(events) == tuple(fed)  # type: ignore[arg-type]
    assert replay(copy.copy(events)) == replay(events)  # type: ignore[arg-type]


@given(session_starts, st.lists(any_input, max_size=40))
def test_tracing_disabled_means_no_command_at_all(
    start: SessionStarted, events: list[object]
) -> None:
    log = [attrs.evolve(start, tracing_enabled=False), *events]
    assert replay(log) == ()  # type: ignore[arg-type]
    events_only = [event for event in log if type(event) in EVENT_TYPES]
    assert replay(events_only, strict=True) == ()  # type: ignore[arg-type]
    if len(events_only) < len(log):  # strict still refuses what is not an event at all
        with pytest.raises(UnexpectedEvent, match=r"not a realtime_spans\.core event"):
            replay(log, strict=True)  # type: ignore[arg-type]


@given(st.lists(any_input, max_size=40))
def test_nothing_before_the_session_starts_opens_a_span(events: list[object]) -> None:
    """Until a SessionStarted (or the close), every event is only reported."""
    machine = SpanMachine()
    for event in events:
        if isinstance(event, SessionStarted | SessionClosed) and type(event) in EVENT_TYPES:
            break
        out = machine.feed(event)  # type: ignore[arg-type]
        assert len(out) == 1 and isinstance(out[0], Diagnostic), out
        assert machine.state == IDLE
