"""The span machine by example: the exact commands of the main scenarios of a session.

Each test feeds a short event log and states, command by command, what DESIGN.md says the
span tree gets. Span ids are handed out in order from 1 (the session span), so in a session
that starts with one agent the agent span is 2 and the next span is 3.
"""

from __future__ import annotations

import attrs
import pytest

from realtime_spans.core import (
    AGENT_ACTIVE,
    CLOSED,
    HANDING_OFF,
    IDLE,
    SESSION_SPAN_ID,
    TRACE_KEY_SERVER_SESSION,
    AgentActivated,
    AgentSaid,
    AgentSpec,
    AnnotateSpan,
    AnnotateTrace,
    AudioInterrupted,
    AudioStarted,
    CallerAudioCommitted,
    CallerSpeechStarted,
    CallerSpeechStopped,
    CallerTranscribed,
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

GREETER = 1  # agent keys, as an adapter would choose them
SPECIALIST = 2
BILLING = 3

TO_SPECIALIST = HandoffRoute("transfer_to_specialist", "Specialist")
TO_BILLING = HandoffRoute("transfer_to_billing", "Billing")

SESSION = SESSION_SPAN_ID  # 1
AGENT = 2  # the starting agent's span in every session opened by ``_greeter_session``

BOOM = ErrorInfo("boom")


def _greeter_activation() -> AgentActivated:
    return AgentActivated(
        GREETER, "Greeter", tools=("get_weather", "lookup"), handoffs=(TO_SPECIALIST, TO_BILLING)
    )


def _greeter_session(*, strict: bool = False, open_trace: bool = True) -> SpanMachine:
    """A machine with the session span (1) and the Greeter's agent span (2) open."""
    machine = SpanMachine(strict=strict)
    machine.feed(SessionStarted("Support line", open_trace=open_trace))
    assert machine.feed(_greeter_activation()) == (
        StartSpan(
            AGENT,
            SESSION,
            AgentSpec("Greeter", ("get_weather", "lookup"), ("Specialist", "Billing")),
        ),
    )
    assert machine.state == AGENT_ACTIVE
    return machine


def _summary(turns: int = 0, interruptions: int = 0) -> SetMeasures:
    """The session span's summary, set just before it ends."""
    return SetMeasures(SESSION, {"turns": turns, "interruptions": interruptions})


def _close_greeter_session(turns: int = 0) -> tuple[Command, ...]:
    """What closing a session with nothing open but the Greeter gives."""
    return (EndSpan(AGENT), _summary(turns), EndSpan(SESSION), CloseTrace())


def _turn_starts(
    turn: int, number: int, response_id: str | None, agent: str = "Greeter", parent: int = AGENT
) -> tuple[StartSpan, StartSpan]:
    """A turn span and, as its child, the response's generation span (id ``turn + 1``)."""
    return (
        StartSpan(turn, parent, TurnSpec(number, agent, response_id)),
        StartSpan(turn + 1, turn, GenerationSpec(None, {})),
    )


def _response_ends(
    turn: int, usage: Usage | None = None, output: tuple[dict[str, object], ...] = ()
) -> tuple[Command, ...]:
    """The response of ``turn`` is done: its generation (``turn + 1``) gets the usage (as
    the turn does), the messages (none were sent in these logs), and ends."""
    generation = turn + 1
    usages = (SetUsage(generation, usage), SetUsage(turn, usage)) if usage is not None else ()
    return (*usages, SetMessages(generation, (), output), EndSpan(generation))


# -- entry and close ------------------------------------------------------------------------


def test_entry_without_an_active_trace_opens_one_and_closes_it_last() -> None:
    machine = SpanMachine()
    start = SessionStarted("Support line", group_id="g1", metadata={"team": "voice"})
    assert machine.feed(start) == (
        OpenTrace("Support line", "g1", {"team": "voice"}),
        StartSpan(SESSION, None, SessionSpec("Support line")),
    )
    assert machine.state == IDLE
    assert machine.feed(AgentActivated(GREETER, "Greeter")) == (
        StartSpan(2, SESSION, AgentSpec("Greeter", (), ())),
    )
    assert machine.feed(SessionClosed()) == (
        EndSpan(2),
        _summary(),
        EndSpan(SESSION),
        CloseTrace(),
    )
    assert machine.state == CLOSED


def test_entry_inside_an_active_trace_joins_it_and_never_closes_it() -> None:
    machine = SpanMachine()
    start = SessionStarted("Support line", open_trace=False)
    # parent None: the span (or trace) current where the session was entered
    assert machine.feed(start) == (StartSpan(SESSION, None, SessionSpec("Support line")),)
    assert machine.feed(SessionClosed()) == (_summary(), EndSpan(SESSION))


def test_entry_inside_an_active_trace_keeps_its_own_group_id_on_the_session_span() -> None:
    machine = SpanMachine()
    start = SessionStarted("Support line", group_id="g1", open_trace=False)
    assert machine.feed(start) == (
        StartSpan(SESSION, None, SessionSpec("Support line")),
        AnnotateSpan(SESSION, "group_id", "g1"),
    )


def test_a_close_with_an_error_records_it_on_the_session_span() -> None:
    machine = _greeter_session()
    assert machine.feed(SessionClosed(BOOM)) == (SetError(SESSION, BOOM), *_close_greeter_session())


def test_a_session_closed_before_it_started_produces_nothing() -> None:
    machine = SpanMachine()
    assert machine.feed(SessionClosed()) == ()
    assert machine.state == CLOSED
    assert machine.feed(SessionStarted("late")) == (
        Diagnostic(CLOSED, "SessionStarted", "the session is closed"),
    )


def test_tracing_disabled_silences_the_whole_session() -> None:
    log = [
        SessionStarted("s", tracing_enabled=False),
        AgentActivated(GREETER, "Greeter", tools=("lookup",)),
        TurnStarted("r1"),
        ToolCalled("c1", "lookup"),
        TurnEnded("r1"),
        TurnEnded("r1"),  # would be a diagnostic if tracing were on
        "not an event",
        SessionClosed(),
        SessionClosed(),
    ]
    assert replay(log) == ()  # type: ignore[arg-type]
    # strict still refuses what is not an event at all, and only that
    with pytest.raises(UnexpectedEvent, match=r"not a realtime_spans\.core event"):
        replay(log, strict=True)  # type: ignore[arg-type]
    assert replay([e for e in log if not isinstance(e, str)], strict=True) == ()  # type: ignore[misc]


# -- turns ------------------------------------------------------------------------------------


def test_a_turn_with_usage() -> None:
    machine = _greeter_session()
    usage = Usage(requests=1, input_tokens=10, output_tokens=5, total_tokens=15)
    assert machine.feed(TurnStarted("resp_1")) == _turn_starts(3, 1, "resp_1")
    assert machine.feed(UsageReported(usage)) == ()  # held for the turn that ends next
    # the generation and its turn both carry the response's usage
    assert machine.feed(TurnEnded("resp_1")) == (*_response_ends(3, usage), EndSpan(3))
    # the session span gets the totals at the close
    assert machine.feed(SessionClosed()) == (
        EndSpan(AGENT),
        SetUsage(SESSION, usage),
        _summary(turns=1),
        EndSpan(SESSION),
        CloseTrace(),
    )


def test_turns_are_numbered_through_the_session_and_usage_adds_up() -> None:
    machine = _greeter_session()
    first = Usage(requests=1, input_tokens=3, total_tokens=3, input_audio_tokens=2)
    second = Usage(requests=1, output_tokens=4, total_tokens=4, output_text_tokens=4)
    machine.feed(TurnStarted("r1"))
    machine.feed(UsageReported(first))
    assert machine.feed(TurnEnded("r1")) == (*_response_ends(3, first), EndSpan(3))
    assert machine.feed(TurnStarted("r2")) == _turn_starts(5, 2, "r2")
    machine.feed(UsageReported(second))
    assert machine.feed(TurnEnded("r2")) == (*_response_ends(5, second), EndSpan(5))
    total = Usage(
        requests=2,
        input_tokens=3,
        output_tokens=4,
        total_tokens=7,
        input_audio_tokens=2,
        output_text_tokens=4,
    )
    assert SetUsage(SESSION, total) in machine.feed(SessionClosed())


def test_usage_goes_to_the_turn_that_ends_next() -> None:
    machine = _greeter_session()
    machine.feed(TurnStarted("r1"))  # span 3 (generation 4)
    machine.feed(TurnStarted("r2"))  # span 5 (generation 6), overlapping
    part_1, part_2 = Usage(total_tokens=5), Usage(total_tokens=6)
    machine.feed(UsageReported(part_1))
    machine.feed(UsageReported(part_2))
    # usage carries no response id: both reports land on whichever turn ends first
    both = Usage(total_tokens=11)
    assert machine.feed(TurnEnded("r1")) == (*_response_ends(3, both), EndSpan(3))
    assert machine.feed(TurnEnded("r2")) == (*_response_ends(5), EndSpan(5))


def test_usage_of_a_response_that_never_started_goes_to_no_turn() -> None:
    machine = _greeter_session()
    ghost, own = Usage(input_tokens=1000, total_tokens=1000), Usage(input_tokens=7, total_tokens=7)
    # usage and turn_ended of a response whose turn_started never came
    assert machine.feed(UsageReported(ghost)) == ()
    assert machine.feed(TurnEnded("ghost")) == (
        Diagnostic(AGENT_ACTIVE, "TurnEnded", "no open turn matches"),
    )
    machine.feed(TurnStarted("r1"))
    machine.feed(UsageReported(own))
    assert machine.feed(TurnEnded("r1")) == (*_response_ends(3, own), EndSpan(3))
    # the session's total is everything reported
    total = Usage(input_tokens=1007, total_tokens=1007)
    assert SetUsage(SESSION, total) in machine.feed(SessionClosed())


def test_usage_of_an_unmatched_turn_ended_is_not_the_open_turns() -> None:
    machine = _greeter_session()
    machine.feed(TurnStarted("r1"))  # span 3, still under way
    ghost, own = Usage(total_tokens=1000), Usage(total_tokens=7)
    machine.feed(UsageReported(ghost))
    assert machine.feed(TurnEnded("ghost")) == (
        Diagnostic(AGENT_ACTIVE, "TurnEnded", "no open turn matches"),
    )
    machine.feed(UsageReported(own))
    assert machine.feed(TurnEnded("r1")) == (*_response_ends(3, own), EndSpan(3))


def test_a_late_duplicate_turn_started_is_ignored() -> None:
    machine = _greeter_session()
    assert machine.feed(TurnStarted("r1")) == _turn_starts(3, 1, "r1")
    assert machine.feed(TurnStarted("r1")) == ()
    assert machine.feed(TurnEnded("r1")) == (*_response_ends(3), EndSpan(3))
    # once that turn has ended, the id may start a turn again
    assert machine.feed(TurnStarted("r1")) == _turn_starts(5, 2, "r1")


def test_turns_without_response_ids_end_latest_first() -> None:
    machine = _greeter_session()
    machine.feed(TurnStarted())  # 3
    machine.feed(TurnStarted())  # 5: without ids, nothing says it is a duplicate
    assert machine.feed(TurnEnded()) == (*_response_ends(5), EndSpan(5))
    # an id that no open turn has ends the latest turn that has no id
    assert machine.feed(TurnEnded("r9")) == (*_response_ends(3), EndSpan(3))
    assert machine.feed(TurnEnded()) == (
        Diagnostic(AGENT_ACTIVE, "TurnEnded", "no open turn matches"),
    )


def test_an_interruption_flags_the_open_turn_once() -> None:
    machine = _greeter_session()
    assert machine.feed(AudioInterrupted()) == ()  # no turn: playback of an old response
    machine.feed(TurnStarted("r1"))
    assert machine.feed(AudioInterrupted()) == (FlagTurn(3, "interrupted"),)
    assert machine.feed(AudioInterrupted()) == ()
    assert machine.feed(TurnEnded("r1")) == (*_response_ends(3), EndSpan(3))


def test_a_turn_open_at_the_close_is_cut_off_with_its_usage() -> None:
    machine = _greeter_session()
    machine.feed(TurnStarted("r1"))
    usage = Usage(total_tokens=9)
    machine.feed(UsageReported(usage))
    assert machine.feed(SessionClosed()) == (
        FlagTurn(3, "cut_off"),
        *_response_ends(3, usage),
        EndSpan(3),
        EndSpan(AGENT),
        SetUsage(SESSION, usage),
        _summary(turns=1),
        EndSpan(SESSION),
        CloseTrace(),
    )


# -- tool calls -------------------------------------------------------------------------------


def test_a_tool_call_ended_by_its_output() -> None:
    machine = _greeter_session()
    args = '{"city": "Paris"}'
    assert machine.feed(ToolCalled("c1", "get_weather", args)) == (
        StartSpan(3, AGENT, FunctionSpec("get_weather", "c1", args)),
    )
    assert machine.function_span("c1") == 3
    assert machine.feed(ToolOutputSent("c1", "sunny")) == (SetOutput(3, "sunny"), EndSpan(3))
    assert machine.function_span("c1") is None
    assert machine.feed(SessionClosed()) == _close_greeter_session()


def test_a_sensitive_tool_call_records_neither_input_nor_output() -> None:
    machine = _greeter_session()
    assert machine.feed(ToolCalled("c1", "lookup")) == (
        StartSpan(3, AGENT, FunctionSpec("lookup", "c1", None)),
    )
    assert machine.feed(ToolOutputSent("c1")) == (EndSpan(3),)


def test_a_repeated_call_id_and_a_late_output_change_nothing() -> None:
    machine = _greeter_session()
    machine.feed(ToolCalled("c1", "lookup"))
    assert machine.feed(ToolCalled("c1", "lookup")) == ()
    machine.feed(ToolOutputSent("c1", "done"))
    assert machine.feed(ToolCalled("c1", "lookup")) == ()  # finished ids stay taken
    assert machine.feed(ToolOutputSent("c1", "again")) == ()
    assert machine.feed(ToolFailed("c1", BOOM)) == ()


def test_a_call_rejected_by_approval() -> None:
    machine = _greeter_session()
    machine.feed(ToolCalled("c1", "lookup"))
    assert machine.feed(ToolApprovalRequested("c1")) == ()
    assert machine.feed(ToolRejected("c1")) == ()  # recorded when the call's span ends
    rejected = ErrorInfo("Tool execution rejected", {"tool_name": "lookup", "status": "rejected"})
    assert machine.feed(ToolOutputSent("c1", "not allowed")) == (
        SetOutput(3, "not allowed"),
        SetError(3, rejected),
        EndSpan(3),
    )


def test_an_approved_call_ends_normally() -> None:
    machine = _greeter_session()
    machine.feed(ToolCalled("c1", "lookup"))
    machine.feed(ToolApprovalRequested("c1"))
    assert machine.feed(ToolApproved("c1")) == ()
    assert machine.feed(ToolOutputSent("c1", "ok")) == (SetOutput(3, "ok"), EndSpan(3))


@pytest.mark.parametrize(
    ("stage", "message"),
    [("input", "Tool call rejected by guardrail"), ("output", "Tool output rejected by guardrail")],
)
def test_a_call_rejected_by_a_tool_guardrail(stage: str, message: str) -> None:
    machine = _greeter_session()
    machine.feed(ToolCalled("c1", "lookup"))
    assert machine.feed(ToolGuardrailRejected("c1", stage)) == ()
    error = ErrorInfo(
        message, {"tool_name": "lookup", "status": "guardrail_rejected", "stage": stage}
    )
    assert machine.feed(ToolOutputSent("c1")) == (SetError(3, error), EndSpan(3))


def test_a_call_still_awaiting_approval_at_the_close() -> None:
    machine = _greeter_session()
    machine.feed(ToolCalled("c1", "lookup"))
    machine.feed(ToolApprovalRequested("c1"))
    waiting = ErrorInfo(
        "Tool call still awaiting approval when the session closed",
        {"tool_name": "lookup", "status": "awaiting_approval"},
    )
    assert machine.feed(SessionClosed()) == (
        SetError(3, waiting),
        EndSpan(3),
        *_close_greeter_session(),
    )


def test_a_running_call_at_the_close_is_cancelled() -> None:
    machine = _greeter_session()
    machine.feed(ToolCalled("c1", "lookup"))
    machine.feed(ToolApprovalRequested("c1"))
    machine.feed(ToolApproved("c1"))  # no longer waiting: running when the close comes
    cancelled = ErrorInfo(
        "Tool call cancelled: the session closed before its output was sent",
        {"tool_name": "lookup", "status": "cancelled"},
    )
    assert machine.feed(SessionClosed()) == (
        SetError(3, cancelled),
        EndSpan(3),
        *_close_greeter_session(),
    )


def test_the_call_whose_tool_closed_the_session_ends_without_error() -> None:
    machine = _greeter_session()
    machine.feed(ToolCalled("c1", "lookup"))
    machine.feed(ToolCalled("c2", "lookup"))
    cancelled = ErrorInfo(
        "Tool call cancelled: the session closed before its output was sent",
        {"tool_name": "lookup", "status": "cancelled"},
    )
    # c2's tool closed the session (a hang-up): it did what it was asked; c1 was cut short
    assert machine.feed(SessionClosed(by_call="c2")) == (
        SetError(3, cancelled),
        EndSpan(3),
        EndSpan(4),
        *_close_greeter_session(),
    )


def test_a_close_by_a_call_no_longer_open_is_an_ordinary_close() -> None:
    closes = []
    for by_call in (None, "c1", "c9"):
        machine = _greeter_session()
        machine.feed(ToolCalled("c1", "lookup"))
        machine.feed(ToolOutputSent("c1", "done"))  # c1 is over before the close
        machine.feed(ToolCalled("c2", "lookup"))
        closes.append(machine.feed(SessionClosed(by_call=by_call)))
    assert closes[0] == closes[1] == closes[2]
    assert isinstance(closes[0][0], SetError) and closes[0][0].span_id == 4


def test_a_rejected_call_cut_by_the_close_keeps_its_rejection() -> None:
    machine = _greeter_session()
    machine.feed(ToolCalled("c1", "lookup"))
    machine.feed(ToolRejected("c1"))
    rejected = ErrorInfo("Tool execution rejected", {"tool_name": "lookup", "status": "rejected"})
    assert machine.feed(SessionClosed())[:2] == (SetError(3, rejected), EndSpan(3))


def test_an_unknown_tool_gets_a_function_span_that_ends_as_not_found() -> None:
    machine = _greeter_session()
    assert machine.feed(ToolCalled("c1", "delete_everything")) == (
        StartSpan(3, AGENT, FunctionSpec("delete_everything", "c1", None)),
    )
    not_found = ErrorInfo(
        "Tool delete_everything not found",
        {"tool_name": "delete_everything", "status": "not_found"},
    )
    assert machine.feed(ToolOutputSent("c1", "no such tool")) == (
        SetOutput(3, "no such tool"),
        SetError(3, not_found),
        EndSpan(3),
    )


def test_a_failing_tool() -> None:
    machine = _greeter_session()
    machine.feed(ToolCalled("c1", "lookup"))
    assert machine.feed(ToolFailed("c1", BOOM)) == (SetError(3, BOOM), EndSpan(3))
    assert machine.function_span("c1") is None


def test_events_about_unknown_calls_are_diagnosed() -> None:
    machine = _greeter_session()
    for event in (
        ToolApprovalRequested("c9"),
        ToolApproved("c9"),
        ToolRejected("c9"),
        ToolGuardrailRejected("c9"),
        ToolOutputSent("c9"),
        ToolFailed("c9", BOOM),
    ):
        reason = "no open tool call 'c9'"
        assert machine.feed(event) == (Diagnostic(AGENT_ACTIVE, type(event).__name__, reason),)


# -- handoffs ---------------------------------------------------------------------------------


def _handoff_called(machine: SpanMachine) -> None:
    assert machine.feed(ToolCalled("h1", "transfer_to_specialist")) == (
        StartSpan(3, AGENT, HandoffSpec("Greeter", "Specialist")),
    )
    assert machine.state == HANDING_OFF
    assert machine.function_span("h1") is None  # a handoff has no function span


def test_a_handoff_completed_by_the_new_agent() -> None:
    machine = _greeter_session()
    _handoff_called(machine)
    activation = AgentActivated(SPECIALIST, "Specialist", tools=("refund",), call_id="h1")
    # the handoff ends, then the outgoing agent (nothing of its own is open), then the
    # incoming agent starts as its sibling under the session span
    assert machine.feed(activation) == (
        EndSpan(3),
        EndSpan(AGENT),
        StartSpan(4, SESSION, AgentSpec("Specialist", ("refund",), ())),
    )
    assert machine.state == AGENT_ACTIVE
    # the handoff's transfer message is sent after the new agent is in place
    assert machine.feed(ToolOutputSent("h1", "transferred")) == ()
    assert machine.feed(TurnStarted("r1")) == _turn_starts(5, 1, "r1", "Specialist", parent=4)


def test_a_handoff_that_led_elsewhere_records_the_actual_target() -> None:
    machine = _greeter_session()
    _handoff_called(machine)
    assert machine.feed(AgentActivated(BILLING, "Billing", call_id="h1")) == (
        SetHandoffTarget(3, "Billing"),
        EndSpan(3),
        EndSpan(AGENT),
        StartSpan(4, SESSION, AgentSpec("Billing", (), ())),
    )


def test_a_failed_handoff_leaves_the_outgoing_agent_active() -> None:
    machine = _greeter_session()
    _handoff_called(machine)
    assert machine.feed(ToolFailed("h1", BOOM)) == (SetError(3, BOOM), EndSpan(3))
    assert machine.state == AGENT_ACTIVE
    # the Greeter is still the one taking turns
    assert machine.feed(TurnStarted("r1")) == _turn_starts(4, 1, "r1")


def test_a_handoff_cut_by_the_close() -> None:
    machine = _greeter_session()
    _handoff_called(machine)
    cancelled = ErrorInfo(
        "Handoff cancelled: the session closed before the new agent was in place",
        {"to_agent": "Specialist", "status": "cancelled"},
    )
    assert machine.feed(SessionClosed()) == (
        SetError(3, cancelled),
        EndSpan(3),
        *_close_greeter_session(),
    )


def test_a_handoff_output_before_its_new_agent_is_diagnosed() -> None:
    machine = _greeter_session()
    _handoff_called(machine)
    assert machine.feed(ToolOutputSent("h1")) == (
        Diagnostic(HANDING_OFF, "ToolOutputSent", "a handoff's output came before its new agent"),
    )
    assert machine.feed(ToolApproved("h1")) == (
        Diagnostic(HANDING_OFF, "ToolApproved", "'h1' is a handoff, not a tool call"),
    )


def test_parallel_handoffs_keep_handing_off_until_none_is_in_flight() -> None:
    machine = _greeter_session()
    _handoff_called(machine)
    assert machine.feed(ToolCalled("h2", "transfer_to_billing")) == (
        StartSpan(4, AGENT, HandoffSpec("Greeter", "Billing")),
    )
    # h1 completes; the Greeter's span waits for h2, its last open child
    assert machine.feed(AgentActivated(SPECIALIST, "Specialist", call_id="h1")) == (
        EndSpan(3),
        StartSpan(5, SESSION, AgentSpec("Specialist", (), ())),
    )
    assert machine.state == HANDING_OFF
    assert machine.feed(ToolFailed("h2", BOOM)) == (SetError(4, BOOM), EndSpan(4), EndSpan(AGENT))
    assert machine.state == AGENT_ACTIVE


# -- switching agents -------------------------------------------------------------------------


def test_update_agent_while_a_tool_of_the_previous_agent_runs_defers_its_end() -> None:
    machine = _greeter_session()
    machine.feed(ToolCalled("c1", "lookup"))  # 3, the Greeter's
    # update_agent(): the Billing agent takes over, but the Greeter's span stays open
    assert machine.feed(AgentActivated(BILLING, "Billing")) == (
        StartSpan(4, SESSION, AgentSpec("Billing", (), ())),
    )
    assert machine.feed(TurnStarted("r1")) == _turn_starts(5, 1, "r1", "Billing", parent=4)
    # the Greeter's span ends with its last open child, right after it
    assert machine.feed(ToolOutputSent("c1", "found")) == (
        SetOutput(3, "found"),
        EndSpan(3),
        EndSpan(AGENT),
    )
    assert machine.feed(SessionClosed()) == (
        FlagTurn(5, "cut_off"),
        *_response_ends(5),
        EndSpan(5),
        EndSpan(4),
        _summary(turns=1),
        EndSpan(SESSION),
        CloseTrace(),
    )


def test_a_retired_agent_left_open_by_a_tool_ends_at_the_close_after_its_tool() -> None:
    machine = _greeter_session()
    machine.feed(ToolCalled("c1", "lookup"))
    machine.feed(AgentActivated(BILLING, "Billing"))  # 4
    out = machine.feed(SessionClosed())
    assert out[1:] == (
        EndSpan(3),
        EndSpan(AGENT),
        EndSpan(4),
        _summary(),
        EndSpan(SESSION),
        CloseTrace(),
    )


def test_update_agent_with_nothing_open_ends_the_previous_agent_at_once() -> None:
    machine = _greeter_session()
    assert machine.feed(AgentActivated(GREETER, "Greeter")) == (
        EndSpan(AGENT),
        StartSpan(3, SESSION, AgentSpec("Greeter", (), ())),
    )


def test_update_agent_mid_handoff_then_the_handoff_completes() -> None:
    machine = _greeter_session()
    _handoff_called(machine)
    # update_agent() while h1 is in flight: the Greeter waits for its handoff span
    assert machine.feed(AgentActivated(BILLING, "Billing")) == (
        StartSpan(4, SESSION, AgentSpec("Billing", (), ())),
    )
    assert machine.state == HANDING_OFF
    assert machine.feed(AgentActivated(SPECIALIST, "Specialist", call_id="h1")) == (
        EndSpan(3),
        EndSpan(AGENT),
        EndSpan(4),
        StartSpan(5, SESSION, AgentSpec("Specialist", (), ())),
    )
    assert machine.state == AGENT_ACTIVE


# -- guardrails -------------------------------------------------------------------------------


def test_guardrail_spans_open_and_end_at_once_under_the_agent_that_tripped() -> None:
    machine = _greeter_session()
    assert machine.feed(GuardrailTripped(GREETER, ("no_refunds", "polite"))) == (
        StartSpan(3, AGENT, GuardrailSpec("no_refunds", True)),
        EndSpan(3),
        StartSpan(4, AGENT, GuardrailSpec("polite", True)),
        EndSpan(4),
    )


def test_a_guardrail_of_an_agent_still_open_goes_under_that_agent() -> None:
    machine = _greeter_session()
    machine.feed(ToolCalled("c1", "lookup"))  # keeps the Greeter's span open
    machine.feed(AgentActivated(BILLING, "Billing"))  # 4
    assert machine.feed(GuardrailTripped(GREETER, ("polite",))) == (
        StartSpan(5, AGENT, GuardrailSpec("polite", True)),
        EndSpan(5),
    )
    # an unknown (or absent) agent key goes under the session, never under another agent
    assert machine.feed(GuardrailTripped(None, ("polite",))) == (
        StartSpan(6, SESSION, GuardrailSpec("polite", True)),
        EndSpan(6),
    )
    assert machine.feed(GuardrailTripped(99, ("polite",))) == (
        StartSpan(7, SESSION, GuardrailSpec("polite", True)),
        EndSpan(7),
    )


def test_a_guardrail_of_an_agent_whose_span_ended_goes_under_the_session() -> None:
    machine = _greeter_session()
    machine.feed(AgentActivated(BILLING, "Billing"))  # the Greeter's span ends: 3
    assert machine.feed(GuardrailTripped(GREETER, ("polite",))) == (
        StartSpan(4, SESSION, GuardrailSpec("polite", True)),
        EndSpan(4),
    )


def test_a_guardrail_before_any_agent_goes_under_the_session() -> None:
    machine = SpanMachine()
    machine.feed(SessionStarted("s"))
    assert machine.feed(GuardrailTripped(GREETER, ("polite",))) == (
        StartSpan(2, SESSION, GuardrailSpec("polite", True)),
        EndSpan(2),
    )


# -- errors -----------------------------------------------------------------------------------


def test_errors_go_to_the_call_then_the_turn_then_the_session() -> None:
    machine = _greeter_session()
    tool_error, turn_error, session_error = ErrorInfo("tool"), ErrorInfo("turn"), ErrorInfo("s")
    assert machine.feed(ErrorReported(session_error)) == (SetError(SESSION, session_error),)
    machine.feed(TurnStarted("r1"))  # 3, its generation 4
    machine.feed(ToolCalled("c1", "lookup"))  # 5
    assert machine.feed(ErrorReported(tool_error, call_id="c1")) == (SetError(5, tool_error),)
    assert machine.feed(ErrorReported(turn_error)) == (SetError(3, turn_error),)
    # a call id no open call has: the latest open turn gets it (it has one already)
    assert machine.feed(ErrorReported(turn_error, call_id="c9")) == ()


def test_a_span_keeps_the_first_error_it_gets() -> None:
    machine = _greeter_session()
    machine.feed(ToolCalled("c1", "lookup"))
    assert machine.feed(ErrorReported(BOOM, call_id="c1")) == (SetError(3, BOOM),)
    assert machine.feed(ToolFailed("c1", ErrorInfo("second"))) == (EndSpan(3),)
    assert machine.feed(ErrorReported(ErrorInfo("late"), call_id="c1")) == ()


def test_a_transport_failure_is_recorded_on_the_session_span() -> None:
    machine = _greeter_session()
    machine.feed(TurnStarted("r1"))
    socket = ErrorInfo("socket closed")
    assert machine.feed(TransportFailed(socket)) == (SetError(SESSION, socket),)
    # the session then closes with its open turn cut off
    assert machine.feed(SessionClosed()) == (
        FlagTurn(3, "cut_off"),
        *_response_ends(3),
        EndSpan(3),
        *_close_greeter_session(turns=1),
    )


def test_a_failed_entry_ends_every_span_with_the_error() -> None:
    machine = SpanMachine()
    machine.feed(SessionStarted("s"))
    refused = ErrorInfo("connection refused")
    assert machine.feed(EntryFailed(refused)) == (
        SetError(SESSION, refused),
        _summary(),
        EndSpan(SESSION),
        CloseTrace(),
    )
    assert machine.state == CLOSED


def test_a_failed_entry_after_the_starting_agent_marks_both_spans() -> None:
    machine = _greeter_session()
    refused = ErrorInfo("connection refused")
    assert machine.feed(EntryFailed(refused)) == (
        SetError(AGENT, refused),
        SetError(SESSION, refused),
        *_close_greeter_session(),
    )


# -- correlation with the server-side trace ---------------------------------------------------


def test_the_server_session_id_goes_on_the_trace_only_when_the_machine_opened_it() -> None:
    own = _greeter_session(open_trace=True)
    assert own.feed(ServerSessionIdentified("sess_1")) == (
        AnnotateTrace(TRACE_KEY_SERVER_SESSION, "sess_1"),
        AnnotateSpan(SESSION, TRACE_KEY_SERVER_SESSION, "sess_1"),
    )
    joined = _greeter_session(open_trace=False)
    # the caller's trace is not ours to change: only the session span records the id
    assert joined.feed(ServerSessionIdentified("sess_1")) == (
        AnnotateSpan(SESSION, TRACE_KEY_SERVER_SESSION, "sess_1"),
    )


# -- events that do not fit: lenient and strict -----------------------------------------------


def test_events_before_the_start_and_after_the_close_are_diagnosed() -> None:
    machine = SpanMachine()
    assert machine.feed(AgentActivated(GREETER, "Greeter")) == (
        Diagnostic(IDLE, "AgentActivated", "the session has not started"),
    )
    assert machine.feed(TurnStarted()) == (
        Diagnostic(IDLE, "TurnStarted", "not accepted in state 'idle'"),
    )
    machine.feed(SessionStarted("s"))
    assert machine.feed(SessionStarted("s")) == (
        Diagnostic(IDLE, "SessionStarted", "the session has already started"),
    )
    machine.feed(SessionClosed())
    assert machine.feed(TransportFailed(BOOM)) == (
        Diagnostic(CLOSED, "TransportFailed", "the session is closed"),
    )
    assert machine.feed(SessionClosed()) == (
        Diagnostic(CLOSED, "SessionClosed", "the session is closed"),
    )


@pytest.mark.parametrize(
    "garbage", [None, 42, "TurnStarted", {"type": "turn_started"}, TurnStarted]
)
def test_garbage_input_is_diagnosed_leniently_and_raises_strictly(garbage: object) -> None:
    machine = _greeter_session()
    name = type(garbage).__name__
    assert machine.feed(garbage) == (  # type: ignore[arg-type]
        Diagnostic(AGENT_ACTIVE, name, "not a realtime_spans.core event"),
    )
    strict = _greeter_session(strict=True)
    with pytest.raises(UnexpectedEvent) as raised:
        strict.feed(garbage)  # type: ignore[arg-type]
    assert raised.value.event is garbage
    assert raised.value.event_name == name
    assert raised.value.state == AGENT_ACTIVE


def test_strict_mode_errors_name_the_state_and_the_event() -> None:
    machine = SpanMachine(strict=True)
    assert machine.strict
    with pytest.raises(UnexpectedEvent) as raised:
        machine.feed(TurnEnded("r1"))
    error = raised.value
    assert (error.state, error.event_name, error.reason) == (
        IDLE,
        "TurnEnded",
        "not accepted in state 'idle'",
    )
    assert str(error) == "TurnEnded in state 'idle': not accepted in state 'idle'"

    machine = _greeter_session(strict=True)
    with pytest.raises(UnexpectedEvent, match=r"ToolOutputSent in state 'agent_active'") as raised:
        machine.feed(ToolOutputSent("c9"))
    assert raised.value.reason == "no open tool call 'c9'"
    assert raised.value.event == ToolOutputSent("c9")


def test_a_strict_raise_leaves_the_machine_as_it_was() -> None:
    strict, lenient = _greeter_session(strict=True), _greeter_session()
    untouched = _greeter_session()  # never sees the unexpected events
    for machine in (strict, lenient, untouched):
        machine.feed(TurnStarted("r1"))
        machine.feed(UsageReported(Usage(total_tokens=4)))
        machine.feed(ToolCalled("c1", "lookup"))
    for event in (TurnEnded("r9"), ToolFailed("c9", BOOM), SessionStarted("again")):
        with pytest.raises(UnexpectedEvent):
            strict.feed(event)
        assert len(lenient.feed(event)) == 1
    # the pending usage, the open turn and the open call are all still there
    rest = [TurnEnded("r1"), ToolOutputSent("c1"), SessionClosed()]
    assert [strict.feed(e) for e in rest] == [untouched.feed(e) for e in rest]
    assert strict.state == untouched.state == CLOSED
    # lenient went on too; the usage before the unmatched TurnEnded("r9") was r9's
    called = {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": None}}
    said = ({"role": "assistant", "content": None, "tool_calls": [called]},)
    assert lenient.feed(TurnEnded("r1")) == (*_response_ends(3, output=said), EndSpan(3))


def test_strict_mode_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="strict must be a bool"):
        SpanMachine(strict="yes")  # type: ignore[arg-type]


# -- replay -----------------------------------------------------------------------------------


def test_replay_gives_the_commands_of_feeding_one_by_one() -> None:
    log = [
        SessionStarted("s"),
        _greeter_activation(),
        TurnStarted("r1"),
        ToolCalled("h1", "transfer_to_specialist"),
        UsageReported(Usage(total_tokens=3)),
        TurnEnded("r1"),
        AgentActivated(SPECIALIST, "Specialist", call_id="h1"),
        SessionClosed(),
    ]
    machine = SpanMachine()
    fed = [command for event in log for command in machine.feed(event)]
    assert replay(log) == tuple(fed)
    assert replay([attrs.evolve(event) for event in log]) == replay(log)


# -- event constructors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: SessionStarted(42), "workflow_name"),  # type: ignore[arg-type]
        (lambda: SessionStarted("s", open_trace="yes"), "open_trace"),  # type: ignore[arg-type]
        (lambda: SessionStarted("s", metadata=[("a", 1)]), "metadata"),  # type: ignore[arg-type]
        (lambda: AgentActivated("1", "Greeter"), "agent"),  # type: ignore[arg-type]
        (lambda: AgentActivated(1, "Greeter", tools=["lookup"]), "tools"),  # type: ignore[arg-type]
        (lambda: AgentActivated(1, "Greeter", tools=("lookup", 3)), "tools"),  # type: ignore[arg-type]
        (lambda: AgentActivated(1, "G", handoffs=("Billing",)), "handoffs"),  # type: ignore[arg-type]
        (lambda: TurnStarted(7), "response_id"),  # type: ignore[arg-type]
        (lambda: UsageReported({"total_tokens": 1}), "usage"),  # type: ignore[arg-type]
        (lambda: ToolCalled("c1", None), "name"),  # type: ignore[arg-type]
        (lambda: ToolOutputSent(1), "call_id"),  # type: ignore[arg-type]
        (lambda: ToolFailed("c1", "boom"), "error"),  # type: ignore[arg-type]
        (lambda: GuardrailTripped(1, ["polite"]), "guardrails"),  # type: ignore[arg-type]
        (lambda: GuardrailTripped("Greeter", ()), "agent"),  # type: ignore[arg-type]
        (lambda: ErrorReported("boom"), "error"),  # type: ignore[arg-type]
        (lambda: SessionClosed("boom"), "error"),  # type: ignore[arg-type]
        (lambda: ErrorInfo(42), "message"),  # type: ignore[arg-type]
        (lambda: HandoffRoute("transfer", 3), "agent_name"),  # type: ignore[arg-type]
        (lambda: Usage(input_tokens=-1), "input_tokens"),
        (lambda: Usage(total_tokens=True), "total_tokens"),
        (lambda: Usage(requests=1.5), "requests"),  # type: ignore[arg-type]
        (lambda: Usage(output_audio_tokens="3"), "output_audio_tokens"),  # type: ignore[arg-type]
    ],
)
def test_event_constructors_reject_wrong_types(build: object, field: str) -> None:
    with pytest.raises(TypeError) as raised:
        build()  # type: ignore[operator]
    message = raised.value.args[0]  # attrs adds the attribute and the value as more args
    assert isinstance(message, str)
    assert field in message and "got" in message, message


