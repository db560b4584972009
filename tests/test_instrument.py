"""``instrument()`` / ``uninstrument()``: every session traced without code changes, and the
SDK restored exactly."""

from __future__ import annotations

import pytest
from agents.realtime import RealtimeRunner
from agents.realtime.model_inputs import RealtimeModelSendUserInput
from agents.realtime.session import RealtimeSession
from agents.realtime.testing import RealtimeStep, ScriptedRealtimeModel

from realtime_spans.adapters import (
    SpanRecorder,
    instrument,
    is_instrumented,
    traced,
    uninstrument,
)

from .support import (
    END,
    converse,
    handoff_steps,
    make_agents,
    of_kind,
    run_script,
    tree_problems,
    turn,
)

SDK_INIT = RealtimeSession.__init__


async def test_instrument_traces_sessions_created_afterwards(recorder: SpanRecorder) -> None:
    greeter, _ = make_agents()
    instrument(workflow_name="Everywhere")
    assert is_instrumented()
    seen, _ = await run_script(greeter, handoff_steps())
    assert [t.name for t in recorder.traces] == ["Everywhere"]
    assert [a.span_data.name for a in of_kind(recorder, "agent")] == ["Greeter", "Specialist"]
    assert tree_problems(recorder) == []
    assert len(seen) > 20


async def test_instrumented_session_keeps_its_identity(recorder: SpanRecorder) -> None:
    greeter, _ = make_agents()
    instrument()
    model = ScriptedRealtimeModel([RealtimeStep(RealtimeModelSendUserInput, [END])])
    session = await RealtimeRunner(greeter, model=model).run()
    assert isinstance(session, RealtimeSession)
    assert type(session).__name__ == "RealtimeSession"
    assert session.model is model
    assert traced(session) is session  # already traced: harmless
    await converse(session)
    assert len(of_kind(recorder, "task")) == 1


async def test_uninstrument_restores_the_sdk_exactly(recorder: SpanRecorder) -> None:
    instrument()
    instrument(workflow_name="again")  # idempotent: still one patch, new options
    assert RealtimeSession.__init__ is not SDK_INIT
    uninstrument()
    assert RealtimeSession.__init__ is SDK_INIT
    assert "__init__" in vars(RealtimeSession)
    uninstrument()  # harmless when not instrumented
    assert RealtimeSession.__init__ is SDK_INIT and not is_instrumented()

    greeter, _ = make_agents()
    await run_script(greeter, handoff_steps())
    assert recorder.started == [] and recorder.traces == []


async def test_second_instrument_call_replaces_options(recorder: SpanRecorder) -> None:
    instrument(workflow_name="first")
    instrument(workflow_name="second")
    greeter, _ = make_agents()
    await run_script(greeter, [RealtimeStep(RealtimeModelSendUserInput, [*turn("r1"), END])])
    assert [t.name for t in recorder.traces] == ["second"]


async def test_sessions_created_before_instrument_are_not_traced(recorder: SpanRecorder) -> None:
    greeter, _ = make_agents()
    model = ScriptedRealtimeModel(handoff_steps())
    session = await RealtimeRunner(greeter, model=model).run()
    instrument()
    await converse(session)
    assert recorder.started == []


async def test_running_sessions_finish_their_spans_after_uninstrument(
    recorder: SpanRecorder,
) -> None:
    greeter, _ = make_agents()
    instrument()
    model = ScriptedRealtimeModel(handoff_steps())
    session = await RealtimeRunner(greeter, model=model).run()

    async def uninstrument_midway(_session: object, event: object) -> None:
        if getattr(event, "type", "") == "handoff":
            uninstrument()

    await converse(session, during=uninstrument_midway)
    assert not is_instrumented()
    assert [a.span_data.name for a in of_kind(recorder, "agent")] == ["Greeter", "Specialist"]
    assert recorder.open_spans == [] and tree_problems(recorder) == []
    assert all(span.error is None for span in recorder.spans)


def test_instrument_rejects_bad_options() -> None:
    with pytest.raises(TypeError, match="unknown option 'worflow_name'"):
        instrument(worflow_name="typo")
    with pytest.raises(TypeError, match="workflow_name must be a str"):
        instrument(workflow_name=3)
    assert not is_instrumented()
    assert RealtimeSession.__init__ is SDK_INIT


async def test_traced_options_take_effect_on_an_instrumented_session(
    recorder: SpanRecorder,
) -> None:
    """``traced(session, **options)`` on a session ``instrument()`` already traces: the
    options given take effect (a privacy option is never dropped), the others stay."""
    instrument(workflow_name="Everywhere", include_sensitive_data=True)
    greeter, _ = make_agents()
    model = ScriptedRealtimeModel(handoff_steps())
    session = await RealtimeRunner(greeter, model=model).run()
    assert traced(session, include_sensitive_data=False) is session
    await converse(session)
    (function,) = of_kind(recorder, "function")
    assert function.span_data.input is None and function.span_data.output is None
    assert "Oslo" not in repr([span.export() for span in recorder.started])
    assert [t.name for t in recorder.traces] == ["Everywhere"]  # not given here: kept


async def test_traced_twice_with_options_keeps_the_latest_of_each(
    recorder: SpanRecorder,
) -> None:
    greeter, _ = make_agents()
    model = ScriptedRealtimeModel(handoff_steps())
    session = await RealtimeRunner(greeter, model=model).run()
    traced(session, workflow_name="first", include_sensitive_data=False)
    traced(session, workflow_name="second")
    traced(session)  # no options: changes nothing
    await converse(session)
    assert [t.name for t in recorder.traces] == ["second"]
    (function,) = of_kind(recorder, "function")
    assert function.span_data.input is None  # the first call's option stays


async def test_traced_options_after_entry_are_refused_not_dropped(
    recorder: SpanRecorder,
) -> None:
    instrument()
    greeter, _ = make_agents()
    model = ScriptedRealtimeModel(handoff_steps())
    session = await RealtimeRunner(greeter, model=model).run()

    async def trace_late(session: RealtimeSession, event: object) -> None:
        if getattr(event, "type", "") == "agent_start":
            with pytest.raises(ValueError, match="before the session is entered"):
                traced(session, include_sensitive_data=False)
            assert traced(session) is session  # no options: still harmless

    await converse(session, during=trace_late)
    model.assert_complete()
    (function,) = of_kind(recorder, "function")
    assert function.span_data.input == '{"city": "Oslo"}'  # the session went on as it was
    assert recorder.open_spans == [] and tree_problems(recorder) == []