def test_a_tool_guardrail_stage_is_input_or_output() -> None:
    with pytest.raises(ValueError) as raised:
        ToolGuardrailRejected("c1", "middle")
    assert "'stage' must be in ('input', 'output')" in raised.value.args[0]


def test_events_are_frozen_values() -> None:
    event = ToolCalled("c1", "lookup")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.name = "refund"  # type: ignore[misc]
    assert event == ToolCalled("c1", "lookup")


# -- the conversation ---------------------------------------------------------------------------

SETTINGS = ModelConfigured(
    "gpt-realtime",
    {"voice": "marin", "turn_detection": {"type": "server_vad", "silence_duration_ms": 500}},
    transcription_model="gpt-4o-transcribe",
    input_format="pcm16",
)
GENERATION = GenerationSpec("gpt-realtime", SETTINGS.config)
TRANSCRIPTION = TranscriptionSpec("gpt-4o-transcribe", "pcm16")


def _spoken(machine: SpanMachine, item: str, stopped: float) -> None:
    """The caller says one utterance that server VAD ends at ``stopped``."""
    machine.feed(CallerSpeechStarted(item, at=stopped - 1.0))
    machine.feed(CallerSpeechStopped(item, at=stopped))
    machine.feed(CallerAudioCommitted(item, at=stopped))


def test_a_spoken_turn_its_words_latencies_and_the_wait_for_its_audio() -> None:
    machine = _greeter_session()
    assert machine.feed(SETTINGS) == ()
    assert machine.feed(CallerSpeechStarted("u1", at=9.5)) == (StartSpan(3, AGENT, TRANSCRIPTION),)
    assert machine.feed(CallerSpeechStopped("u1", at=10.5)) == ()
    assert machine.feed(CallerAudioCommitted("u1", at=10.5)) == ()
    assert machine.feed(TurnStarted("r1", at=10.75)) == (
        StartSpan(4, AGENT, TurnSpec(1, "Greeter", "r1")),
        StartSpan(5, 4, GENERATION),
    )
    assert machine.feed(AudioStarted("r1", "a1", at=11.0)) == ()
    # the transcript comes while the response is under way: its own span ends with it
    assert machine.feed(CallerTranscribed("u1", "is it raining", at=11.25)) == (
        SetOutput(3, "is it raining"),
        EndSpan(3),
    )
    assert machine.feed(AgentSaid("r1", "It is.", audio_ms=2000.0)) == ()
    # the response is done, its two seconds of audio are not: the turn waits for them
    assert machine.feed(TurnEnded("r1", at=11.5)) == (
        SetMessages(
            5,
            ({"role": "user", "content": "is it raining"},),
            ({"role": "assistant", "content": "It is."},),
        ),
        EndSpan(5),
        SetMeasures(
            4,
            {
                "time_to_first_audio_ms": 250.0,
                "voice_to_voice_ms": 500.0,
                "silence_duration_ms": 500,
                "transcription_delay_ms": 750.0,
                "audio_generated_ms": 2000.0,
            },
        ),
        SetTimer(4, 14.0),  # first audio + 2 s of audio + the playback grace
    )
    assert machine.feed(TimerFired(99, at=14.0)) == ()  # no such turn
    assert machine.feed(TimerFired(4, at=14.0)) == (EndSpan(4),)
    assert machine.feed(TimerFired(4, at=14.5)) == ()  # once only
    assert machine.feed(SessionClosed()) == (
        EndSpan(AGENT),
        SetMeasures(
            SESSION,
            {
                "turns": 1,
                "interruptions": 0,
                "voice_to_voice_median_ms": 500.0,
                "voice_to_voice_max_ms": 500.0,
            },
        ),
        EndSpan(SESSION),
        CloseTrace(),
    )


def test_a_barge_in_after_the_response_ended_cuts_its_turn_with_what_was_heard() -> None:
    machine = _greeter_session()
    machine.feed(TurnStarted("r1", at=1.0))  # 3, generation 4
    machine.feed(AudioStarted("r1", "a1", at=1.0))
    machine.feed(AgentSaid("r1", None, audio_ms=3000.0))
    assert machine.feed(TurnEnded("r1", at=1.5))[-1] == SetTimer(3, 5.0)
    # the caller speaks 0.75 s into the audio: the turn ends, interrupted, heard < generated
    assert machine.feed(AudioInterrupted("a1", at=1.75, generated_ms=3000.0)) == (
        FlagTurn(3, "interrupted"),
        SetMeasures(
            3,
            {
                "time_to_first_audio_ms": 0.0,
                "audio_generated_ms": 3000.0,
                "audio_heard_ms": 750.0,
            },
        ),
        EndSpan(3),
    )
    assert machine.feed(TimerFired(3, at=5.0)) == ()  # the barge-in came first
    assert machine.feed(SessionClosed())[1] == _summary(turns=1, interruptions=1)


@pytest.mark.parametrize(("played_ms", "heard"), [(1234.5, 1234.5), (0.0, 0.0), (9000.0, 3000.0)])
def test_what_the_client_played_is_what_was_heard(played_ms: float, heard: float) -> None:
    machine = _greeter_session()
    machine.feed(TurnStarted("r1", at=1.0))
    machine.feed(AudioStarted("r1", "a1", at=1.0))
    machine.feed(AgentSaid("r1", None, audio_ms=3000.0))
    machine.feed(TurnEnded("r1", at=1.5))
    # 0.75 s after the first delta by the receipt clock, but the client counted its playback
    out = machine.feed(AudioInterrupted("a1", at=1.75, generated_ms=3000.0, played_ms=played_ms))
    measures = {"time_to_first_audio_ms": 0.0, "audio_generated_ms": 3000.0}
    assert SetMeasures(3, {**measures, "audio_heard_ms": heard}) in out


def test_heard_is_capped_at_what_was_generated() -> None:
    machine = _greeter_session()
    machine.feed(TurnStarted("r1", at=1.0))
    machine.feed(AudioStarted("r1", "a1", at=1.0))
    out = machine.feed(AudioInterrupted("a1", at=9.0, generated_ms=400.0))  # still generating
    assert out == (FlagTurn(3, "interrupted"),)
    machine.feed(AgentSaid("r1", None, audio_ms=400.0))
    measured = machine.feed(TurnEnded("r1", at=9.5))
    assert (
        SetMeasures(
            3,
            {"time_to_first_audio_ms": 0.0, "audio_generated_ms": 400.0, "audio_heard_ms": 400.0},
        )
        in measured
    )
    assert measured[-1] == EndSpan(3)  # interrupted: no wait for its audio


def test_a_transcript_after_its_turn_ended_is_on_its_own_span_only() -> None:
    machine = _greeter_session()
    machine.feed(SETTINGS)
    _spoken(machine, "u1", stopped=2.0)  # transcription span 3
    machine.feed(TurnStarted("r1", at=2.5))  # 4, generation 5
    # no transcript yet: the generation's message has no content, the turn ends at once
    assert machine.feed(TurnEnded("r1", at=3.0)) == (
        SetMessages(5, ({"role": "user", "content": None},), ()),
        EndSpan(5),
        EndSpan(4),
    )
    _spoken(machine, "u2", stopped=4.0)  # 6
    machine.feed(TurnStarted("r2", at=4.5))  # 7, generation 8
    # the first utterance's transcript arrives late: on span 3, on no generation
    assert machine.feed(CallerTranscribed("u1", "first words", at=5.0)) == (
        SetOutput(3, "first words"),
        EndSpan(3),
    )
    machine.feed(CallerTranscribed("u2", "second words", at=5.0))
    out = machine.feed(TurnEnded("r2", at=5.5))
    assert out[0] == SetMessages(8, ({"role": "user", "content": "second words"},), ())


def test_two_utterances_before_one_response_are_its_input_in_order() -> None:
    machine = _greeter_session()
    machine.feed(SETTINGS)
    _spoken(machine, "u1", stopped=2.0)  # 3
    _spoken(machine, "u2", stopped=3.0)  # 4
    machine.feed(CallerTranscribed("u2", "two", at=3.5))  # the later one first
    machine.feed(CallerTranscribed("u1", "one", at=3.6))
    machine.feed(TurnStarted("r1", at=4.0))  # 5, generation 6
    machine.feed(AudioStarted("r1", "a1", at=4.25))
    out = machine.feed(TurnEnded("r1", at=4.5))
    # it spoke, its transcript unknown: an assistant message with no content
    assert out[0] == SetMessages(
        6,
        ({"role": "user", "content": "one"}, {"role": "user", "content": "two"}),
        ({"role": "assistant", "content": None},),
    )
    # voice to voice from the end of the speech this response answers: the latest
    measures = next(c for c in out if isinstance(c, SetMeasures)).measures
    assert measures["voice_to_voice_ms"] == 1250.0


def test_typed_messages_and_tool_outputs_are_the_next_responses_input() -> None:
    machine = _greeter_session()
    machine.feed(MessageSent("hello", at=1.0))
    machine.feed(TurnStarted("r1", at=1.25))  # 3, generation 4
    machine.feed(ToolCalled("c1", "lookup", '{"q": 1}'))  # 5
    machine.feed(TextStarted("r1", at=1.5))
    machine.feed(AgentSaid("r1", "Looking."))
    out = machine.feed(TurnEnded("r1", at=2.0))
    called = {
        "id": "c1",
        "type": "function",
        "function": {"name": "lookup", "arguments": '{"q": 1}'},
    }
    assert out[:3] == (
        SetMessages(
            4,
            ({"role": "user", "content": "hello"},),
            ({"role": "assistant", "content": "Looking.", "tool_calls": [called]},),
        ),
        EndSpan(4),
        SetMeasures(3, {"time_to_first_text_ms": 250.0}),
    )
    machine.feed(MessageSent("found", at=2.5, call_id="c1"))
    machine.feed(ToolOutputSent("c1", "found"))
    machine.feed(TurnStarted("r2", at=3.0))  # 6, generation 7
    out = machine.feed(TurnEnded("r2", at=3.5))
    # a turn no caller speech started: no voice to voice, no measures at all here
    assert out == (
        SetMessages(7, ({"role": "tool", "tool_call_id": "c1", "content": "found"},), ()),
        EndSpan(7),
        EndSpan(6),
    )


def test_a_turn_playing_its_audio_at_the_close_ends_complete_not_cut_off() -> None:
    machine = _greeter_session()
    machine.feed(TurnStarted("r1", at=1.0))
    machine.feed(AudioStarted("r1", "a1", at=1.0))
    machine.feed(AgentSaid("r1", None, audio_ms=5000.0))
    machine.feed(TurnEnded("r1", at=1.5))
    out = machine.feed(SessionClosed())
    assert out[0] == EndSpan(3)
    assert not any(isinstance(c, FlagTurn) for c in out)


def test_heard_is_capped_by_the_audio_made_when_that_is_known_only_later() -> None:
    machine = _greeter_session()
    machine.feed(TurnStarted("r1", at=1.0))
    machine.feed(AudioStarted("r1", "a1", at=1.0))
    # cut 30 s in, while generating, before anyone knew how much audio there would be
    assert machine.feed(AudioInterrupted("a1", at=31.0)) == (FlagTurn(3, "interrupted"),)
    machine.feed(AgentSaid("r1", None, audio_ms=250.0))
    measured = next(c for c in machine.feed(TurnEnded("r1", at=31.5)) if isinstance(c, SetMeasures))
    assert measured.measures["audio_heard_ms"] == measured.measures["audio_generated_ms"] == 250.0
